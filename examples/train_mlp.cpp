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
#include "examples/Flags.h"
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

Args parse(int argc, char** argv) {
  Args a;
  anvil::examples::Flags flags(argv[0]);
  flags.add("--epochs", a.epochs);
  flags.add("--batch-size", a.batch_size);
  flags.add("--lr", a.lr);
  flags.add("--hidden", a.hidden);
  flags.add("--limit", a.limit);
  flags.add("--seed", a.seed);
  flags.add("--data-dir", a.data_dir);
  flags.parse(argc, argv);
  if (a.epochs < 1 || a.batch_size < 1 || a.hidden < 1 || a.limit < 0)
    flags.usage("epochs, batch size and hidden must be >= 1, limit >= 0", 2);
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
