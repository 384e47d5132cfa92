// Trains the classic 784-512-10 MLP (OneFlow's quick-start network) on Fashion-MNIST: 28x28 images
// (no padding) flattened to 784 inputs, SoftmaxCrossEntropyWithLogits, SGD(lr 0.1), batch 100.
//
//   train_mlp [--epochs 5] [--batch-size 100] [--lr 0.1] [--hidden 512] [--data-dir DIR] [--limit N] [--seed S]
//
// Inputs are scaled to [0, 1] (no mean/std normalization), as in the OneFlow tutorial.
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "callbacks/LossMonitor.h"
#include "callbacks/TimeMonitor.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/metrics/Loss.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/SGD.h"
#include "framework/train/Model.h"
#include "models/MLP.h"

namespace {

struct Args {
  int epochs = 5;
  std::int64_t batch_size = 100;
  double lr = 0.1;
  std::int64_t hidden = 512;
  std::string data_dir;  // empty: default_fashion_mnist_dir()
  std::int64_t limit = 0;
  std::uint64_t seed = 1;
};

[[noreturn]] void usage(const char* prog, const std::string& error) {
  std::cerr << prog << ": " << error << "\n"
            << "usage: " << prog
            << " [--epochs N] [--batch-size B] [--lr LR] [--hidden H] [--data-dir DIR] [--limit N] [--seed S]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage(argv[0], "help");
    if (i + 1 >= argc) usage(argv[0], "missing value for " + flag);
    const char* v = argv[++i];
    char* end = nullptr;
    if (flag == "--epochs") {
      a.epochs = static_cast<int>(std::strtol(v, &end, 10));
    } else if (flag == "--batch-size") {
      a.batch_size = std::strtoll(v, &end, 10);
    } else if (flag == "--lr") {
      a.lr = std::strtod(v, &end);
    } else if (flag == "--hidden") {
      a.hidden = std::strtoll(v, &end, 10);
    } else if (flag == "--limit") {
      a.limit = std::strtoll(v, &end, 10);
    } else if (flag == "--seed") {
      a.seed = std::strtoull(v, &end, 10);
    } else if (flag == "--data-dir") {
      a.data_dir = v;
      continue;
    } else {
      usage(argv[0], "unknown flag " + flag);
    }
    if (end == v || *end != '\0') usage(argv[0], "bad value '" + std::string(v) + "' for " + flag);
  }
  if (a.epochs < 1 || a.batch_size < 1 || a.hidden < 1 || a.limit < 0)
    usage(argv[0], "epochs, batch size and hidden must be >= 1, limit >= 0");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace anvil;
  const Args args = parse(argc, argv);
  try {
    // [0, 1] inputs: mean 0, std 1 after scaling by 1/255.
    auto train_set = load_fashion_mnist(
        MnistOptions{.dir = args.data_dir, .split = "train", .mean = 0.0, .std = 1.0, .limit = args.limit});
    auto test_set = load_fashion_mnist(MnistOptions{.dir = args.data_dir, .split = "test", .mean = 0.0, .std = 1.0});
    std::cout << "Fashion-MNIST: " << train_set->size() << " train, " << test_set->size() << " test images\n";

    DataLoader train_loader(train_set, DataLoaderOptions{.batch_size = args.batch_size, .shuffle = true,
                                                         .seed = args.seed});
    DataLoader test_loader(test_set, DataLoaderOptions{.batch_size = 1000, .shuffle = false});

    Generator init(args.seed);
    auto net = std::make_shared<models::MLP>(784, std::vector<std::int64_t>{args.hidden}, 10, &init);
    auto opt = std::make_shared<SGD>(net->trainable_params(), args.lr);
    Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt,
                {std::make_shared<Accuracy>(), std::make_shared<Loss>()});

    model.fit(args.epochs, train_loader, test_loader,
              {std::make_shared<LossMonitor>(200), std::make_shared<TimeMonitor>()}, /*valid_frequency=*/1);

    const auto results = model.eval(test_loader);
    std::cout << "test accuracy: " << results.at("accuracy") << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "train_mlp: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
