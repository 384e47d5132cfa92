// Conformance of OneDnnBackend with the reference backend (the oracle): every accelerated op,
// forward and backward, on random inputs and odd shapes; plus the primitive cache's contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "framework/backend/Backend.h"
#include "framework/backend/onednn/BatchNormKernels.h"
#include "framework/backend/onednn/OneDnnBackend.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Random.h"
#include "framework/core/Threads.h"
#include "tests/testutil/Paths.h"
#include "tests/testutil/TempDir.h"

namespace anvil {
namespace {

// Uniform random tensor in [lo, hi).
Tensor uniform(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0, DType dtype = DType::kF32) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = gen.uniform(lo, hi);
  return Tensor::from_vector(v, shape).to(dtype);
}

// |got - want| <= rtol * (|want| + max|want|) elementwise: relative, with an absolute floor scaled by
// the magnitude of the result (sums of many terms cancel).
::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol = 1e-4) {
  if (!got.defined() || !want.defined())
    return ::testing::AssertionFailure() << "undefined tensor: got " << got.desc() << ", want " << want.desc();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << got.shape().str() << " != " << want.shape().str();
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double max_abs = 1e-6;
  for (double x : w) max_abs = std::max(max_abs, std::abs(x));
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (!(std::abs(g[i] - w[i]) <= rtol * (std::abs(w[i]) + max_abs)))
      return ::testing::AssertionFailure() << "element " << i << " of " << want.desc() << ": got " << g[i]
                                           << ", want " << w[i] << " (max |want| " << max_abs << ")";
  }
  return ::testing::AssertionSuccess();
}

std::string conv_str(const Shape& x, const Shape& w, const Conv2dParams& p) {
  return fmt::format("x {} w {} stride {}x{} pad t{} b{} l{} r{} dil {}x{} groups {}", x.str(), w.str(), p.stride_h,
                     p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right, p.dilation_h, p.dilation_w,
                     p.groups);
}

class OneDnnConformance : public ::testing::Test {
 protected:
  OneDnnBackend dnn;
  ReferenceBackend ref;
  Generator gen{20240611};
};

// ---------------------------------------------------------------------------------------------
// dense algebra
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, MatmulAllTransposesAndBatches) {
  struct Case {
    std::vector<std::int64_t> batch;
    std::int64_t m, k, n;
  };
  for (const Case& c : {Case{{}, 7, 5, 3}, Case{{}, 1, 9, 1}, Case{{2}, 3, 4, 5}, Case{{2, 3}, 7, 5, 4},
                        Case{{}, 64, 400, 120}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        std::vector<std::int64_t> ad = c.batch, bd = c.batch;
        ad.push_back(ta ? c.k : c.m);
        ad.push_back(ta ? c.m : c.k);
        bd.push_back(tb ? c.n : c.k);
        bd.push_back(tb ? c.k : c.n);
        const Tensor a = uniform(Shape(ad), gen), b = uniform(Shape(bd), gen);
        SCOPED_TRACE(a.desc() + " x " + b.desc() + (ta ? " ta" : "") + (tb ? " tb" : ""));
        EXPECT_TRUE(close(dnn.matmul(a, b, ta, tb), ref.matmul(a, b, ta, tb)));
      }
    }
  }
}

