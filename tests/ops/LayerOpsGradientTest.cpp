// The ops added for issue 7's layers and losses: float64 finite-difference gradient checks on the
// reference backend, hand-computed values and the errors they raise.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "framework/autograd/Engine.h"
#include "framework/backend/Backend.h"
#include "framework/core/Random.h"
#include "framework/ops/Dropout.h"
#include "framework/ops/Embedding.h"
#include "framework/ops/LayerNorm.h"
#include "framework/ops/Loss.h"
#include "framework/ops/Reduce.h"
#include "framework/ops/Softmax.h"
#include "tests/testutil/GradCheck.h"
#include "tests/testutil/Errors.h"

using namespace anvil;
using anvil::testutil::error_of;
using anvil::testutil::has;
using testutil::grad_check;
using testutil::random_f64;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// layer norm
// ---------------------------------------------------------------------------------------------
TEST(GradCheck, LayerNormOverLastDimAndLastTwoDims) {
  EXPECT_TRUE(grad_check([](const auto& x) { return ops::layer_norm(x[0], x[1], x[2], 1e-5); },
                         {random_f64({3, 4, 5}, 1), random_f64({5}, 2, 0.5, 1.5), random_f64({5}, 3)}));
  EXPECT_TRUE(grad_check([](const auto& x) { return ops::layer_norm(x[0], x[1], x[2], 1e-7); },
                         {random_f64({2, 3, 4}, 4), random_f64({3, 4}, 5, 0.5, 1.5), random_f64({3, 4}, 6)}));
  // One row of the whole tensor.
  EXPECT_TRUE(grad_check([](const auto& x) { return ops::layer_norm(x[0], x[1], x[2], 1e-3); },
                         {random_f64({6}, 7), random_f64({6}, 8), random_f64({6}, 9)}));
}

TEST(LayerNormOp, HandComputedRow) {
  BackendScope scope(reference_backend());
  // Row [1, 2, 3, 4]: mean 2.5, biased var 1.25.
  const Tensor x = f64({1, 2, 3, 4, -1, -1, -1, -1}, {2, 4});
  const Tensor g = f64({1, 2, 1, 1}, {4}), b = f64({0, 0, 0, 1}, {4});
  const std::vector<double> y = ops::layer_norm(x, g, b, 1e-5).to_vector<double>();
  const double inv = 1.0 / std::sqrt(1.25 + 1e-5);
  EXPECT_NEAR(y[0], -1.5 * inv, 1e-12);
  EXPECT_NEAR(y[1], 2 * -0.5 * inv, 1e-12);
  EXPECT_NEAR(y[3], 1.5 * inv + 1.0, 1e-12);
  // A constant row normalizes to beta.
  EXPECT_NEAR(y[4], 0.0, 1e-12);
  EXPECT_NEAR(y[7], 1.0, 1e-12);
}

TEST(LayerNormOp, RejectsShapesThatDoNotEndWithGamma) {
  const Tensor x = Tensor::zeros(Shape{2, 3, 4});
  std::string msg = error_of([&] { ops::layer_norm(x, Tensor::ones(Shape{3}), Tensor::zeros(Shape{3}), 1e-5); });
  EXPECT_NE(msg.find("[2,3,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
  msg = error_of([&] { ops::layer_norm(x, Tensor::ones(Shape{4}), Tensor::zeros(Shape{3}), 1e-5); });
  EXPECT_NE(msg.find("beta"), std::string::npos) << msg;
  EXPECT_THROW(ops::layer_norm(x, Tensor::ones(Shape{4}), Tensor::zeros(Shape{4}), 0.0), Error);
}

// ---------------------------------------------------------------------------------------------
// embedding
// ---------------------------------------------------------------------------------------------
TEST(GradCheck, EmbeddingWithRepeatedIndicesAndPadding) {
  const Tensor idx = Tensor::from_vector<std::int64_t>({1, 3, 1, 0, 4, 3}, Shape{2, 3});
  EXPECT_TRUE(grad_check([&](const auto& x) { return ops::embedding(x[0], idx); }, {random_f64({5, 4}, 10)}));
  // The padding row is a constant by design (no gradient although the forward reads it), so finite
  // differences can only be compared with a padding row the indices do not use; the padding row's
  // zero gradient is checked by hand in EmbeddingOp.GathersRowsAndScatterAddsGradient.
  EXPECT_TRUE(grad_check([&](const auto& x) { return ops::embedding(x[0], idx, 2); }, {random_f64({5, 4}, 11)}));
  const Tensor idx32 = Tensor::from_vector<std::int32_t>({2, 2, 0}, Shape{3});
  EXPECT_TRUE(grad_check([&](const auto& x) { return ops::embedding(x[0], idx32); }, {random_f64({3, 2}, 12)}));
}

TEST(EmbeddingOp, GathersRowsAndScatterAddsGradient) {
  BackendScope scope(reference_backend());
  Tensor table = f64({0, 1, 10, 11, 20, 21}, {3, 2});
  table.set_requires_grad(true);
  const Tensor idx = Tensor::from_vector<std::int32_t>({2, 0, 2, 1}, Shape{2, 2});
  Tensor y = ops::embedding(table, idx, /*padding_idx=*/1);
  ASSERT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{20, 21, 0, 1, 20, 21, 10, 11}));
  backward(ops::sum(y));
  // Row 2 is used twice, row 0 once; row 1 is the padding row and gets nothing although it was used.
  EXPECT_EQ(table.grad().to_vector<double>(), (std::vector<double>{1, 1, 0, 0, 2, 2}));
}

