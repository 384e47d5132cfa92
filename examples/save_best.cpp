// "Save the best model" walk-through on a Fashion-MNIST subset: augmentation transforms, a 2-worker
// DataLoader, the network summary, ModelCheckpoint keeping the single best checkpoint by test accuracy,
// EarlyStopping restoring the best weights, and reloading the best checkpoint to check its accuracy.
//
//   save_best [DIRECTORY]      (default: <tmp>/anvil_save_best, emptied first)
//
// How the pieces meet: Model::fit evaluates the test subset after every epoch and hands the results
// to the epoch-end hooks. ModelCheckpoint saves at the last step of every epoch (save_checkpoint_steps
// = steps per epoch); at the epoch end it records the evaluation's "accuracy" in that checkpoint's
// manifest, and retention (keep_best_k = 1, mode "max") keeps the best one (plus the newest, which
// retention always keeps). EarlyStopping(patience 1) stops after the first epoch that does not improve
// and restores the best weights. Runs in a few seconds (6000 training images, 2000 test images, <= 8
// epochs).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "callbacks/CheckpointConfig.h"
#include "callbacks/EarlyStopping.h"
#include "callbacks/LambdaCallback.h"
#include "callbacks/ModelCheckpoint.h"
#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "framework/core/Threads.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/data/Transforms.h"
#include "framework/metrics/Accuracy.h"
#include "framework/metrics/Fbeta.h"
#include "framework/nn/Cell.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/CallbackParams.h"
#include "framework/train/Model.h"
#include "framework/train/RunContext.h"
#include "models/LeNet5.h"
#include "serialization/Checkpoint.h"
#include "serialization/LoadParam.h"

using namespace anvil;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  try {
    const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / "anvil_save_best";
    fs::remove_all(dir);
    set_seed(7);          // initializers, and the loaders' shuffle/augmentation seed (none given below)
    set_num_threads(1);  // oneDNN's OpenMP pool: 1 thread leaves the second core to the 2 loader workers

    // Data: 6000 training images with augmentation, produced by 2 worker threads; 2000 test images.
    auto train_set = load_fashion_mnist({.split = "train", .pad_to = 32, .limit = 6000});
    auto test_set = load_fashion_mnist({.split = "test", .pad_to = 32, .limit = 2000});
    auto augment = std::make_shared<Compose>(std::vector<std::shared_ptr<const Transform>>{
        std::make_shared<RandomCrop>(32, 32, Padding{2}), std::make_shared<RandomHorizontalFlip>(0.5)});
    DataLoader train(train_set, {.batch_size = 64, .drop_remainder = true, .transform = augment, .num_workers = 2});
    DataLoader test(test_set, {.batch_size = 500, .shuffle = false});

    auto net = std::make_shared<models::LeNet5>();
    fmt::print("{}\n", net->summary(Tensor::zeros(Shape{1, 1, 32, 32})));

    auto loss = std::make_shared<nn::SoftmaxCrossEntropyWithLogits>();
    auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.01, 0.9);
    Model model(net, loss, opt, {std::make_shared<Accuracy>(), std::make_shared<F1>()});
    Model evaluator(net, nullptr, nullptr, {std::make_shared<Accuracy>()});

    auto ckpt = std::make_shared<ModelCheckpoint>(
        "lenet", dir.string(),
        CheckpointConfig{.save_checkpoint_steps = train.num_batches(), .keep_checkpoint_max = 1,
                         .keep_best_k = 1, .monitor = "accuracy", .mode = "max"},
        ModelCheckpointOptions{.durable = false});
    // After ModelCheckpoint's epoch end: which checkpoint holds which accuracy.
    std::vector<std::pair<double, std::string>> saved;
    auto record = std::make_shared<LambdaCallback>(LambdaCallback::Hooks{
        .on_train_epoch_end = [&](RunContext& ctx) {
          const CallbackParams& p = ctx.original_args();
          const double acc = p.eval_results.at("accuracy");
          fmt::print("epoch {}: test accuracy {:.4f}, macro F1 {:.4f}, data wait so far {:.0f} ms\n", p.cur_epoch_num,
                     acc, p.eval_results.at("f1"), train.wait_seconds() * 1e3);
          if (p.last_save_ckpt_step == p.cur_step_num) saved.emplace_back(acc, p.latest_ckpt_file);
        }});
    auto early = std::make_shared<EarlyStopping>(
        EarlyStoppingOptions{.monitor = "accuracy", .patience = 1, .verbose = true, .restore_best_weights = true});

    model.fit(8, train, test, {ckpt, record, early});

    // The best checkpoint: the highest accuracy (ties: the newer one, as retention decides).
    ANVIL_CHECK(!saved.empty(), "no checkpoint was saved");
    auto best = saved.front();
    for (const auto& s : saved)
      if (s.first >= best.first) best = s;
    fmt::print("\ncheckpoints left in {}:\n", dir.string());
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".ckpt") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) fmt::print("  {}\n", n);
    fmt::print("best checkpoint: {} (test accuracy {:.4f}); training data wait {:.0f} ms over {} batches\n",
               best.second, best.first, train.wait_seconds() * 1e3, train.waited_batches());

    // When EarlyStopping stopped the run it restored the best weights into `net` (it restores only when it
    // stops); a fresh network loaded from the best file agrees with them.
    if (early->stopped_epoch() > 0)
      fmt::print("early stop at epoch {}; restored best weights: test accuracy {:.4f}\n", early->stopped_epoch(),
                 evaluator.eval(test).at("accuracy"));
    else
      fmt::print("no early stop; the network holds the last epoch's weights: test accuracy {:.4f}\n",
                 evaluator.eval(test).at("accuracy"));
    auto fresh = std::make_shared<models::LeNet5>();
    load_param_into_net(*fresh, load_checkpoint(best.second));
    Model reloaded(fresh, nullptr, nullptr, {std::make_shared<Accuracy>()});
    fmt::print("reloaded from {}: test accuracy {:.4f}\n", fs::path(best.second).filename().string(),
               reloaded.eval(test).at("accuracy"));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "save_best: %s\n", e.what());
    return 1;
  }
}
