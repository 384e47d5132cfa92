// Hand-computed updates: every expected value is computed here in double from the written-out formula
// (never by calling the optimizer), then compared with the float32 result.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "framework/optim/Adam.h"
#include "framework/optim/AdamW.h"
#include "framework/optim/Momentum.h"
#include "framework/optim/PiecewiseConstantLR.h"
#include "framework/optim/SGD.h"
#include "OptimizerTestUtil.h"

using namespace anvil;
using anvil::test::make_param;
using anvil::test::make_vec;

namespace {

constexpr double kTol = 2e-6;

// Gradients for steps 0, 1, 2 of a 2-element parameter.
const std::vector<std::vector<double>> kGrads = {{0.5, -1.0}, {-0.25, 0.75}, {1.5, 0.125}};

std::vector<float> as_float(const std::vector<double>& v) { return {static_cast<float>(v[0]), static_cast<float>(v[1])}; }

void expect_param(const Tensor& p, const std::vector<double>& expected, int step) {
  const auto got = p.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expected[i], kTol) << "element " << i << " after step " << step;
}

}  // namespace

TEST(SGD, ThreeStepsWithWeightDecay) {
  Tensor w = make_param({1.0f, -2.0f});
  SGD opt({{"fc.weight", w}}, 0.1, SGDOptions{.weight_decay = 0.01});
  std::vector<double> p = {1.0, -2.0};
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    for (int i = 0; i < 2; ++i) p[i] -= 0.1 * (kGrads[t][i] + 0.01 * p[i]);
    expect_param(w, p, t);
  }
  EXPECT_EQ(opt.global_step(), 3);
}

TEST(SGD, ScheduleGivesTheRateOfEachStep) {
  Tensor w = make_param({1.0f, 1.0f});
  SGD opt({{"w", w}}, std::make_shared<PiecewiseConstantLR>(std::vector<std::int64_t>{1, 2},
                                                            std::vector<double>{0.5, 0.25}));
  EXPECT_DOUBLE_EQ(opt.current_learning_rate(), 0.5);
  std::vector<double> p = {1.0, 1.0};
  const double rates[] = {0.5, 0.25, 0.25};  // step 0 -> 0.5, step 1 -> 0.25, then held
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    for (int i = 0; i < 2; ++i) p[i] -= rates[t] * kGrads[t][i];
    expect_param(w, p, t);
  }
  EXPECT_DOUBLE_EQ(opt.current_learning_rate(), 0.25);
}

TEST(Momentum, ThreeStepsPlain) {
  Tensor w = make_param({1.0f, -2.0f});
  Momentum opt({{"w", w}}, 0.1, 0.9);
  std::vector<double> p = {1.0, -2.0}, m = {0.0, 0.0};
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.9 * m[i] + kGrads[t][i];
      p[i] -= 0.1 * m[i];
    }
    expect_param(w, p, t);
  }
  const auto moments = opt.state_dict().back().second.to_vector<double>();
  EXPECT_NEAR(moments[1], m[1], kTol);
}

TEST(Momentum, ThreeStepsNesterovWithWeightDecay) {
  Tensor w = make_param({1.0f, -2.0f});
  Momentum opt({{"w", w}}, 0.05, 0.8, MomentumOptions{.weight_decay = 0.1, .nesterov = true});
  EXPECT_TRUE(opt.nesterov());
  std::vector<double> p = {1.0, -2.0}, m = {0.0, 0.0};
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      const double g = kGrads[t][i] + 0.1 * p[i];
      m[i] = 0.8 * m[i] + g;
      p[i] -= 0.05 * (g + 0.8 * m[i]);
    }
    expect_param(w, p, t);
  }
}

TEST(Momentum, DefaultDecayFilterSkipsBetaAndGamma) {
  Tensor w = make_param({1.0f, -2.0f});
  Tensor gamma = make_param({1.0f, -2.0f});
  Momentum opt({{"conv.weight", w}, {"bn.gamma", gamma}}, 0.1, 0.0, MomentumOptions{.weight_decay = 0.5});
  EXPECT_TRUE(opt.decays_weight(0));
  EXPECT_FALSE(opt.decays_weight(1));
  w.set_grad(make_vec({0.0f, 0.0f}));
  gamma.set_grad(make_vec({0.0f, 0.0f}));
  opt.step();
  expect_param(w, {1.0 - 0.1 * 0.5 * 1.0, -2.0 - 0.1 * 0.5 * -2.0}, 0);
  expect_param(gamma, {1.0, -2.0}, 0);  // no decay, zero gradient: unchanged

  // A custom filter decays everything.
  Tensor beta = make_param({2.0f, 4.0f});
  SGD all({{"bn.beta", beta}}, 0.1, SGDOptions{.weight_decay = 0.5, .decay_filter = [](const std::string&) { return true; }});
  beta.set_grad(make_vec({0.0f, 0.0f}));
  all.step();
  expect_param(beta, {2.0 - 0.1 * 0.5 * 2.0, 4.0 - 0.1 * 0.5 * 4.0}, 0);
}