TEST(EmbeddingOp, OutOfRangeIndexNamesValueAndVocabSize) {
  const Tensor table = Tensor::zeros(Shape{10, 4});
  std::string msg = error_of([&] { ops::embedding(table, Tensor::from_vector<std::int64_t>({3, 12}, Shape{2})); });
  EXPECT_NE(msg.find("index 12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size 10"), std::string::npos) << msg;
  msg = error_of([&] { ops::embedding(table, Tensor::from_vector<std::int32_t>({-1}, Shape{1})); });
  EXPECT_NE(msg.find("index -1"), std::string::npos) << msg;
  msg = error_of([&] { ops::embedding(table, Tensor::zeros(Shape{2})); });
  EXPECT_NE(msg.find("int32 or int64"), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// channel dropout
// ---------------------------------------------------------------------------------------------
TEST(GradCheck, Dropout2dWithFixedMask) {
  EXPECT_TRUE(grad_check(
      [](const auto& v) {
        Generator g(5);  // the same mask on every evaluation
        return ops::dropout2d(v[0], 0.4, g, true);
      },
      {random_f64({3, 4, 2, 3}, 13)}));
}

TEST(Dropout2dOp, ZeroesWholeChannelsAndScalesTheRest) {
  Generator g(7);
  const Tensor x = Tensor::ones(Shape{8, 16, 3, 3});
  const std::vector<float> y = ops::dropout2d(x, 0.5, g, true).to_vector<float>();
  int dropped = 0;
  for (int ch = 0; ch < 8 * 16; ++ch) {
    const float first = y[static_cast<std::size_t>(ch * 9)];
    EXPECT_TRUE(first == 0.0f || first == 2.0f) << first;
    for (int i = 1; i < 9; ++i) ASSERT_EQ(y[static_cast<std::size_t>(ch * 9 + i)], first) << "channel " << ch;
    dropped += first == 0.0f;
  }
  EXPECT_NEAR(dropped, 64, 20);
  EXPECT_TRUE(ops::dropout2d(x, 0.5, g, false).same(x));
  EXPECT_THROW(ops::dropout2d(Tensor::ones(Shape{2, 3}), 0.5, g, true), Error);
  EXPECT_THROW(ops::dropout2d(x, 1.0, g, true), Error);
}

// ---------------------------------------------------------------------------------------------
// losses
// ---------------------------------------------------------------------------------------------
TEST(GradCheck, NewLossesEveryReduction) {
  const Tensor labels = Tensor::from_vector<std::int32_t>({2, 0, 1, 2}, Shape{4});
  const Tensor targets = random_f64({4, 3}, 20, 0.0, 1.0);
  for (std::string red : {"mean", "sum", "none"}) {
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::bce_with_logits(v[0], v[1], Tensor(), Tensor(), red); },
                           {random_f64({4, 3}, 21, -3, 3), targets}))
        << red;
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::bce_with_logits(v[0], v[1], v[2], v[3], red); },
                           {random_f64({4, 3}, 22, -3, 3), targets, random_f64({4, 3}, 23, 0.5, 2),
                            random_f64({3}, 24, 0.5, 3)}))
        << red;
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::l1_loss(v[0], v[1], red); },
                           {random_f64({4, 3}, 25), random_f64({4, 3}, 26)}))
        << red;
    // Differences on both sides of beta = 0.5.
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::smooth_l1_loss(v[0], v[1], 0.5, red); },
                           {random_f64({4, 3}, 27, -2, 2), random_f64({4, 3}, 28)}))
        << red;
    EXPECT_TRUE(grad_check([&](const auto& v) { return ops::nll_loss(v[0], v[1], Tensor(), -100, red); },
                           {random_f64({4, 3}, 29, -3, 0), labels}))
        << red;
    EXPECT_TRUE(grad_check(
        [&](const auto& v) { return ops::nll_loss(ops::log_softmax(v[0]), v[1], f64({1, 2, 0.5}, {3}), 0, red); },
        {random_f64({4, 3}, 30), labels}))
        << red;
  }
}