TEST_F(OneDnnConformance, LinearForwardAndBackward) {
  for (auto [n, in, out] : std::vector<std::array<std::int64_t, 3>>{{3, 7, 5}, {1, 1, 1}, {64, 400, 120}, {64, 84, 10}}) {
    const Tensor x = uniform(Shape{n, in}, gen), w = uniform(Shape{out, in}, gen), b = uniform(Shape{out}, gen);
    const Tensor dy = uniform(Shape{n, out}, gen);
    SCOPED_TRACE(x.desc() + " " + w.desc());
    EXPECT_TRUE(close(dnn.linear_forward(x, w, b), ref.linear_forward(x, w, b)));
    EXPECT_TRUE(close(dnn.linear_forward(x, w, Tensor()), ref.linear_forward(x, w, Tensor())));
    EXPECT_TRUE(close(dnn.linear_backward_data(dy, w), ref.linear_backward_data(dy, w)));
    for (bool with_bias : {true, false}) {
      const WeightGrads got = dnn.linear_backward_weights(dy, x, with_bias);
      const WeightGrads want = ref.linear_backward_weights(dy, x, with_bias);
      EXPECT_TRUE(close(got.dw, want.dw));
      EXPECT_EQ(got.db.defined(), with_bias);
      if (with_bias) {
        EXPECT_TRUE(close(got.db, want.db));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// convolution
// ---------------------------------------------------------------------------------------------
struct ConvCase {
  Shape x, w;
  Conv2dParams p;
};

std::vector<ConvCase> conv_cases() {
  return {
      {{3, 5, 7, 7}, {4, 5, 3, 3}, {}},
      {{3, 5, 7, 7}, {4, 5, 3, 3}, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
      // MindSpore pad_mode 'same' with stride 2 on an even size pads only bottom/right.
      {{2, 3, 8, 8}, {4, 3, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_top = 0, .pad_bottom = 1, .pad_left = 0, .pad_right = 1}},
      {{2, 3, 7, 9}, {4, 3, 3, 2}, {.pad_top = 1, .pad_bottom = 2, .pad_left = 2, .pad_right = 0}},
      {{3, 5, 7, 7}, {6, 5, 3, 3}, {.stride_h = 2, .stride_w = 2}},
      {{3, 5, 9, 8}, {4, 5, 3, 3}, {.stride_h = 2, .stride_w = 1, .pad_top = 1, .pad_bottom = 0, .pad_left = 1, .pad_right = 1}},
      {{3, 5, 7, 7}, {4, 5, 3, 3}, {.dilation_h = 2, .dilation_w = 2}},
      {{2, 4, 9, 9}, {4, 4, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_bottom = 1, .pad_left = 1, .pad_right = 2, .dilation_h = 2, .dilation_w = 2}},
      {{2, 4, 7, 7}, {6, 2, 3, 3}, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 2}},
      {{3, 5, 7, 7}, {5, 1, 3, 3}, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1, .groups = 5}},  // depthwise
      {{2, 6, 8, 8}, {12, 1, 3, 3}, {.stride_h = 2, .stride_w = 2, .pad_top = 0, .pad_bottom = 1, .pad_left = 0, .pad_right = 1, .groups = 6}},
      {{3, 5, 7, 7}, {7, 5, 1, 1}, {}},
      {{8, 1, 32, 32}, {6, 1, 5, 5}, {}},   // LeNet conv1
      // One input channel, unpadded: the direct single-channel kernels (k blocks, tails, chunks).
      {{3, 1, 20, 18}, {10, 1, 3, 3}, {}},  // ow 16, 10 output channels
      {{9, 1, 12, 23}, {4, 1, 7, 7}, {}},   // ow 17 (overlapping tail), 9 images (8 + 1)
      {{5, 1, 9, 36}, {7, 1, 5, 5}, {}},    // ow 32 (two full segments)
      {{2, 1, 6, 40}, {3, 1, 1, 3}, {}},    // one kernel row, ow 38
      {{8, 6, 14, 14}, {16, 6, 5, 5}, {}},  // LeNet conv2
      {{2, 1, 28, 28}, {6, 1, 5, 5}, {.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2}},
  };
}

TEST_F(OneDnnConformance, Conv2dForward) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(conv_str(c.x, c.w, c.p));
    const Tensor x = uniform(c.x, gen), w = uniform(c.w, gen), b = uniform(Shape{c.w[0]}, gen);
    EXPECT_TRUE(close(dnn.conv2d_forward(x, w, b, c.p), ref.conv2d_forward(x, w, b, c.p)));
    EXPECT_TRUE(close(dnn.conv2d_forward(x, w, Tensor(), c.p), ref.conv2d_forward(x, w, Tensor(), c.p)));
  }
}

TEST_F(OneDnnConformance, Conv2dBackwardData) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(conv_str(c.x, c.w, c.p));
    const Tensor w = uniform(c.w, gen);
    const Shape y_shape = ref.conv2d_forward(Tensor::zeros(c.x), w, Tensor(), c.p).shape();
    const Tensor dy = uniform(y_shape, gen);
    EXPECT_TRUE(close(dnn.conv2d_backward_data(dy, w, c.x, c.p), ref.conv2d_backward_data(dy, w, c.x, c.p)));
  }
}

TEST_F(OneDnnConformance, Conv2dBackwardWeights) {
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(conv_str(c.x, c.w, c.p));
    const Tensor x = uniform(c.x, gen);
    const Shape y_shape = ref.conv2d_forward(x, Tensor::zeros(c.w), Tensor(), c.p).shape();
    const Tensor dy = uniform(y_shape, gen);
    for (bool with_bias : {true, false}) {
      const WeightGrads got = dnn.conv2d_backward_weights(dy, x, c.w, with_bias, c.p);
      const WeightGrads want = ref.conv2d_backward_weights(dy, x, c.w, with_bias, c.p);
      EXPECT_TRUE(close(got.dw, want.dw));
      EXPECT_EQ(got.db.defined(), with_bias);
      if (with_bias) {
        EXPECT_TRUE(close(got.db, want.db));
      }
    }
  }
}

