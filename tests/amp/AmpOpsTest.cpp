// Mixed precision (ComputePrecision / Model amp_level): the oneDNN bf16 kernels for conv2d and
// matmul/linear (forward and backward) match the reference backend's bf16 emulation, stay within
// bf16 tolerance of float32, and really compute in bf16 (results differ from float32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/backend/ComputePrecision.h"
#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Random.h"
#include "framework/nn/losses/LossCell.h"
#include "framework/optim/Momentum.h"
#include "framework/train/Model.h"
#include "models/LeNet5.h"
#include "tests/train/TrainTestUtil.h"

using namespace anvil;

namespace {

Tensor uniform(const Shape& shape, Generator& gen) {
  std::vector<float> v(static_cast<std::size_t>(shape.numel()));
  for (float& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  return Tensor::from_vector(v, shape);
}

// max |got - want| / max |want|
double rel_err(const Tensor& got, const Tensor& want) {
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  double num = 0, den = 1e-12;
  for (std::size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / den;
}

// The three checks for one op: `run(backend)` computes the op's result on that backend.
template <typename F>
void check_op(const std::string& what, F&& run) {
  OneDnnBackend dnn;
  ReferenceBackend ref;
  const Tensor f32 = run(ref);
  Tensor dnn16, ref16;
  {
    ComputePrecisionScope bf16(ComputePrecision::kBF16);
    dnn16 = run(dnn);
    ref16 = run(ref);
  }
  // Same bf16-rounded operands, f32 accumulation: only the summation order differs.
  EXPECT_LT(rel_err(dnn16, ref16), 1e-4) << what << ": oneDNN bf16 vs reference bf16 emulation";
  // bf16 has an 8-bit mantissa: relative error of a product ~2^-8, averaged down by the sums.
  EXPECT_LT(rel_err(dnn16, f32), 2e-2) << what << ": bf16 vs float32";
  EXPECT_GT(rel_err(dnn16, f32), 1e-5) << what << ": bf16 result equals float32 (precision not applied?)";
  // Outside the scope everything is float32 again.
  EXPECT_LT(rel_err(run(dnn), f32), 1e-4) << what << ": float32 after the scope";
}

}  // namespace

TEST(AmpOps, PrecisionScopeAndAmpLevels) {
  EXPECT_EQ(current_compute_precision(), ComputePrecision::kF32);
  {
    ComputePrecisionScope s(compute_precision_for("O2"));
    EXPECT_EQ(current_compute_precision(), ComputePrecision::kBF16);
    {
      ComputePrecisionScope inner(compute_precision_for("O0"));
      EXPECT_EQ(current_compute_precision(), ComputePrecision::kF32);
    }
    EXPECT_EQ(current_compute_precision(), ComputePrecision::kBF16);
  }
  EXPECT_EQ(current_compute_precision(), ComputePrecision::kF32);
  EXPECT_EQ(compute_precision_for("O3"), ComputePrecision::kBF16);
  EXPECT_THROW(compute_precision_for("O1"), Error);
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 256.0f), 1.0f);  // tie -> even
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 256.0f), 1.0f + 4.0f / 256.0f);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::nanf(""))));
  // The in-place loop rounds exactly like round_to_bf16, NaN and infinities included.
  Generator g(5);
  std::vector<float> v(1000);
  for (float& x : v) x = static_cast<float>(g.normal() * 1e3);
  v[3] = std::numeric_limits<float>::infinity();
  v[4] = -std::numeric_limits<float>::infinity();
  v[5] = std::nanf("");
  v[6] = 3.3895314e38f;  // rounds up to infinity in bf16
  std::vector<float> w = v;
  round_to_bf16_inplace(w.data(), static_cast<std::int64_t>(w.size()));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(v[i])) {
      EXPECT_TRUE(std::isnan(w[i]));
    } else {
      EXPECT_EQ(w[i], round_to_bf16(v[i])) << i;
    }
  }
}

TEST(AmpOps, LinearForwardBackwardMatchReference) {
  Generator g(1);
  const Tensor x = uniform(Shape{33, 70}, g), w = uniform(Shape{19, 70}, g), b = uniform(Shape{19}, g);
  const Tensor dy = uniform(Shape{33, 19}, g);
  check_op("linear_forward", [&](Backend& be) { return be.linear_forward(x, w, b); });
  check_op("linear_backward_data", [&](Backend& be) { return be.linear_backward_data(dy, w); });
  check_op("linear_backward_weights", [&](Backend& be) { return be.linear_backward_weights(dy, x, true).dw; });
  check_op("matmul", [&](Backend& be) { return be.matmul(x, w, false, true); });
  const Tensor a3 = uniform(Shape{3, 8, 40}, g), b3 = uniform(Shape{3, 40, 12}, g);
  check_op("batched matmul", [&](Backend& be) { return be.matmul(a3, b3, false, false); });
  // check_op's scopes end with it: this thread computes in float32 again.
  EXPECT_EQ(current_compute_precision(), ComputePrecision::kF32);
}