TEST(SmoothL1Op, QuadraticBelowBetaLinearAbove) {
  const Tensor pred = f64({0.5, -0.2, 3.0, -2.5, 1.0}, {5});
  const Tensor target = Tensor::zeros(Shape{5}, DType::kF64);
  const std::vector<double> l = ops::smooth_l1_loss(pred, target, 1.0, "none").to_vector<double>();
  EXPECT_NEAR(l[0], 0.5 * 0.25, 1e-12);  // |d| < beta: 0.5 d² / beta
  EXPECT_NEAR(l[1], 0.5 * 0.04, 1e-12);
  EXPECT_NEAR(l[2], 3.0 - 0.5, 1e-12);  // |d| >= beta: |d| - 0.5 beta
  EXPECT_NEAR(l[3], 2.5 - 0.5, 1e-12);
  EXPECT_NEAR(l[4], 0.5, 1e-12);  // both branches agree at |d| == beta
  const std::vector<double> l2 = ops::smooth_l1_loss(pred, target, 2.0, "none").to_vector<double>();
  EXPECT_NEAR(l2[0], 0.5 * 0.25 / 2.0, 1e-12);
  EXPECT_NEAR(l2[2], 3.0 - 1.0, 1e-12);
  EXPECT_NEAR(ops::smooth_l1_loss(pred, target, 1.0, "sum").item(), 0.125 + 0.02 + 2.5 + 2.0 + 0.5, 1e-12);
  EXPECT_THROW(ops::smooth_l1_loss(pred, target, 0.0), Error);
  EXPECT_THROW(ops::smooth_l1_loss(pred, Tensor::zeros(Shape{4}, DType::kF64)), Error);
}

TEST(BceWithLogitsOp, LargeLogitsDoNotOverflowAndMatchTheFormula) {
  const Tensor x = Tensor::from_vector<float>({1000.f, -1000.f, 1000.f, -1000.f, 0.f, 2.f}, Shape{6});
  const Tensor y = Tensor::from_vector<float>({1.f, 0.f, 0.f, 1.f, 1.f, 0.25f}, Shape{6});
  const std::vector<float> l = ops::bce_with_logits(x, y, Tensor(), Tensor(), "none").to_vector<float>();
  // float32 on the default backend, whose log/exp are accurate to a few ulp.
  EXPECT_NEAR(l[0], 0.0f, 1e-5);
  EXPECT_NEAR(l[1], 0.0f, 1e-5);
  EXPECT_NEAR(l[2], 1000.0f, 1e-3);
  EXPECT_NEAR(l[3], 1000.0f, 1e-3);
  EXPECT_NEAR(l[4], std::log(2.0), 1e-5);
  const double s = 1.0 / (1.0 + std::exp(-2.0));
  EXPECT_NEAR(l[5], -(0.25 * std::log(s) + 0.75 * std::log(1 - s)), 1e-5);
  for (float v : l) EXPECT_TRUE(std::isfinite(v));
  // Gradients stay finite too: sigmoid(x) - y.
  Tensor xg = x.clone();
  xg.set_requires_grad(true);
  backward(ops::bce_with_logits(xg, y, Tensor(), Tensor(), "sum"));
  const std::vector<float> g = xg.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 0.0f, 1e-6);
  EXPECT_NEAR(g[2], 1.0f, 1e-6);
  EXPECT_NEAR(g[3], -1.0f, 1e-6);
  EXPECT_NEAR(g[5], s - 0.25, 1e-6);
}

