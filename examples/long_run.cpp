// A long-running training job with the durable-checkpointing callbacks: trains an MLP on a Fashion-MNIST
// subset with Model::fit and
//   * ModelCheckpoint saving every --save-seconds seconds, keeping one checkpoint per
//     --keep-minutes minutes (plus the newest --keep-max), with a latest pointer;
//   * ProgressBar (in place on a terminal, one line per epoch otherwise);
//   * TensorBoard events (train/loss, train/lr, eval/<metric>) under <out>/tensorboard;
//   * CSVLogger (<out>/log.csv).
// At the end it lists the checkpoint directory. Small defaults so it runs in seconds:
//
//   long_run [--epochs 3] [--limit 3000] [--batch-size 64] [--lr 0.05] [--save-seconds 1]
//            [--keep-minutes 1] [--keep-max 3] [--step-sleep-ms 10] [--out long_run_out]
//            [--data-dir DIR] [--seed 1]
// --step-sleep-ms slows every step down (a LambdaCallback) so that the time-based saves trigger even
// on a tiny subset; 0 trains at full speed.
#include <algorithm>
#include <cstdint>
#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "callbacks/CSVLogger.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "callbacks/ProgressBar.h"
#include "callbacks/TensorBoard.h"
#include "examples/Flags.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/metrics/Loss.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Model.h"
#include "models/MLP.h"

namespace {

struct Args {
  int epochs = 3;
  std::int64_t limit = 3000;
  std::int64_t batch_size = 64;
  double lr = 0.05;
  std::int64_t save_seconds = 1;
  std::int64_t keep_minutes = 1;
  std::int64_t keep_max = 3;
  std::int64_t step_sleep_ms = 10;
  std::string out = "long_run_out";
  std::string data_dir;
  std::uint64_t seed = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  anvil::examples::Flags flags(argv[0]);
  flags.add("--epochs", a.epochs);
  flags.add("--limit", a.limit);
  flags.add("--batch-size", a.batch_size);
  flags.add("--lr", a.lr);
  flags.add("--save-seconds", a.save_seconds);
  flags.add("--keep-minutes", a.keep_minutes);
  flags.add("--keep-max", a.keep_max);
  flags.add("--step-sleep-ms", a.step_sleep_ms);
  flags.add("--out", a.out);
  flags.add("--data-dir", a.data_dir);
  flags.add("--seed", a.seed);
  flags.parse(argc, argv);
  if (a.epochs < 1 || a.batch_size < 1 || a.limit < 0 || a.save_seconds < 1 || a.keep_minutes < 0 || a.keep_max < 0 ||
      a.step_sleep_ms < 0)
    flags.usage("epochs, batch size, save-seconds must be >= 1; limit, keep-minutes, keep-max, step-sleep-ms >= 0", 2);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace anvil;
  namespace fs = std::filesystem;
  const Args args = parse(argc, argv);
  try {
    auto train_set = load_fashion_mnist(MnistOptions{.dir = args.data_dir, .split = "train", .limit = args.limit});
    auto test_set = load_fashion_mnist(MnistOptions{.dir = args.data_dir, .split = "test", .limit = 1000});
    std::cout << "Fashion-MNIST subset: " << train_set->size() << " train, " << test_set->size() << " test images\n";
    DataLoader train_loader(train_set, DataLoaderOptions{.batch_size = args.batch_size, .shuffle = true, .seed = args.seed});
    DataLoader test_loader(test_set, DataLoaderOptions{.batch_size = 500, .shuffle = false});

    Generator init(args.seed);
    auto net = std::make_shared<models::MLP>(784, std::vector<std::int64_t>{128}, 10, &init);
    auto loss = std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(true, "mean");
    auto opt = std::make_shared<Momentum>(net->trainable_params(), args.lr, 0.9);
    Model model(net, loss, opt, {std::make_shared<Accuracy>(), std::make_shared<Loss>()});

    const fs::path out(args.out);
    fs::create_directories(out);
    CheckpointConfig config;
    config.save_checkpoint_steps = 0;  // time-based only
    config.save_checkpoint_seconds = args.save_seconds;
    config.keep_checkpoint_max = args.keep_max;
    config.keep_checkpoint_per_n_minutes = args.keep_minutes;
    auto ckpt = std::make_shared<ModelCheckpoint>("long_run", (out / "checkpoints").string(), config);
    auto tb = std::make_shared<TensorBoard>((out / "tensorboard").string());

    const auto sleep_ms = args.step_sleep_ms;
    auto slow = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{.on_train_step_end = [sleep_ms](RunContext&) {
      if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    }});
    model.fit(args.epochs, train_loader, test_loader,
              {slow, std::make_shared<ProgressBar>(), tb, std::make_shared<CSVLogger>((out / "log.csv").string()), ckpt},
              /*valid_frequency=*/1);

    std::cout << "TensorBoard events: " << tb->file_path() << "\n";
    std::cout << "checkpoints in " << (out / "checkpoints").string() << ":\n";
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(out / "checkpoints")) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) std::cout << "  " << n << "\n";
  } catch (const std::exception& e) {
    std::cerr << "long_run: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