TEST_F(OneDnnConformance, Conv2dFloat64FallsBackToReference) {
  const ConvCase c{{2, 3, 7, 7}, {4, 3, 3, 3}, {.pad_top = 1, .pad_bottom = 0, .pad_left = 0, .pad_right = 1}};
  const Tensor x = uniform(c.x, gen, -1, 1, DType::kF64), w = uniform(c.w, gen, -1, 1, DType::kF64);
  const Tensor y = dnn.conv2d_forward(x, w, Tensor(), c.p);
  EXPECT_EQ(y.dtype(), DType::kF64);
  EXPECT_TRUE(close(y, ref.conv2d_forward(x, w, Tensor(), c.p), 1e-12));
  EXPECT_EQ(dnn.primitives_created(), 0u);
}

TEST_F(OneDnnConformance, Conv2dRejectsMismatchedChannels) {
  const Tensor x = uniform(Shape{2, 3, 7, 7}, gen), w = uniform(Shape{4, 2, 3, 3}, gen);
  EXPECT_THROW(dnn.conv2d_forward(x, w, Tensor(), {}), Error);
}

// ---------------------------------------------------------------------------------------------
// pooling
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, Pool2dForwardAndBackward) {
  const std::vector<Pool2dParams> params = {
      {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
      {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1},
      {.kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_top = 0, .pad_bottom = 1, .pad_left = 1, .pad_right = 0},
      {.kernel_h = 3, .kernel_w = 2, .stride_h = 2, .stride_w = 1, .pad_top = 1, .pad_bottom = 0, .pad_left = 0, .pad_right = 1},
      {.kernel_h = 2, .kernel_w = 2, .stride_h = 1, .stride_w = 1},
  };
  for (const Shape& xs : {Shape{3, 5, 7, 7}, Shape{2, 6, 28, 28}, Shape{1, 2, 8, 9}}) {
    const Tensor x = uniform(xs, gen);
    for (Pool2dParams p : params) {
      for (int variant = 0; variant < 3; ++variant) {
        p.kind = variant == 0 ? PoolKind::kMax : PoolKind::kAvg;
        p.count_include_pad = variant == 2;
        SCOPED_TRACE(fmt::format("x {} kind {} include_pad {} k {}x{} s {}x{} pad t{} b{} l{} r{}", xs.str(),
                                 variant == 0 ? "max" : "avg", p.count_include_pad, p.kernel_h, p.kernel_w,
                                 p.stride_h, p.stride_w, p.pad_top, p.pad_bottom, p.pad_left, p.pad_right));
        const PoolResult got = dnn.pool2d_forward(x, p);
        const PoolResult want = ref.pool2d_forward(x, p);
        EXPECT_TRUE(close(got.y, want.y));
        if (p.kind == PoolKind::kMax) {
          ASSERT_TRUE(got.workspace.defined());
          EXPECT_EQ(got.workspace.dtype(), DType::kU8);
        }
        const Tensor dy = uniform(want.y.shape(), gen);
        EXPECT_TRUE(close(dnn.pool2d_backward(dy, x, got, p), ref.pool2d_backward(dy, x, want, p)));
      }
    }
  }
}

TEST_F(OneDnnConformance, MaxPoolTiesRouteToTheFirstMaximumLikeTheReference) {
  // ReLU outputs are full of equal zeros: whole windows tie, and the gradient must go where the
  // reference sends it.
  std::vector<float> v(static_cast<std::size_t>(2 * 3 * 9 * 10));
  for (float& e : v) e = gen.uniform() < 0.6 ? 0.f : 1.f;
  const Tensor x = Tensor::from_vector(v, Shape{2, 3, 9, 10});
  for (Pool2dParams p : {Pool2dParams{.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2},
                         Pool2dParams{.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_top = 1,
                                      .pad_bottom = 1, .pad_left = 1, .pad_right = 1}}) {
    SCOPED_TRACE(fmt::format("kernel {}", p.kernel_h));
    const PoolResult got = dnn.pool2d_forward(x, p), want = ref.pool2d_forward(x, p);
    EXPECT_TRUE(close(got.y, want.y, 0.0));
    const Tensor dy = uniform(want.y.shape(), gen);
    EXPECT_TRUE(close(dnn.pool2d_backward(dy, x, got, p), ref.pool2d_backward(dy, x, want, p)));
  }
}

// ---------------------------------------------------------------------------------------------
// elementwise
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, EltwiseEveryKindForwardAndBackward) {
  struct Case {
    EltwiseKind kind;
    double alpha, beta, lo, hi;
    const char* name;
  };
  const std::vector<Case> cases = {
      {EltwiseKind::kRelu, 0.0, 0.0, -1, 1, "relu"},       {EltwiseKind::kRelu, 0.1, 0.0, -1, 1, "leaky_relu"},
      {EltwiseKind::kSigmoid, 0, 0, -4, 4, "sigmoid"},     {EltwiseKind::kTanh, 0, 0, -3, 3, "tanh"},
      {EltwiseKind::kGelu, 0, 0, -3, 3, "gelu"},           {EltwiseKind::kExp, 0, 0, -2, 2, "exp"},
      {EltwiseKind::kLog, 0, 0, 0.1, 3, "log"},            {EltwiseKind::kSqrt, 0, 0, 0.1, 3, "sqrt"},
      {EltwiseKind::kSquare, 0, 0, -2, 2, "square"},       {EltwiseKind::kAbs, 0, 0, -2, 2, "abs"},
      {EltwiseKind::kLinear, 2.5, -0.5, -2, 2, "linear"},
  };
  for (const Shape& s : {Shape{3, 5, 7, 7}, Shape{7}, Shape{64, 120}}) {
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(c.name) + " " + s.str());
      const Tensor x = uniform(s, gen, c.lo, c.hi);
      const Tensor y = dnn.eltwise_forward(c.kind, x, c.alpha, c.beta);
      const Tensor y_ref = ref.eltwise_forward(c.kind, x, c.alpha, c.beta);
      EXPECT_TRUE(close(y, y_ref));
      const Tensor dy = uniform(s, gen);
      EXPECT_TRUE(close(dnn.eltwise_backward(c.kind, dy, x, y, c.alpha, c.beta),
                        ref.eltwise_backward(c.kind, dy, x, y_ref, c.alpha, c.beta)));
    }
  }
}