TEST(BceWithLogitsOp, PosWeightAndWeight) {
  const Tensor x = f64({0.3, -0.7}, {1, 2}), y = f64({1, 0}, {1, 2});
  const Tensor w = f64({2, 3}, {2}), p = f64({4, 5}, {2});
  const std::vector<double> l = ops::bce_with_logits(x, y, w, p, "none").to_vector<double>();
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  EXPECT_NEAR(l[0], -2.0 * 4.0 * std::log(sig(0.3)), 1e-12);
  EXPECT_NEAR(l[1], -3.0 * std::log(1.0 - sig(-0.7)), 1e-12);
  EXPECT_NEAR(ops::bce_with_logits(x, y, w, p, "mean").item(), (l[0] + l[1]) / 2, 1e-12);
  const std::string msg = error_of([&] { ops::bce_with_logits(x, f64({1, 0, 1}, {3})); });
  EXPECT_NE(msg.find("[1,2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
}

TEST(NllLossOp, PicksTheLabelledEntriesWithWeightsAndIgnoreIndex) {
  const Tensor lp = f64({-0.1, -2.0, -3.0, -1.5, -0.5, -4.0, -2.5, -0.7, -0.2}, {3, 3});
  const Tensor labels = Tensor::from_vector<std::int64_t>({0, 2, 1}, Shape{3});
  EXPECT_EQ(ops::nll_loss(lp, labels, Tensor(), -100, "none").to_vector<double>(),
            (std::vector<double>{0.1, 4.0, 0.7}));
  EXPECT_NEAR(ops::nll_loss(lp, labels).item(), (0.1 + 4.0 + 0.7) / 3, 1e-12);
  EXPECT_NEAR(ops::nll_loss(lp, labels, Tensor(), -100, "sum").item(), 4.8, 1e-12);
  // Weighted mean divides by the weights of the labels used: (1*0.1 + 3*4.0 + 2*0.7) / (1 + 3 + 2).
  const Tensor w = f64({1, 2, 3}, {3});
  EXPECT_NEAR(ops::nll_loss(lp, labels, w).item(), (0.1 + 12.0 + 1.4) / 6.0, 1e-12);
  // ignore_index drops sample 1 from the sum and from the divisor.
  const Tensor labels_ign = Tensor::from_vector<std::int64_t>({0, -100, 1}, Shape{3});
  EXPECT_NEAR(ops::nll_loss(lp, labels_ign).item(), (0.1 + 0.7) / 2, 1e-12);
  const std::string msg =
      error_of([&] { ops::nll_loss(lp, Tensor::from_vector<std::int32_t>({0, 3, 1}, Shape{3})); });
  EXPECT_NE(msg.find("index 1 is 3"), std::string::npos) << msg;
  EXPECT_THROW(ops::nll_loss(lp, Tensor::from_vector<std::int32_t>({0, 1}, Shape{2})), Error);
  EXPECT_THROW(ops::nll_loss(lp, labels, Tensor(), -100, "avg"), Error);
}

TEST(L1LossOp, MeanAbsoluteError) {
  const Tensor a = f64({1, -2, 3}, {3}), b = f64({0, 0, 5}, {3});
  EXPECT_NEAR(ops::l1_loss(a, b).item(), (1 + 2 + 2) / 3.0, 1e-12);
  EXPECT_NEAR(ops::l1_loss(a, b, "sum").item(), 5.0, 1e-12);
  const std::string msg = error_of([&] { ops::l1_loss(a, f64({1, 2}, {2})); });
  EXPECT_NE(msg.find("[3]"), std::string::npos) << msg;
}

// At a logit of exactly 0 the gradient is sigmoid(0) - y = 0.5 - y (times the weights), not the 0 that
// relu's and abs's zero derivative at 0 would give.
TEST(BceWithLogitsOp, GradientAtZeroLogitIsHalfMinusLabel) {
  const Tensor y = Tensor::from_vector(std::vector<double>{0, 1, 0, 1}, Shape{4});
  Tensor x = Tensor::zeros(Shape{4}, DType::kF64);
  x.set_requires_grad(true);
  backward(ops::bce_with_logits(x, y, Tensor(), Tensor(), "mean"));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0.125, -0.125, 0.125, -0.125}));
  // pos_weight p = 2: d/dx at 0 = ((p y + 1 - y) * 0.5 - p y) / N.
  Tensor xp = Tensor::zeros(Shape{4}, DType::kF64);
  xp.set_requires_grad(true);
  backward(ops::bce_with_logits(xp, y, Tensor(), Tensor::full(Shape{4}, 2.0, DType::kF64), "mean"));
  EXPECT_EQ(xp.grad().to_vector<double>(), (std::vector<double>{0.125, -0.25, 0.125, -0.25}));
}

TEST(EmbeddingOp, EmptyTablesAndBadPaddingIndexAreErrors) {
  const Tensor idx = Tensor::from_vector(std::vector<std::int64_t>{0}, Shape{1});
  EXPECT_TRUE(has(error_of([&] { ops::embedding(Tensor::zeros(Shape{5, 0}), idx); }), "positive vocab_size"));
  EXPECT_TRUE(has(error_of([&] { ops::embedding(Tensor::zeros(Shape{0, 3}), idx); }), "positive vocab_size"));
  EXPECT_TRUE(has(error_of([&] { ops::embedding(Tensor::zeros(Shape{5, 3}), idx, -5); }), "padding_idx -5"));
}
