#include <gtest/gtest.h>

#include "framework/backend/Backend.h"
#include "framework/nn/Initializer.h"
#include "framework/nn/layers/Activations.h"
#include "framework/nn/layers/BatchNorm2d.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"
#include "framework/nn/layers/Dropout.h"
#include "framework/nn/layers/Pooling.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/ShapeOps.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using testutil::grad_check_params;
using testutil::random_f64;

namespace {

class Block : public nn::Cell {
 public:
  Block() {
    conv1 = register_cell("conv1", std::make_shared<nn::Conv2d>(3, 4, 3));
    bn1 = register_cell("bn1", std::make_shared<nn::BatchNorm2d>(4));
  }
  Tensor forward(const Tensor& x) override { return bn1->forward(conv1->forward(x)); }
  std::string type_name() const override { return "Block"; }
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::BatchNorm2d> bn1;
};

class BadName : public nn::Cell {
 public:
  explicit BadName(const std::string& n) { register_parameter(n, Tensor::zeros(Shape{1})); }
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "BadName"; }
};

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

}  // namespace

TEST(Cell, HierarchicalNamesAsMindSporeSpellsThem) {
  nn::SequentialCell layer1({std::make_shared<Block>(), std::make_shared<Block>()});
  EXPECT_EQ(names(layer1.parameters_and_names()),
            (std::vector<std::string>{"0.conv1.weight", "0.bn1.gamma", "0.bn1.beta", "1.conv1.weight", "1.bn1.gamma",
                                      "1.bn1.beta"}));
  EXPECT_EQ(names(layer1.buffers_and_names()),
            (std::vector<std::string>{"0.bn1.moving_mean", "0.bn1.moving_variance", "1.bn1.moving_mean",
                                      "1.bn1.moving_variance"}));
  EXPECT_EQ(layer1.state_dict().size(), 10u);
  auto cells = layer1.cells_and_names();
  ASSERT_EQ(cells.size(), 7u);
  EXPECT_EQ(cells[1].first, "0");
  EXPECT_EQ(cells[2].first, "0.conv1");
}

TEST(Cell, NamesAreValidated) {
  EXPECT_NE(error_of([] { BadName b("a.b"); }).find("'a.b' must not contain '.'"), std::string::npos);
  EXPECT_NE(error_of([] { BadName b(""); }).find("empty name"), std::string::npos);
}

TEST(Cell, SetTrainPropagatesAndFrozenParamsAreNotTrainable) {
  Block b;
  b.set_train(false);
  EXPECT_FALSE(b.bn1->training());
  nn::BatchNorm2d frozen(3, {.affine = false});
  EXPECT_EQ(frozen.parameters_and_names().size(), 2u);
  EXPECT_TRUE(frozen.trainable_params().empty());
}

TEST(Layers, ShapeMismatchErrorsNameTheShapes) {
  nn::Dense d(400, 120);
  auto msg = error_of([&] { d.forward(Tensor::zeros(Shape{2, 256})); });
  EXPECT_NE(msg.find("[2,256]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[120,400]"), std::string::npos) << msg;
  nn::Conv2d c(3, 8, 3);
  msg = error_of([&] { c.forward(Tensor::zeros(Shape{1, 4, 8, 8})); });
  EXPECT_NE(msg.find("[1,4,8,8]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8,3,3,3]"), std::string::npos) << msg;
  EXPECT_THROW(nn::Conv2d(3, 8, 3, {.pad_mode = "bogus"}), Error);
  EXPECT_THROW(nn::Conv2d(3, 8, 3, {.group = 2}), Error);
  nn::SoftmaxCrossEntropyWithLogits loss;
  msg = error_of([&] { loss(Tensor::zeros(Shape{2, 3}), Tensor::from_vector<std::int32_t>({0, 3}, Shape{2})); });
  EXPECT_NE(msg.find("3"), std::string::npos) << msg;
}

TEST(Layers, ConvPadModesGiveMindSporeOutputSizes) {
  nn::Conv2d same(1, 2, 3, {.stride = 2});  // MindSpore default pad_mode "same"
  EXPECT_EQ(same.forward(Tensor::zeros(Shape{1, 1, 7, 8})).shape(), (Shape{1, 2, 4, 4}));
  nn::Conv2d valid(1, 2, 5, {.pad_mode = "valid"});
  EXPECT_EQ(valid.forward(Tensor::zeros(Shape{1, 1, 32, 32})).shape(), (Shape{1, 2, 28, 28}));
  nn::Conv2d pad(1, 2, 3, {.pad_mode = "pad", .padding = 2});
  EXPECT_EQ(pad.forward(Tensor::zeros(Shape{1, 1, 5, 5})).shape(), (Shape{1, 2, 7, 7}));
  nn::MaxPool2d mp(2, {.stride = 2});
  EXPECT_EQ(mp.forward(Tensor::zeros(Shape{1, 1, 5, 5})).shape(), (Shape{1, 1, 2, 2}));
  nn::MaxPool2d mps(2, {.stride = 2, .pad_mode = "same"});
  EXPECT_EQ(mps.forward(Tensor::zeros(Shape{1, 1, 5, 5})).shape(), (Shape{1, 1, 3, 3}));
}