TEST_F(OneDnnConformance, BinaryWithBroadcasting) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 5, 7, 7}, {3, 5, 7, 7}}, {{3, 5, 7, 7}, {1, 5, 1, 1}}, {{3, 5, 7, 7}, {5, 1, 1}},
      {{5, 1, 1}, {3, 5, 7, 7}},    {{3, 1, 7}, {1, 5, 1}},       {{3, 5, 7}, {7}},
      {{7}, {3, 5, 7}},             {{3, 5}, {}},                 {{}, {}},
      {{64, 10}, {64, 1}},          {{1, 10}, {64, 10}},
  };
  const std::vector<std::pair<BinaryKind, const char*>> kinds = {
      {BinaryKind::kAdd, "add"}, {BinaryKind::kSub, "sub"}, {BinaryKind::kMul, "mul"},
      {BinaryKind::kDiv, "div"}, {BinaryKind::kMax, "max"}, {BinaryKind::kMin, "min"},
  };
  for (const auto& [as, bs] : shapes) {
    for (const auto& [kind, name] : kinds) {
      SCOPED_TRACE(fmt::format("{} {} {}", as.str(), name, bs.str()));
      const Tensor a = uniform(as, gen, -2, 2);
      const Tensor b = kind == BinaryKind::kDiv ? uniform(bs, gen, 0.5, 2) : uniform(bs, gen, -2, 2);
      EXPECT_TRUE(close(dnn.binary(kind, a, b), ref.binary(kind, a, b)));
    }
  }
}

