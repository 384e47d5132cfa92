// Mixed precision end to end (label `slow`): LeNet-5 trained on all 60000 Fashion-MNIST images for 2
// epochs with amp_level "O2" (bf16 conv/dense compute, float32 master weights) reaches the float32
// ("O0") run's test accuracy within 1 point on the 10000 test images. Same seed, data order and
// initial weights for both runs.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "framework/core/Random.h"
#include "framework/data/DataLoader.h"
#include "framework/data/MnistDataset.h"
#include "framework/metrics/Accuracy.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Model.h"
#include "models/LeNet5.h"

using namespace anvil;

namespace {

struct Result {
  double accuracy = 0;
  double seconds = 0;
};

Result train_lenet(const std::string& amp_level) {
  auto train_set = load_fashion_mnist(MnistOptions{.split = "train", .pad_to = 32});
  auto test_set = load_fashion_mnist(MnistOptions{.split = "test", .pad_to = 32});
  DataLoader train_loader(train_set, DataLoaderOptions{.batch_size = 64, .shuffle = true, .seed = 7});
  DataLoader test_loader(test_set, DataLoaderOptions{.batch_size = 500, .shuffle = false});
  Generator init(1);
  auto net = std::make_shared<models::LeNet5>(10, 1, &init);
  auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.01, 0.9);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt, {std::make_shared<Accuracy>()},
              ModelOptions{.amp_level = amp_level});
  const auto t0 = std::chrono::steady_clock::now();
  model.train(2, train_loader);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {model.eval(test_loader).at("accuracy"), s};
}

}  // namespace

TEST(AmpLeNetFashionMnist, Bf16WithinOnePointOfFloat32) {
  const std::string dir = default_fashion_mnist_dir();
  if (!std::filesystem::is_directory(dir))
    GTEST_SKIP() << "Fashion-MNIST not found in " << dir
                 << " (install the Debian package dataset-fashion-mnist or set ANVIL_FASHION_MNIST_DIR)";
  const Result f32 = train_lenet("O0");
  const Result bf16 = train_lenet("O2");
  std::printf("LeNet-5, 2 epochs: f32 accuracy %.4f (%.1f s), bf16 (O2) accuracy %.4f (%.1f s)\n", f32.accuracy,
              f32.seconds, bf16.accuracy, bf16.seconds);
  EXPECT_GT(f32.accuracy, 0.80);
  EXPECT_GT(bf16.accuracy, 0.80);
  EXPECT_LE(std::fabs(bf16.accuracy - f32.accuracy), 0.01) << "f32 " << f32.accuracy << ", bf16 " << bf16.accuracy;
}