TEST(AmpOps, ConvForwardBackwardMatchReference) {
  Generator g(2);
  struct Case {
    Shape x, w;
    Conv2dParams p;
  };
  const std::vector<Case> cases = {
      {Shape{4, 6, 14, 14}, Shape{16, 6, 5, 5}, {}},                                 // LeNet conv2
      {Shape{4, 1, 32, 32}, Shape{6, 1, 5, 5}, {}},                                  // LeNet conv1 (single channel)
      {Shape{2, 8, 9, 9}, Shape{12, 8, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1,
                                               .pad_left = 1, .pad_right = 1}},
  };
  for (const Case& c : cases) {
    const Tensor x = uniform(c.x, g), w = uniform(c.w, g), b = uniform(Shape{c.w[0]}, g);
    const Tensor y = ReferenceBackend().conv2d_forward(x, w, b, c.p);
    ASSERT_EQ(y.dim(1), c.w[0]);  // one output channel per filter
    const Tensor dy = uniform(y.shape(), g);
    const std::string s = "conv " + c.x.str() + " * " + c.w.str();
    check_op(s + " forward", [&](Backend& be) { return be.conv2d_forward(x, w, b, c.p); });
    if (c.x[1] > 1)
      check_op(s + " backward_data", [&](Backend& be) { return be.conv2d_backward_data(dy, w, c.x, c.p); });
    check_op(s + " backward_weights",
             [&](Backend& be) { return be.conv2d_backward_weights(dy, x, c.w, true, c.p).dw; });
  }
}

TEST(AmpOps, ModelO2TrainsAndKeepsFloat32MasterWeights) {
  for (const std::string level : {"O0", "O2", "O3"}) {
    Generator g(3);
    auto net = std::make_shared<models::MLP>(8, std::vector<std::int64_t>{32}, 4, &g);
    auto opt = std::make_shared<Momentum>(net->trainable_params(), 0.05, 0.9);
    Model model(net, std::make_shared<nn::SoftmaxCrossEntropyWithLogits>(), opt,
                {std::make_shared<Accuracy>()}, ModelOptions{.amp_level = level});
    DataLoader loader(testutil::separable_dataset(256, 8, 4, 7), DataLoaderOptions{.batch_size = 32, .seed = 1});
    model.train(8, loader);
    for (const auto& [n, t] : net->parameters_and_names()) EXPECT_EQ(t.dtype(), DType::kF32) << n;
    EXPECT_EQ(current_compute_precision(), ComputePrecision::kF32);  // the scope ended with train_step
    DataLoader eval(testutil::separable_dataset(256, 8, 4, 7), DataLoaderOptions{.batch_size = 256, .shuffle = false});
    EXPECT_GT(model.eval(eval).at("accuracy"), 0.9) << level;
  }
  EXPECT_THROW(Model(std::make_shared<models::MLP>(), nullptr, nullptr, {}, ModelOptions{.amp_level = "O1"}), Error);
}

TEST(AmpOps, SecondIdenticalBf16StepBuildsNothingAndF32PrimitivesAreSeparate) {
  auto& bk = dynamic_cast<OneDnnBackend&>(onednn_backend());
  BackendScope scope(bk);
  Generator g(4);
  models::LeNet5 net(10, 1, &g);
  const Tensor x = uniform(Shape{8, 1, 32, 32}, g);
  const Tensor labels = Tensor::from_vector<std::int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, Shape{8});
  auto step = [&](ComputePrecision prec) {
    ComputePrecisionScope amp(prec);
    Tensor loss = nn::SoftmaxCrossEntropyWithLogits()(net.forward(x), labels);
    autograd::backward(loss);
    for (auto& [n, p] : net.parameters_and_names()) p.zero_grad();
  };
  step(ComputePrecision::kF32);
  const std::size_t f32_only = bk.primitives_created();
  step(ComputePrecision::kBF16);
  const std::size_t after_bf16 = bk.primitives_created();
  EXPECT_GT(after_bf16, f32_only);  // bf16 primitives are cached under their own keys
  step(ComputePrecision::kBF16);
  step(ComputePrecision::kF32);
  EXPECT_EQ(bk.primitives_created(), after_bf16);
}