TEST_F(OneDnnConformance, ReduceEveryKind) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 5, 7, 7}, {1, 5, 1, 1}}, {{3, 5, 7, 7}, {3, 1, 1, 1}}, {{3, 5, 7, 7}, {1, 1, 1, 1}},
      {{3, 5, 7, 7}, {3, 5, 1, 7}}, {{3, 5, 7, 7}, {3, 5, 7, 7}}, {{6, 5}, {1, 5}},
      {{6, 5}, {6, 1}},             {{64, 10}, {1, 1}},            {{9}, {1}},
  };
  const std::vector<std::pair<ReduceKind, const char*>> kinds = {
      {ReduceKind::kSum, "sum"}, {ReduceKind::kMean, "mean"}, {ReduceKind::kMax, "max"}, {ReduceKind::kMin, "min"}};
  for (const auto& [xs, os] : shapes) {
    const Tensor x = uniform(xs, gen);
    for (const auto& [kind, name] : kinds) {
      SCOPED_TRACE(fmt::format("{} {} -> {}", name, xs.str(), os.str()));
      EXPECT_TRUE(close(dnn.reduce(kind, x, os), ref.reduce(kind, x, os)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// softmax
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, SoftmaxAndLogSoftmaxOnEveryAxis) {
  const std::vector<std::pair<Shape, std::int64_t>> cases = {
      {{3, 5, 7, 7}, 1}, {{3, 5, 7, 7}, 3}, {{3, 5, 7, 7}, 0}, {{64, 10}, 1}, {{4, 10}, 0}, {{9}, 0}};
  for (const auto& [s, axis] : cases) {
    for (bool log : {false, true}) {
      SCOPED_TRACE(fmt::format("{} axis {} {}", s.str(), axis, log ? "logsoftmax" : "softmax"));
      const Tensor x = uniform(s, gen, -3, 3);
      const Tensor y = dnn.softmax_forward(x, axis, log);
      const Tensor y_ref = ref.softmax_forward(x, axis, log);
      EXPECT_TRUE(close(y, y_ref));
      const Tensor dy = uniform(s, gen);
      EXPECT_TRUE(close(dnn.softmax_backward(dy, y, axis, log), ref.softmax_backward(dy, y_ref, axis, log)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// batch norm
// ---------------------------------------------------------------------------------------------
// Batch norm training, inference and backward, on ordinary shapes and on those the batch-norm loops'
// schedules (BatchNormKernels.h) treat differently: many channels (whole channels per thread), few
// channels with more values than one block (per-block partials), C = 1, [N, C] rows, H*W and N*H*W off
// the vector width, a large mean.
TEST_F(OneDnnConformance, BatchNormTrainingInferenceAndBackward) {
  struct Case {
    Shape s;
    double lo, hi;              // x
    double dy_lo = -1, dy_hi = 1;
  };
  const int threads = get_num_threads();
  for (const Case& k : {Case{Shape{3, 5, 7, 7}, -2, 3}, Case{Shape{6, 5}, -2, 3}, Case{Shape{64, 6, 14, 14}, -2, 3},
                        Case{Shape{2, 300, 3, 3}, -2, 3}, Case{Shape{4, 64, 16, 16}, -2, 3},
                        Case{Shape{5, 1, 9, 11}, -2, 3}, Case{Shape{2, 1, 130, 131}, -2, 3},
                        Case{Shape{16, 3, 41, 39}, -2, 3}, Case{Shape{7, 3, 5, 3}, -2, 3},
                        Case{Shape{3, 2, 1, 1}, -2, 3}, Case{Shape{37, 300}, -2, 3}, Case{Shape{1000, 3}, -2, 3},
                        Case{Shape{9, 1}, -2, 3}, Case{Shape{8, 5, 20, 20}, 9, 11}, Case{Shape{50, 7}, 9, 11},
                        // A mean far larger than the spread, and a gradient with a large common offset.
                        Case{Shape{4, 2, 8, 8}, 1000, 1000.01}, Case{Shape{40, 2}, 1000, 1000.01},
                        Case{Shape{4, 1, 64, 64}, -2, 3, 499.99, 500.01}}) {
    const Shape& s = k.s;
    SCOPED_TRACE(s.str());
    const std::int64_t c = s[1];
    const Tensor x = uniform(s, gen, k.lo, k.hi);
    const Tensor gamma = uniform(Shape{c}, gen, 0.5, 1.5), beta = uniform(Shape{c}, gen);
    const double eps = 1e-5;
    const BatchNormTrainResult want = ref.batch_norm_forward_training(x, gamma, beta, eps);
    const Tensor rmean = uniform(Shape{c}, gen), rvar = uniform(Shape{c}, gen, 0.5, 2);
    const Tensor dy = uniform(s, gen, k.dy_lo, k.dy_hi);
    const BatchNormGrads gr = ref.batch_norm_backward(dy, x, gamma, want.mean, want.var, eps);
    // One thread gives whole channels per thread; two split few channels into blocks.
    for (int nthr : {1, 2}) {
      SCOPED_TRACE(nthr);
      set_num_threads(nthr);
      const BatchNormTrainResult got = dnn.batch_norm_forward_training(x, gamma, beta, eps);
      EXPECT_TRUE(close(got.y, want.y));
      EXPECT_TRUE(close(got.mean, want.mean));
      EXPECT_TRUE(close(got.var, want.var));
      EXPECT_TRUE(close(dnn.batch_norm_forward_inference(x, gamma, beta, rmean, rvar, eps),
                        ref.batch_norm_forward_inference(x, gamma, beta, rmean, rvar, eps)));
      const BatchNormGrads g = dnn.batch_norm_backward(dy, x, gamma, want.mean, want.var, eps);
      EXPECT_TRUE(close(g.dx, gr.dx, 3e-4));
      EXPECT_TRUE(close(g.dgamma, gr.dgamma));
      EXPECT_TRUE(close(g.dbeta, gr.dbeta));
    }
  }
  set_num_threads(threads);
}

// The SSE2 partial-sum loops, which an AVX2 machine never picks: the batch-norm tests again in a child
// process with ANVIL_BN_ISA=sse2 (and a check that the child really runs them).
TEST(OneDnnBatchNormIsa, LoopsInUse) {
  const char* isa = std::getenv("ANVIL_BN_ISA");
  if (isa && std::string(isa) == "sse2") {
    EXPECT_STREQ(onednn_detail::bn_loops_isa(), "sse2");
  } else {
    const std::string got = onednn_detail::bn_loops_isa();
    EXPECT_TRUE(got == "avx2" || got == "sse2" || got == "scalar") << got;
  }
}

TEST(OneDnnBatchNormIsa, Sse2LoopsPassTheBatchNormTests) {
  if (std::getenv("ANVIL_BN_ISA")) GTEST_SKIP() << "this is the ANVIL_BN_ISA child";
  const std::string exe = testutil::self_exe();
  ASSERT_FALSE(exe.empty());
  testutil::TempDir dir;
  const std::string log = dir.file("child.txt");
  const std::string cmd = "ANVIL_BN_ISA=sse2 " + exe +
                          " '--gtest_filter=OneDnnConformance.BatchNorm*:OneDnnBatchNormIsa.LoopsInUse' > " + log +
                          " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::string out;
  if (std::FILE* f = std::fopen(log.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, f)) out += buf;
    std::fclose(f);
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ] 3 tests"), std::string::npos) << out;
}

// Same bits on every call, and whatever the thread count (1 thread: whole channels; 2 or 3 threads:
// per-block partials for these few channels).
TEST_F(OneDnnConformance, BatchNormKernelsAreDeterministic) {
  const int threads = get_num_threads();
  for (const Shape& s : {Shape{16, 6, 32, 32}, Shape{4, 2, 70, 70}, Shape{8, 64, 8, 8}, Shape{300, 20}}) {
    SCOPED_TRACE(s.str());
    const std::int64_t c = s[1];
    const Tensor x = uniform(s, gen, -2, 3), dy = uniform(s, gen);
    const Tensor gamma = uniform(Shape{c}, gen, 0.5, 1.5), beta = uniform(Shape{c}, gen);
    std::vector<std::vector<float>> first;
    for (int nthr : {1, 1, 2, 2, 3}) {
      set_num_threads(nthr);
      const BatchNormTrainResult f = dnn.batch_norm_forward_training(x, gamma, beta, 1e-5);
      const BatchNormGrads b = dnn.batch_norm_backward(dy, x, gamma, f.mean, f.var, 1e-5);
      const std::vector<std::vector<float>> now = {f.y.to_vector<float>(),  f.mean.to_vector<float>(),
                                                   f.var.to_vector<float>(), b.dx.to_vector<float>(),
                                                   b.dgamma.to_vector<float>(), b.dbeta.to_vector<float>()};
      if (first.empty()) first = now;
      for (std::size_t i = 0; i < now.size(); ++i) {
        ASSERT_EQ(now[i].size(), first[i].size());
        EXPECT_EQ(std::memcmp(now[i].data(), first[i].data(), now[i].size() * sizeof(float)), 0)
            << "output " << i << " with " << nthr << " threads";
      }
    }
  }
  set_num_threads(threads);
}

// ---------------------------------------------------------------------------------------------
// loss and in-place kernels (loops or reference) still agree
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, LossAndOptimizerKernels) {
  const Tensor logits = uniform(Shape{5, 7}, gen, -3, 3);
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 6, 3, 3, 1}, Shape{5});
  const SoftmaxCrossEntropyResult l = dnn.softmax_cross_entropy_forward(logits, labels);
  const SoftmaxCrossEntropyResult lr = ref.softmax_cross_entropy_forward(logits, labels);
  EXPECT_TRUE(close(l.loss, lr.loss));
  EXPECT_TRUE(close(l.prob, lr.prob));
  const Tensor dloss = uniform(Shape{5}, gen);
  EXPECT_TRUE(close(dnn.softmax_cross_entropy_backward(dloss, l.prob, labels),
                    ref.softmax_cross_entropy_backward(dloss, lr.prob, labels)));

  for (const Shape& s : {Shape{7, 13}, Shape{300, 401}}) {  // one chunk; split over threads
    SCOPED_TRACE(s.str());
    const Tensor p0 = uniform(s, gen), g = uniform(s, gen), m0 = uniform(s, gen);
    {
      Tensor a = p0.clone(), b = p0.clone();
      dnn.axpy_(a, g, -0.3);
      ref.axpy_(b, g, -0.3);
      EXPECT_TRUE(close(a, b));
    }
    {
      Tensor a = p0.clone(), b = p0.clone();
      dnn.sgd_update(a, g, 0.1, 0.01);
      ref.sgd_update(b, g, 0.1, 0.01);
      EXPECT_TRUE(close(a, b));
    }
    for (bool nesterov : {false, true}) {
      Tensor a = p0.clone(), b = p0.clone(), ma = m0.clone(), mb = m0.clone();
      dnn.momentum_update(a, g, ma, 0.1, 0.9, 0.01, nesterov);
      ref.momentum_update(b, g, mb, 0.1, 0.9, 0.01, nesterov);
      EXPECT_TRUE(close(a, b));
      EXPECT_TRUE(close(ma, mb));
    }
  }
  {
    Tensor a = uniform(Shape{5}, gen);  // dst aliasing src: a += 2a
    const Tensor want = ref.eltwise_forward(EltwiseKind::kLinear, a, 3.0, 0.0);
    dnn.axpy_(a, a, 2.0);
    EXPECT_TRUE(close(a, want));
  }
}

// ---------------------------------------------------------------------------------------------
// primitive cache
// ---------------------------------------------------------------------------------------------
TEST_F(OneDnnConformance, ConvPrimitiveIsBuiltOnce) {
  const Conv2dParams p{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  const Tensor x = uniform(Shape{3, 5, 7, 7}, gen), w = uniform(Shape{4, 5, 3, 3}, gen), b = uniform(Shape{4}, gen);
  EXPECT_EQ(dnn.primitives_created(), 0u);
  const Tensor y1 = dnn.conv2d_forward(x, w, b, p);
  const std::size_t after_first = dnn.primitives_created();
  EXPECT_GT(after_first, 0u);
  const Tensor y2 = dnn.conv2d_forward(x, w, b, p);
  EXPECT_EQ(dnn.primitives_created(), after_first);
  EXPECT_TRUE(close(y1, y2, 0.0));
  // A different shape (batch 4) builds a new primitive.
  const Tensor x4 = uniform(Shape{4, 5, 7, 7}, gen);
  (void)dnn.conv2d_forward(x4, w, b, p);
  EXPECT_GT(dnn.primitives_created(), after_first);
}

TEST_F(OneDnnConformance, SecondLeNetStepBuildsNothing) {
  // conv -> relu -> pool -> conv -> relu -> pool -> linear, forward and backward.
  auto step = [&](const Tensor& x, const Tensor& w1, const Tensor& w2, const Tensor& fc) {
    const Conv2dParams cp{};
    const Pool2dParams pp{.kind = PoolKind::kMax};
    const Tensor b1 = Tensor::zeros(Shape{6}), b2 = Tensor::zeros(Shape{16}), fb = Tensor::zeros(Shape{10});
    const Tensor c1 = dnn.conv2d_forward(x, w1, b1, cp);
    const Tensor r1 = dnn.eltwise_forward(EltwiseKind::kRelu, c1, 0, 0);
    const PoolResult p1 = dnn.pool2d_forward(r1, pp);
    const Tensor c2 = dnn.conv2d_forward(p1.y, w2, b2, cp);
    const Tensor r2 = dnn.eltwise_forward(EltwiseKind::kRelu, c2, 0, 0);
    const PoolResult p2 = dnn.pool2d_forward(r2, pp);
    const Tensor flat = p2.y.view(Shape{x.dim(0), 400});
    const Tensor out = dnn.linear_forward(flat, fc, fb);
    const Tensor dout = dnn.softmax_forward(out, 1, false);
    const Tensor dflat = dnn.linear_backward_data(dout, fc);
    (void)dnn.linear_backward_weights(dout, flat, true);
    const Tensor dp2 = dnn.pool2d_backward(dflat.view(p2.y.shape()), r2, p2, pp);
    const Tensor dc2 = dnn.eltwise_backward(EltwiseKind::kRelu, dp2, c2, r2, 0, 0);
    (void)dnn.conv2d_backward_weights(dc2, p1.y, w2.shape(), true, cp);
    const Tensor dp1 = dnn.conv2d_backward_data(dc2, w2, p1.y.shape(), cp);
    const Tensor dr1 = dnn.pool2d_backward(dp1, r1, p1, pp);
    const Tensor dc1 = dnn.eltwise_backward(EltwiseKind::kRelu, dr1, c1, r1, 0, 0);
    return dnn.conv2d_backward_weights(dc1, x, w1.shape(), true, cp).dw;
  };
  const Tensor x = uniform(Shape{16, 1, 32, 32}, gen), w1 = uniform(Shape{6, 1, 5, 5}, gen);
  const Tensor w2 = uniform(Shape{16, 6, 5, 5}, gen), fc = uniform(Shape{10, 400}, gen);
  const Tensor dw1 = step(x, w1, w2, fc);
  const std::size_t built = dnn.primitives_created();
  const std::size_t entries = dnn.cache_size();
  EXPECT_GT(built, 0u);
  const Tensor dw1_again = step(x, w1, w2, fc);
  EXPECT_EQ(dnn.primitives_created(), built);
  EXPECT_EQ(dnn.cache_size(), entries);
  EXPECT_TRUE(close(dw1, dw1_again, 0.0));
}

TEST_F(OneDnnConformance, LargeOutputBuffersAreRecycledAndMayOutliveTheBackend) {
  const Tensor x = uniform(Shape{64, 6, 28, 28}, gen);  // 1.2 MB: recycled size class
  Tensor y = dnn.eltwise_forward(EltwiseKind::kRelu, x, 0, 0);
  const void* first = y.data_ptr();
  y = Tensor();
  const Tensor y2 = dnn.eltwise_forward(EltwiseKind::kRelu, x, 0, 0);
  EXPECT_EQ(y2.data_ptr(), first);
  EXPECT_TRUE(close(y2, ref.eltwise_forward(EltwiseKind::kRelu, x, 0, 0), 0.0));

  Tensor survivor;
  {
    OneDnnBackend scoped;
    survivor = scoped.eltwise_forward(EltwiseKind::kAbs, x, 0, 0);
  }
  EXPECT_TRUE(close(survivor, ref.eltwise_forward(EltwiseKind::kAbs, x, 0, 0), 0.0));
  survivor = Tensor();  // returns the buffer to the destroyed backend's cache, which it kept alive
  EXPECT_FALSE(survivor.defined());
}

TEST_F(OneDnnConformance, ConcurrentCallsFromTwoThreadsAgree) {
  const Conv2dParams p{.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
  const Tensor x = uniform(Shape{4, 3, 12, 12}, gen), w = uniform(Shape{8, 3, 3, 3}, gen);
  const Tensor want = ref.conv2d_forward(x, w, Tensor(), p);
  bool ok[2] = {true, true};
  auto work = [&](int id) {
    for (int i = 0; i < 20; ++i) {
      const Tensor y = dnn.conv2d_forward(x, w, Tensor(), p);
      const Tensor s = dnn.softmax_forward(y, 1, id == 1);
      if (!close(y, want)) ok[id] = false;
      (void)s;
    }
  };
  std::thread t0(work, 0), t1(work, 1);
  t0.join();
  t1.join();
  EXPECT_TRUE(ok[0]);
  EXPECT_TRUE(ok[1]);
}

TEST_F(OneDnnConformance, PrimitivesBuiltOnOneThreadRunOnAnother) {
  // oneDNN's default scratchpad is thread-local and sized when a primitive is built; the backend
  // gives every thread its own (user-managed) scratchpad instead. Plain-layout (GEMM) convolutions
  // have large scratchpads, so they are checked too (the layout is read when a backend is built).
  const Conv2dParams p{.stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_bottom = 0, .pad_left = 0, .pad_right = 1};
  const Tensor x = uniform(Shape{4, 8, 15, 15}, gen), w = uniform(Shape{16, 8, 3, 3}, gen);
  const Tensor dy = uniform(ref.conv2d_forward(x, w, Tensor(), p).shape(), gen);
  ::setenv("ANVIL_ONEDNN_CONV_LAYOUT", "plain", 1);
  OneDnnBackend plain;
  ::unsetenv("ANVIL_ONEDNN_CONV_LAYOUT");
  for (OneDnnBackend* b : {&dnn, &plain}) {
    (void)b->conv2d_forward(x, w, Tensor(), p);
    (void)b->conv2d_backward_data(dy, w, x.shape(), p);
    (void)b->conv2d_backward_weights(dy, x, w.shape(), true, p);
    const std::size_t built = b->primitives_created();
    bool ok = true;
    std::thread other([&] {
      ok = ok && close(b->conv2d_forward(x, w, Tensor(), p), ref.conv2d_forward(x, w, Tensor(), p));
      ok = ok && close(b->conv2d_backward_data(dy, w, x.shape(), p), ref.conv2d_backward_data(dy, w, x.shape(), p));
      ok = ok && close(b->conv2d_backward_weights(dy, x, w.shape(), true, p).dw,
                       ref.conv2d_backward_weights(dy, x, w.shape(), true, p).dw);
    });
    other.join();
    EXPECT_TRUE(ok);
    EXPECT_EQ(b->primitives_created(), built);
  }
}

}  // namespace
}  // namespace anvil
