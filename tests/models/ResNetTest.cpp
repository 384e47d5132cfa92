// ResNet-18/50: MindSpore model-zoo names and shapes, forward shapes, a few training steps on synthetic
// data, and finite-difference gradients (BatchNorm backward included) on small instances.
#include <cmath>

#include <gtest/gtest.h>

#include "framework/nn/losses/LossCell.h"
#include "framework/ops/Loss.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Model.h"
#include "models/ResNet.h"
#include "tests/testutil/GradCheck.h"

using namespace anvil;

namespace {

std::int64_t count(const NamedTensors& t) {
  std::int64_t n = 0;
  for (const auto& [name, x] : t) n += x.numel();
  return n;
}

Shape shape_of(const NamedTensors& t, const std::string& name) {
  for (const auto& [n, x] : t)
    if (n == name) return x.shape();
  ADD_FAILURE() << "no tensor named " << name;
  return Shape{};
}

}  // namespace

TEST(ResNet18, MindSporeModelZooNamesAndShapes) {
  auto net = models::resnet18();  // 3 input channels, 10 classes (the zoo's resnet18(class_num=10))
  auto params = net->parameters_and_names();
  EXPECT_EQ(count(params), 11181642);  // as torchvision's resnet18 with 10 classes
  std::vector<std::string> first;
  for (std::size_t i = 0; i < 6; ++i) first.push_back(params[i].first);
  EXPECT_EQ(first, (std::vector<std::string>{"conv1.weight", "bn1.gamma", "bn1.beta", "layer1.0.conv1.weight",
                                             "layer1.0.bn1d.gamma", "layer1.0.bn1d.beta"}));
  EXPECT_EQ(params.back().first, "end_point.bias");
  const auto sd = net->state_dict();
  EXPECT_EQ(shape_of(sd, "conv1.weight"), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(shape_of(sd, "bn1.moving_mean"), (Shape{64}));
  EXPECT_EQ(shape_of(sd, "bn1.moving_variance"), (Shape{64}));
  EXPECT_EQ(shape_of(sd, "layer1.1.conv2.weight"), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(shape_of(sd, "layer1.1.bn2d.moving_variance"), (Shape{64}));
  EXPECT_EQ(shape_of(sd, "layer2.0.conv1.weight"), (Shape{128, 64, 3, 3}));
  EXPECT_EQ(shape_of(sd, "layer2.0.down_sample_layer.0.weight"), (Shape{128, 64, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer2.0.down_sample_layer.1.gamma"), (Shape{128}));
  EXPECT_EQ(shape_of(sd, "layer4.1.bn2d.beta"), (Shape{512}));
  EXPECT_EQ(shape_of(sd, "end_point.weight"), (Shape{10, 512}));
  EXPECT_EQ(shape_of(sd, "end_point.bias"), (Shape{10}));
  // layer1 keeps 64 channels at stride 1: no down-sampling there (as in the zoo).
  for (const auto& [n, t] : sd) EXPECT_EQ(n.rfind("layer1.0.down_sample_layer", 0), std::string::npos) << n;
  // The zoo's BatchNorm settings: _bn(c, res_base=True) in the stem and down-sampling, _bn(c) in blocks.
  EXPECT_NE(net->child("bn1").extra_repr().find("eps=1e-05, momentum=0.1"), std::string::npos);
  auto& block = net->child("layer2").child("0");
  EXPECT_EQ(block.type_name(), "BasicBlock");
  EXPECT_NE(block.child("bn1d").extra_repr().find("eps=0.0001, momentum=0.9"), std::string::npos);
  EXPECT_NE(block.child("down_sample_layer").child("1").extra_repr().find("eps=1e-05, momentum=0.1"),
            std::string::npos);
  EXPECT_EQ(net->forward(Tensor::zeros(Shape{2, 3, 64, 64})).shape(), (Shape{2, 10}));
}

TEST(ResNet50, MindSporeModelZooNamesAndShapes) {
  auto net = models::resnet50();
  const auto params = net->parameters_and_names();
  EXPECT_EQ(count(params), 23528522);  // as torchvision's resnet50 with 10 classes
  const auto sd = net->state_dict();
  EXPECT_EQ(shape_of(sd, "conv1.weight"), (Shape{64, 3, 7, 7}));
  EXPECT_EQ(shape_of(sd, "layer1.0.conv1.weight"), (Shape{64, 64, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer1.0.bn1.gamma"), (Shape{64}));
  EXPECT_EQ(shape_of(sd, "layer1.0.conv2.weight"), (Shape{64, 64, 3, 3}));
  EXPECT_EQ(shape_of(sd, "layer1.0.conv3.weight"), (Shape{256, 64, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer1.0.bn3.moving_variance"), (Shape{256}));
  EXPECT_EQ(shape_of(sd, "layer1.0.down_sample_layer.0.weight"), (Shape{256, 64, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer2.0.down_sample_layer.0.weight"), (Shape{512, 256, 1, 1}));
  EXPECT_EQ(shape_of(sd, "layer3.5.conv2.weight"), (Shape{256, 256, 3, 3}));
  EXPECT_EQ(shape_of(sd, "layer4.2.conv3.weight"), (Shape{2048, 512, 1, 1}));
  EXPECT_EQ(shape_of(sd, "end_point.weight"), (Shape{10, 2048}));
  EXPECT_EQ(net->child("layer1").child("0").type_name(), "Bottleneck");
  EXPECT_NE(net->child("bn1").extra_repr().find("eps=0.0001, momentum=0.9"), std::string::npos);
  EXPECT_EQ(models::resnet50({.num_classes = 1001})->child("end_point").parameters_and_names()[0].second.shape(),
            (Shape{1001, 2048}));
}

TEST(ResNet, OptionsAndInputChecks) {
  // Fashion-MNIST form: 1×28×28 with the 3×3 stem.
  auto small = models::resnet18({.in_channels = 1, .num_classes = 10, .small_input = true, .base_width = 8});
  EXPECT_EQ(small->state_dict()[0].second.shape(), (Shape{8, 1, 3, 3}));
  EXPECT_EQ(small->forward(Tensor::zeros(Shape{2, 1, 28, 28})).shape(), (Shape{2, 10}));
  auto r50 = models::resnet50({.num_classes = 4, .small_input = true, .base_width = 4});
  EXPECT_EQ(r50->forward(Tensor::zeros(Shape{2, 3, 16, 16})).shape(), (Shape{2, 4}));
  // Tiny images with the zoo stem still work (spatial size shrinks to 1).
  EXPECT_EQ(models::resnet18({.base_width = 2})->forward(Tensor::zeros(Shape{2, 3, 7, 7})).shape(), (Shape{2, 10}));
  EXPECT_THROW(small->forward(Tensor::zeros(Shape{2, 3, 28, 28})), Error);
  EXPECT_THROW(small->forward(Tensor::zeros(Shape{2, 28, 28})), Error);
  EXPECT_THROW(models::resnet18({.num_classes = 0}), Error);
  EXPECT_THROW(models::resnet18({.base_width = 0}), Error);
  EXPECT_THROW(models::Bottleneck(8, 6, 1, nullptr), Error);
  EXPECT_THROW(models::BasicBlock(8, 8, 0, nullptr), Error);
  // Same seed, same weights.
  Generator a(3), b(3);
  auto n1 = models::resnet18({.base_width = 4, .generator = &a});
  auto n2 = models::resnet18({.base_width = 4, .generator = &b});
  EXPECT_EQ(n1->parameters_and_names()[0].second.to_vector<float>(),
            n2->parameters_and_names()[0].second.to_vector<float>());
}

TEST(ResNet18, TrainsAFewStepsOnSyntheticData) {
  // Full-width ResNet-18 on Fashion-MNIST-shaped data: a fixed batch of 8 with random labels is
  // memorized step by step.
  Generator g(7);
  auto net = models::resnet18({.in_channels = 1, .num_classes = 10, .small_input = true, .generator = &g});
  auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.05, 0.9);
  Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt);
  Batch batch{testutil::random_f32({8, 1, 28, 28}, 1, 0.0, 1.0),
              Tensor::from_vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, Shape{8})};
  const auto before = net->state_dict();
  std::vector<std::vector<float>> initial;
  for (const auto& [n, t] : before) initial.push_back(t.to_vector<float>());
  net->set_train(true);
  std::vector<double> losses;
  for (int step = 0; step < 6; ++step) losses.push_back(model.train_step(batch).item());
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  EXPECT_LT(losses.back(), losses.front() * 0.7) << losses.front() << " -> " << losses.back();
  // Every parameter moved, and so did BatchNorm's moving statistics.
  const auto after = net->state_dict();
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_NE(after[i].second.to_vector<float>(), initial[i]) << after[i].first;
  // Inference mode gives finite logits.
  for (float v : model.predict(batch.data).to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(ResNet18, FiniteDifferenceGradientsInFloat64) {
  Generator g(12);
  auto net = models::resnet18({.in_channels = 1, .num_classes = 3, .small_input = true, .base_width = 2,
                               .generator = &g});
  net->to_dtype(DType::kF64);
  net->set_train(true);  // BatchNorm with batch statistics: its backward is part of the check
  Tensor x = testutil::random_f64({3, 1, 12, 12}, 5);
  Tensor labels = Tensor::from_vector<std::int32_t>({2, 0, 1}, Shape{3});
  auto loss = [&] { return ops::softmax_cross_entropy(net->forward(x), labels); };
  EXPECT_TRUE(testutil::grad_check_params(loss, net->parameters_and_names(), {.max_coords = 3}));
}

TEST(ResNet50, FiniteDifferenceGradientsInFloat64) {
  Generator g(13);
  auto net = models::resnet50({.in_channels = 1, .num_classes = 3, .base_width = 2, .generator = &g});
  net->to_dtype(DType::kF64);
  net->set_train(true);
  // Zoo stem: 48 -> 24 -> 12, then 12, 6, 3, 2: BatchNorm sees at least 12 values per channel.
  Tensor x = testutil::random_f64({3, 1, 48, 48}, 6);
  Tensor labels = Tensor::from_vector<std::int32_t>({1, 2, 0}, Shape{3});
  auto loss = [&] { return ops::softmax_cross_entropy(net->forward(x), labels); };
  // This narrow network's loss has ReLU/max-pool kinks closer together than the default step: a sweep
  // over one conv1 coordinate gave finite differences 22.9, 21.1, 10.8, 13.3, 11.39711944 for steps
  // 1e-3 .. 1e-7 against the analytic 11.39711953. So: a 1e-7 step, with tolerances for its round-off.
  EXPECT_TRUE(testutil::grad_check_params(loss, net->parameters_and_names(),
                                          {.eps = 1e-7, .atol = 1e-6, .rtol = 1e-4, .max_coords = 2}));
}
