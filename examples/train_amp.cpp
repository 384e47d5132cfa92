// Mixed-precision training with the Model options, on a Fashion-MNIST subset (a few seconds):
//   * amp_level "O2": conv2d / dense compute in bfloat16 (oneDNN bf16 kernels), float32 master weights;
//   * dynamic loss scaling (DynamicLossScaleManager: halves on overflow, grows after scale_window steps);
//   * gradient clipping by global norm;
//   * gradient accumulation: 2 micro-batches of 32 per optimizer step (an effective batch of 64);
//   * parameter groups: weight decay on weights only (none on biases), biases with twice the rate;
//   * a frozen layer: conv1 keeps its initial weights (requires_grad false: no gradient, no optimizer
//     state), and is still saved in checkpoints.
//
//   train_amp [--epochs 2] [--limit 6000] [--amp O2] [--data-dir DIR] [--seed 1]
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "callbacks/LossMonitor.h"
#include "examples/Flags.h"
#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/LossScaleManager.h"
#include "framework/train/Model.h"
#include "models/LeNet5.h"

namespace {

struct Args {
  int epochs = 2;
  std::int64_t limit = 6000;
  std::string amp = "O2";
  std::string data_dir;  // empty: default_fashion_mnist_dir()
  std::uint64_t seed = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  anvil::examples::Flags flags(argv[0]);
  flags.add("--epochs", a.epochs);
  flags.add("--limit", a.limit);
  flags.add("--amp", a.amp);
  flags.add("--data-dir", a.data_dir);
  flags.add("--seed", a.seed);
  flags.parse(argc, argv);
  if (a.epochs < 1 || a.limit < 0) flags.usage("epochs must be >= 1, limit >= 0", 2);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace anvil;
  const Args args = parse(argc, argv);
  try {
    auto train_set = load_fashion_mnist(
        MnistOptions{.dir = args.data_dir, .split = "train", .pad_to = 32, .limit = args.limit});
    auto test_set = load_fashion_mnist(MnistOptions{.dir = args.data_dir, .split = "test", .pad_to = 32, .limit = 2000});
    DataLoader train_loader(train_set, DataLoaderOptions{.batch_size = 32, .shuffle = true, .seed = args.seed});
    DataLoader test_loader(test_set, DataLoaderOptions{.batch_size = 500, .shuffle = false});

    Generator init(args.seed);
    auto net = std::make_shared<models::LeNet5>(10, 1, &init);
    // Freeze conv1: no gradient, no optimizer state, bytes unchanged by training.
    NamedTensors weights, biases;
    Tensor conv1;
    for (auto& [name, p] : net->parameters_and_names()) {
      if (name == "conv1.weight") {
        p.set_requires_grad(false);
        conv1 = p;
      }
      (name.ends_with(".bias") ? biases : weights).emplace_back(name, p);
    }
    const Tensor conv1_before = conv1.clone();
    // MindSpore-style group_params; frozen parameters in a group are skipped.
    auto opt = std::make_shared<Momentum>(
        OptimizerParams({ParamGroup{.params = weights, .weight_decay = 1e-4},
                         ParamGroup{.params = biases, .lr = 0.02, .weight_decay = 0.0}},
                        net->parameters_and_names()),  // order_params
        0.01, 0.9);
    auto scaler = std::make_shared<DynamicLossScaleManager>(65536.0, 2.0, 100);
    Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {std::make_shared<Accuracy>()},
                ModelOptions{.amp_level = args.amp,
                             .loss_scale_manager = scaler,
                             .accumulate_steps = 2,
                             .clip_grad_norm = 5.0});

    std::cout << "Fashion-MNIST subset: " << train_set->size() << " train, " << test_set->size()
              << " test images; amp_level " << args.amp << ", " << opt->parameters().size()
              << " trainable tensors in " << opt->num_groups() << " groups (conv1 frozen)\n";
    model.train(args.epochs, train_loader, {std::make_shared<LossMonitor>(50)});

    const auto lrs = opt->current_learning_rates();
    std::cout << "optimizer steps: " << opt->global_step() << " (" << model.progress().global_step
              << " micro-batches), loss scale now " << scaler->get_loss_scale() << ", group lrs " << lrs[0] << " / "
              << lrs[1] << "\n";
    const bool frozen_kept = std::memcmp(conv1.data_ptr(), conv1_before.data_ptr(), conv1.nbytes()) == 0;
    std::cout << "conv1 unchanged: " << (frozen_kept ? "yes" : "NO") << "\n";
    std::cout << "test accuracy: " << model.eval(test_loader).at("accuracy") << std::endl;
    return frozen_kept ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "train_amp: " << e.what() << std::endl;
    return 1;
  }
}