TEST(Adam, ThreeStepsWithBiasCorrectionAndL2) {
  Tensor w = make_param({1.0f, -2.0f});
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
  Adam opt({{"w", w}}, lr, AdamOptions{.weight_decay = wd});
  std::vector<double> p = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  double b1p = 1.0, b2p = 1.0;
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    b1p *= b1;
    b2p *= b2;
    for (int i = 0; i < 2; ++i) {
      const double g = kGrads[t][i] + wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      p[i] -= lr * std::sqrt(1 - b2p) / (1 - b1p) * m[i] / (std::sqrt(v[i]) + eps);
    }
    expect_param(w, p, t);
  }
  EXPECT_NEAR(opt.beta1_power(), 0.729, 1e-6);
  EXPECT_NEAR(opt.beta2_power(), 0.999 * 0.999 * 0.999, 1e-6);
}

TEST(Adam, CustomBetasNoDecay) {
  Tensor w = make_param({0.5f, 0.25f});
  const double lr = 0.1, b1 = 0.5, b2 = 0.75, eps = 1e-3;
  Adam opt({{"w", w}}, lr, AdamOptions{.beta1 = b1, .beta2 = b2, .eps = eps});
  std::vector<double> p = {0.5, 0.25}, m = {0, 0}, v = {0, 0};
  double b1p = 1.0, b2p = 1.0;
  for (int t = 0; t < 2; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    b1p *= b1;
    b2p *= b2;
    for (int i = 0; i < 2; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * kGrads[t][i];
      v[i] = b2 * v[i] + (1 - b2) * kGrads[t][i] * kGrads[t][i];
      p[i] -= lr * std::sqrt(1 - b2p) / (1 - b1p) * m[i] / (std::sqrt(v[i]) + eps);
    }
    expect_param(w, p, t);
  }
}

TEST(AdamW, ThreeStepsDecoupledNoBiasCorrection) {
  Tensor w = make_param({1.0f, -2.0f});
  const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-6, wd = 0.1;
  AdamW opt({{"w", w}}, lr, AdamWOptions{.weight_decay = wd});
  std::vector<double> p = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  for (int t = 0; t < 3; ++t) {
    w.set_grad(make_vec(as_float(kGrads[t])));
    opt.step();
    for (int i = 0; i < 2; ++i) {
      m[i] = b1 * m[i] + (1 - b1) * kGrads[t][i];
      v[i] = b2 * v[i] + (1 - b2) * kGrads[t][i] * kGrads[t][i];
      p[i] -= lr * (m[i] / (std::sqrt(v[i]) + eps) + wd * p[i]);
    }
    expect_param(w, p, t);
  }
}

TEST(Optimizer, ParametersWithoutGradientAreLeftAlone) {
  Tensor a = make_param({1.0f, 2.0f});
  Tensor b = make_param({3.0f, 4.0f});
  Adam opt({{"a", a}, {"b", b}}, 0.1);
  a.set_grad(make_vec({1.0f, 1.0f}));
  opt.step();
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_NE(a.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
  const auto st = opt.state_dict();
  for (const auto& [name, t] : st)
    if (name == "moment1.b" || name == "moment2.b") {
      EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 0}));
    }
  EXPECT_FLOAT_EQ(opt.beta1_power(), 0.9f);  // optimizer-wide state advances on every step
}

TEST(Optimizer, ZeroGradDropsEveryGradient) {
  Tensor a = make_param({1.0f, 2.0f});
  Tensor b = make_param({3.0f, 4.0f});
  SGD opt({{"a", a}, {"b", b}}, 0.1);
  a.set_grad(make_vec({1.0f, 1.0f}));
  b.set_grad(make_vec({1.0f, 1.0f}));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
  opt.step();  // nothing to update
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(opt.global_step(), 1);
}

TEST(Optimizer, GradientDtypeMismatchThrowsBeforeAnyChange) {
  Tensor a = make_param({1.0f, 2.0f});
  Tensor b = make_param({3.0f, 4.0f});
  Adam opt({{"a", a}, {"b", b}}, 0.1);
  a.set_grad(make_vec({1.0f, 1.0f}));
  b.set_grad(Tensor::from_vector<double>({1.0, 1.0}, Shape{2}));
  anvil::test::expect_error([&] { opt.step(); }, {"Adam.step", "'b'", "float64[2]", "float32[2]"});
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(opt.global_step(), 0);
  EXPECT_FLOAT_EQ(opt.beta1_power(), 1.0f);
}
