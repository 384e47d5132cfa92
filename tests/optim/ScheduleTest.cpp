#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <numbers>

#include "framework/core/Error.h"
#include "framework/optim/ConstantLR.h"
#include "framework/optim/CosineDecayLR.h"
#include "framework/optim/ExponentialDecayLR.h"
#include "framework/optim/PiecewiseConstantLR.h"
#include "framework/optim/WarmUpLR.h"
#include "framework/optim/WarmupThen.h"

using namespace anvil;

namespace {
// Expects `f` to throw anvil::Error whose message contains `needle`.
template <typename F>
void expect_error(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected an anvil::Error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(ConstantLR, SameValueEveryStepAndValidation) {
  ConstantLR s(0.1);
  EXPECT_DOUBLE_EQ(s(0), 0.1);
  EXPECT_DOUBLE_EQ(s(1000000), 0.1);
  expect_error([&] { (void)s(-1); }, "step must be >= 0");
  expect_error([] { ConstantLR(-0.5); }, "-0.5");
  expect_error([] { ConstantLR(std::nan("")); }, "finite");
}

TEST(PiecewiseConstantLR, BoundariesFollowMindSpore) {
  // MindSpore piecewise_constant_lr([2, 5, 5, 8], [1, .5, .25, .1]) = [1, 1, .5, .5, .5, .1, .1, .1]:
  // the repeated milestone 5 gives an empty interval, so 0.25 is never used.
  PiecewiseConstantLR s({2, 5, 5, 8}, {1.0, 0.5, 0.25, 0.1});
  const double expected[] = {1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1};
  for (int t = 0; t < 8; ++t) EXPECT_DOUBLE_EQ(s(t), expected[t]) << "step " << t;
  EXPECT_DOUBLE_EQ(s(8), 0.1);  // past the last milestone: the last value is held
  EXPECT_DOUBLE_EQ(s(1000), 0.1);
}

TEST(PiecewiseConstantLR, RejectsBadArguments) {
  expect_error([] { PiecewiseConstantLR({1, 2}, {0.1}); }, "2 milestones but 1 values");
  expect_error([] { PiecewiseConstantLR({}, {}); }, "empty");
  expect_error([] { PiecewiseConstantLR({0, 2}, {0.1, 0.2}); }, "milestones[0] must be > 0");
  expect_error([] { PiecewiseConstantLR({3, 2}, {0.1, 0.2}); }, "non-decreasing");
  expect_error([] { PiecewiseConstantLR({1, 2}, {0.1, -0.2}); }, "values[1]");
  // The same arguments made valid are accepted.
  EXPECT_DOUBLE_EQ(PiecewiseConstantLR({1, 2}, {0.1, 0.2})(1), 0.2);
}

TEST(ExponentialDecayLR, SmoothVersusStair) {
  ExponentialDecayLR smooth(0.1, 0.9, 4, false);
  ExponentialDecayLR stair(0.1, 0.9, 4, true);
  EXPECT_DOUBLE_EQ(smooth(0), 0.1);
  EXPECT_DOUBLE_EQ(stair(0), 0.1);
  EXPECT_NEAR(smooth(2), 0.1 * std::pow(0.9, 0.5), 1e-15);
  EXPECT_DOUBLE_EQ(stair(2), 0.1);
  EXPECT_NEAR(smooth(4), 0.09, 1e-15);
  EXPECT_NEAR(stair(4), 0.09, 1e-15);
  EXPECT_NEAR(smooth(6), 0.1 * std::pow(0.9, 1.5), 1e-15);
  EXPECT_NEAR(stair(7), 0.09, 1e-15);
  EXPECT_NEAR(stair(8), 0.1 * 0.81, 1e-15);
  expect_error([] { ExponentialDecayLR(0.0, 0.9, 4); }, "learning_rate");
  expect_error([] { ExponentialDecayLR(0.1, 0.0, 4); }, "decay_rate");
  expect_error([] { ExponentialDecayLR(0.1, 0.9, 0); }, "decay_steps");
}

TEST(CosineDecayLR, StartHalfEndAndBeyond) {
  CosineDecayLR s(0.01, 0.1, 10);
  EXPECT_DOUBLE_EQ(s(0), 0.1);
  EXPECT_NEAR(s(5), 0.055, 1e-15);
  EXPECT_NEAR(s(10), 0.01, 1e-15);
  EXPECT_NEAR(s(25), 0.01, 1e-15);  // clamped at decay_steps
  EXPECT_NEAR(s(3), 0.01 + 0.5 * 0.09 * (1.0 + std::cos(std::numbers::pi * 0.3)), 1e-15);
  expect_error([] { CosineDecayLR(0.1, 0.1, 10); }, "must be greater than min_lr");
  expect_error([] { CosineDecayLR(-0.1, 0.1, 10); }, "min_lr");
  expect_error([] { CosineDecayLR(0.0, 0.1, 0); }, "decay_steps");
}

TEST(WarmUpLR, LinearRampThenConstant) {
  WarmUpLR s(0.1, 4);
  EXPECT_DOUBLE_EQ(s(0), 0.0);
  EXPECT_NEAR(s(1), 0.025, 1e-15);
  EXPECT_NEAR(s(3), 0.075, 1e-15);
  EXPECT_NEAR(s(4), 0.1, 1e-15);
  EXPECT_NEAR(s(100), 0.1, 1e-15);
  expect_error([] { WarmUpLR(0.1, 0); }, "warmup_steps");
  expect_error([] { WarmUpLR(-0.1, 3); }, "learning_rate");
}

TEST(WarmupThen, RampsToTheScheduleStartThenShiftsItsClock) {
  auto cosine = std::make_shared<CosineDecayLR>(0.0, 0.1, 10);
  WarmupThen s(4, cosine);
  EXPECT_DOUBLE_EQ(s(0), 0.0);
  EXPECT_NEAR(s(2), 0.05, 1e-15);
  EXPECT_NEAR(s(4), 0.1, 1e-15);    // cosine(0)
  EXPECT_NEAR(s(9), 0.05, 1e-15);   // cosine(5)
  EXPECT_NEAR(s(14), 0.0, 1e-15);   // cosine(10)
  EXPECT_NEAR(s(100), 0.0, 1e-15);
  expect_error([] { WarmupThen(4, nullptr); }, "null");
  expect_error([&] { WarmupThen(0, cosine); }, "warmup_steps");
}
