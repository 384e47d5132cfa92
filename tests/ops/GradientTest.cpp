// Finite-difference gradient checks in float64 on the reference backend, for every differentiable op.
#include <gtest/gtest.h>

#include "framework/core/Random.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/BatchNorm.h"
#include "framework/ops/Conv.h"
#include "framework/ops/Dropout.h"
#include "framework/ops/Linear.h"
#include "framework/ops/Loss.h"
#include "framework/ops/Pool.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/ShapeOps.h"
#include "framework/ops/Softmax.h"
#include "tests/testutil/GradCheck.h"

using namespace anvil;
using testutil::grad_check;
using testutil::random_f64;

TEST(GradCheck, Linear) {
  EXPECT_TRUE(grad_check([](const auto& x) { return ops::linear(x[0], x[1], x[2]); },
                         {random_f64({3, 5}, 1), random_f64({4, 5}, 2), random_f64({4}, 3)}));
  EXPECT_TRUE(grad_check([](const auto& x) { return ops::linear(x[0], x[1]); },
                         {random_f64({2, 3}, 4), random_f64({6, 3}, 5)}));
}

TEST(GradCheck, MatmulAllTransposes) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Shape a = ta ? Shape{2, 4, 3} : Shape{2, 3, 4};
      Shape b = tb ? Shape{2, 5, 4} : Shape{2, 4, 5};
      EXPECT_TRUE(grad_check([=](const auto& x) { return ops::matmul(x[0], x[1], ta, tb); },
                             {random_f64(a, 6), random_f64(b, 7)}))
          << "trans_a=" << ta << " trans_b=" << tb;
    }
}

struct ConvCase {
  Conv2dParams p;
  Shape x, w;
  bool bias;
};

TEST(GradCheck, Conv2dPaddingStrideDilationGroups) {
  std::vector<ConvCase> cases;
  cases.push_back({Conv2dParams{}, {2, 3, 6, 5}, {4, 3, 3, 3}, true});
  Conv2dParams s2;
  s2.stride_h = 2;
  s2.stride_w = 2;
  s2.pad_top = 0;
  s2.pad_bottom = 1;  // asymmetric, as MindSpore "same" produces
  s2.pad_left = 1;
  s2.pad_right = 0;
  cases.push_back({s2, {1, 2, 7, 6}, {3, 2, 3, 2}, false});
  Conv2dParams dil;
  dil.dilation_h = 2;
  dil.dilation_w = 2;
  dil.pad_top = dil.pad_bottom = dil.pad_left = dil.pad_right = 2;
  cases.push_back({dil, {2, 2, 5, 5}, {2, 2, 3, 3}, true});
  Conv2dParams grp;
  grp.groups = 2;
  grp.pad_top = grp.pad_bottom = grp.pad_left = grp.pad_right = 1;
  cases.push_back({grp, {2, 4, 4, 4}, {6, 2, 3, 3}, true});
  for (const auto& c : cases) {
    std::vector<Tensor> in{random_f64(c.x, 10), random_f64(c.w, 11)};
    if (c.bias) in.push_back(random_f64({c.w[0]}, 12));
    auto p = c.p;
    EXPECT_TRUE(grad_check(
        [p](const auto& x) { return ops::conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), p); }, in))
        << "x " << c.x.str() << " w " << c.w.str();
  }
}

TEST(GradCheck, MaxAndAvgPooling) {
  Pool2dParams mp;  // 2x2 stride 2
  EXPECT_TRUE(grad_check([mp](const auto& x) { return ops::pool2d(x[0], mp); }, {random_f64({2, 3, 6, 7}, 20)}));
  Pool2dParams mp3;
  mp3.kernel_h = mp3.kernel_w = 3;
  mp3.stride_h = mp3.stride_w = 2;
  mp3.pad_top = mp3.pad_left = 1;
  mp3.pad_bottom = mp3.pad_right = 1;
  EXPECT_TRUE(grad_check([mp3](const auto& x) { return ops::pool2d(x[0], mp3); }, {random_f64({1, 2, 7, 7}, 21)}));
  for (bool include : {false, true}) {
    Pool2dParams ap = mp3;
    ap.kind = PoolKind::kAvg;
    ap.count_include_pad = include;
    EXPECT_TRUE(grad_check([ap](const auto& x) { return ops::pool2d(x[0], ap); }, {random_f64({2, 2, 5, 6}, 22)}));
  }
}

