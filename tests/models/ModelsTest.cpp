#include <gtest/gtest.h>

#include "framework/backend/Backend.h"
#include "framework/ops/Loss.h"
#include "models/LeNet5.h"
#include "models/MLP.h"
#include "tests/testutil/GradCheck.h"

using namespace anvil;

TEST(LeNet5, ParameterNamesAndShapesMatchMindSpore) {
  models::LeNet5 net;
  std::vector<std::pair<std::string, Shape>> expect{
      {"conv1.weight", {6, 1, 5, 5}}, {"conv2.weight", {16, 6, 5, 5}}, {"fc1.weight", {120, 400}},
      {"fc1.bias", {120}},            {"fc2.weight", {84, 120}},       {"fc2.bias", {84}},
      {"fc3.weight", {10, 84}},       {"fc3.bias", {10}}};
  auto params = net.parameters_and_names();
  ASSERT_EQ(params.size(), expect.size());
  for (std::size_t i = 0; i < expect.size(); ++i) {
    EXPECT_EQ(params[i].first, expect[i].first);
    EXPECT_EQ(params[i].second.shape(), expect[i].second) << params[i].first;
  }
  EXPECT_EQ(net.forward(Tensor::zeros(Shape{3, 1, 32, 32})).shape(), (Shape{3, 10}));
  EXPECT_THROW(net.forward(Tensor::zeros(Shape{3, 1, 28, 28})), Error);
}

TEST(LeNet5, EndToEndGradientOnSampledCoordinatesInFloat64) {
  Generator g(11);
  models::LeNet5 net(10, 1, &g);
  net.to_dtype(DType::kF64);
  Tensor x = testutil::random_f64({2, 1, 32, 32}, 5);
  Tensor labels = Tensor::from_vector<std::int32_t>({3, 7}, Shape{2});
  auto loss = [&] { return ops::softmax_cross_entropy(net.forward(x), labels); };
  EXPECT_TRUE(testutil::grad_check_params(loss, net.parameters_and_names(), {.max_coords = 6}));
}

TEST(MLP, DefaultIs784x512x10) {
  models::MLP mlp;
  auto p = mlp.parameters_and_names();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].first, "layers.0.weight");
  EXPECT_EQ(p[0].second.shape(), (Shape{512, 784}));
  EXPECT_EQ(p[3].second.shape(), (Shape{10}));
  EXPECT_EQ(mlp.forward(Tensor::zeros(Shape{4, 1, 28, 28})).shape(), (Shape{4, 10}));
}