TEST(Layers, DefaultInitIsMindSporeHeUniformSqrt5) {
  Generator g(3);
  nn::Dense d(100, 50, {.generator = &g});
  // HeUniform(√5) on fan_in 100 and the bias rule are both U(±1/√100) = U(±0.1).
  for (float v : d.weight().to_vector<float>()) ASSERT_LE(std::abs(v), 0.1f);
  for (float v : d.bias().to_vector<float>()) ASSERT_LE(std::abs(v), 0.1f);
  double s2 = 0;
  for (float v : d.weight().to_vector<float>()) s2 += double(v) * v;
  EXPECT_NEAR(s2 / 5000.0, 0.01 / 3.0, 0.0005);  // variance of U(±a) is a²/3
  Generator g1(3);
  nn::Dense same(100, 50, {.generator = &g1});
  EXPECT_EQ(same.weight().to_vector<float>(), d.weight().to_vector<float>());
}

TEST(Layers, BatchNormUpdatesMovingStatisticsMindSporeStyle) {
  nn::BatchNorm2d bn(1, {.momentum = 0.9});
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, Shape{2, 1, 1, 2});
  (void)bn.forward(x);
  auto state = bn.buffers_and_names();
  EXPECT_NEAR(state[0].second.item(), 0.1 * 2.5, 1e-6);                       // moving_mean
  EXPECT_NEAR(state[1].second.item(), 0.9 + 0.1 * (5.0 / 3.0), 1e-6);         // unbiased var of 1..4
  bn.set_train(false);
  Tensor y = bn.forward(x);
  EXPECT_NEAR(y.to_vector<float>()[0], (1 - 0.25) / std::sqrt(0.9 + 0.5 / 3.0 + 1e-5), 1e-5);
}

TEST(Layers, DropoutIsSeededAndIdentityInInference) {
  nn::Dropout a(0.5, 42), b(0.5, 42);
  Tensor x = Tensor::ones(Shape{1000});
  auto ya = a.forward(x).to_vector<float>(), yb = b.forward(x).to_vector<float>();
  EXPECT_EQ(ya, yb);
  int zeros = 0;
  for (float v : ya) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros += v == 0.0f;
  }
  EXPECT_NEAR(zeros, 500, 60);
  a.set_train(false);
  EXPECT_EQ(a.forward(x).to_vector<float>(), x.to_vector<float>());
}

TEST(Initializers, FormulasAndNames) {
  EXPECT_DOUBLE_EQ(nn::compute_fans(Shape{6, 1, 5, 5}).fan_in, 25);
  EXPECT_DOUBLE_EQ(nn::compute_fans(Shape{6, 1, 5, 5}).fan_out, 150);
  EXPECT_DOUBLE_EQ(nn::calculate_gain("leaky_relu", std::sqrt(5.0)), std::sqrt(1.0 / 3.0));
  EXPECT_THROW(nn::make_initializer("bogus"), Error);
  Generator g(1);
  Tensor t = nn::initialized(Shape{200, 300}, *nn::make_initializer("xavier_uniform"), g);
  const double bound = std::sqrt(6.0 / 500.0);
  for (float v : t.to_vector<float>()) ASSERT_LE(std::abs(v), bound);
  Tensor tn = nn::initialized(Shape{20000}, nn::TruncatedNormal(0.5), g);
  for (float v : tn.to_vector<float>()) ASSERT_LT(std::abs(v), 1.0f);
  Tensor hn = nn::initialized(Shape{400, 100}, *nn::make_initializer("he_normal"), g);
  double s2 = 0;
  for (float v : hn.to_vector<float>()) s2 += double(v) * v;
  EXPECT_NEAR(s2 / 40000.0, 2.0 / 100.0, 0.001);  // kaiming normal, relu-like default: 2/fan_in
}

TEST(GradCheckLayers, DenseConvBatchNormInFloat64) {
  Block b;
  b.to_dtype(DType::kF64);
  nn::Dense d(4 * 5 * 5, 3);
  d.to_dtype(DType::kF64);
  Tensor x = random_f64({2, 3, 5, 5}, 7);
  auto loss = [&] {
    Tensor h = b.forward(x);  // [2,4,5,5]
    return ops::sum(d.forward(ops::flatten(h)));
  };
  NamedTensors params = b.parameters_and_names();
  for (auto& p : d.parameters_and_names()) params.push_back(p);
  EXPECT_TRUE(grad_check_params(loss, params, {.max_coords = 12}));
}