TEST(GradCheck, EveryEltwiseKind) {
  auto x = random_f64({3, 7}, 30);
  auto pos = random_f64({3, 7}, 31, 0.5, 2.0);
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::relu(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::leaky_relu(v[0], 0.2); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::sigmoid(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::tanh(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::gelu(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::exp(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::log(v[0]); }, {pos}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::sqrt(v[0]); }, {pos}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::square(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::abs(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::affine(v[0], -1.5, 0.25); }, {x}));
}

TEST(GradCheck, SoftmaxAndLogSoftmax) {
  for (std::int64_t axis : {1, -1, 0}) {
    EXPECT_TRUE(grad_check([axis](const auto& v) { return ops::softmax(v[0], axis); }, {random_f64({3, 4, 5}, 40)}));
    EXPECT_TRUE(
        grad_check([axis](const auto& v) { return ops::log_softmax(v[0], axis); }, {random_f64({3, 4, 5}, 41)}));
  }
}

TEST(GradCheck, BatchNormTrainingAndInference) {
  for (bool training : {true, false}) {
    for (Shape s : {Shape{4, 3, 2, 3}, Shape{5, 3}}) {
      EXPECT_TRUE(grad_check(
          [training](const auto& v) {
            Tensor rm = Tensor::zeros(Shape{3}, DType::kF64), rv = Tensor::ones(Shape{3}, DType::kF64);
            rm.fill_(0.1);
            rv.fill_(1.3);
            return ops::batch_norm(v[0], v[1], v[2], rm, rv, training, 0.9, 1e-5);
          },
          {random_f64(s, 50), random_f64({3}, 51, 0.5, 1.5), random_f64({3}, 52)}))
          << "training=" << training << " shape " << s.str();
    }
  }
}

TEST(GradCheck, BinaryOpsWithBroadcasting) {
  for (BinaryKind k : {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul, BinaryKind::kDiv, BinaryKind::kMax,
                       BinaryKind::kMin}) {
    const double lo = k == BinaryKind::kDiv ? 0.5 : -1.0;
    EXPECT_TRUE(grad_check([k](const auto& v) { return ops::binary(k, v[0], v[1]); },
                           {random_f64({2, 1, 3}, 60), random_f64({4, 1}, 61, lo, 2.0)}))
        << "kind " << static_cast<int>(k);
    EXPECT_TRUE(grad_check([k](const auto& v) { return ops::binary(k, v[0], v[1]); },
                           {random_f64({2, 3}, 62), random_f64({2, 3}, 63, lo, 2.0)}));
  }
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::scale(v[0], 3.0); }, {random_f64({4}, 64)}));
}

TEST(GradCheck, Reductions) {
  auto x = random_f64({2, 3, 4}, 70);
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::sum(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::mean(v[0]); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::sum(v[0], {1}, false); }, {x}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::mean(v[0], {0, -1}, true); }, {x}));
}

TEST(GradCheck, ReshapeAndFlatten) {
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::flatten(ops::square(v[0])); }, {random_f64({2, 3, 2}, 80)}));
  EXPECT_TRUE(grad_check([](const auto& v) { return ops::reshape(v[0], Shape{-1, 2}); }, {random_f64({3, 4}, 81)}));
}

TEST(GradCheck, Losses) {
  Tensor labels = Tensor::from_vector<std::int32_t>({2, 0, 1, 2}, Shape{4});
  for (std::string red : {"mean", "sum", "none"}) {
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::softmax_cross_entropy(v[0], v[1], red); },
                           {random_f64({4, 3}, 90), labels}))
        << red;
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::mse_loss(v[0], v[1], red); },
                           {random_f64({4, 3}, 91), random_f64({4, 3}, 92)}))
        << red;
  }
}

TEST(GradCheck, DropoutWithFixedMask) {
  EXPECT_TRUE(grad_check(
      [](const auto& v) {
        Generator g(5);  // the same mask on every evaluation
        return ops::dropout(v[0], 0.3, g, true);
      },
      {random_f64({4, 5}, 95)}));
}
