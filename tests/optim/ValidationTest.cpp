#include <gtest/gtest.h>

#include <limits>
#include <memory>

#include "framework/optim/Adam.h"
#include "framework/optim/AdamW.h"
#include "framework/optim/ConstantLR.h"
#include "framework/optim/Momentum.h"
#include "framework/optim/SGD.h"
#include "OptimizerTestUtil.h"

using namespace anvil;
using anvil::test::expect_error;
using anvil::test::make_param;

TEST(OptimizerValidation, ParameterList) {
  expect_error([] { SGD({}, 0.1); }, {"SGD", "empty"});
  expect_error([] { SGD({{"w", make_param({1})}, {"w", make_param({2})}}, 0.1); },
               {"duplicate parameter name 'w'", "entries 0 and 1"});
  Tensor shared = make_param({1});
  expect_error([&] { SGD({{"a", shared}, {"b", shared}}, 0.1); }, {"'a' and 'b' are the same tensor"});
  expect_error([] { SGD({{"", make_param({1})}}, 0.1); }, {"empty name"});
  expect_error([] { SGD({{"w", Tensor{}}}, 0.1); }, {"'w'", "undefined"});
  expect_error([] { Momentum({{"frozen", Tensor::zeros(Shape{2})}}, 0.1, 0.9); },
               {"Momentum", "'frozen'", "does not require grad"});
}

TEST(OptimizerValidation, HyperParameters) {
  auto ps = [] { return NamedTensors{{"w", make_param({1, 2})}}; };
  expect_error([&] { SGD(ps(), -0.1); }, {"SGD", "learning rate", "-0.1"});
  expect_error([&] { SGD(ps(), std::numeric_limits<double>::infinity()); }, {"finite"});
  expect_error([&] { SGD(ps(), std::shared_ptr<ConstantLR>{}); }, {"schedule is null"});
  expect_error([&] { SGD(ps(), 0.1, SGDOptions{.weight_decay = -1}); }, {"weight_decay", "-1"});
  expect_error([&] { Momentum(ps(), 0.1, -0.9); }, {"Momentum", "momentum", "-0.9"});
  expect_error([&] { Adam(ps(), 0.1, AdamOptions{.beta1 = 1.0}); }, {"Adam", "beta1", "[0, 1)"});
  expect_error([&] { Adam(ps(), 0.1, AdamOptions{.beta2 = -0.1}); }, {"beta2"});
  expect_error([&] { Adam(ps(), 0.1, AdamOptions{.eps = 0.0}); }, {"eps must be finite and > 0"});
  expect_error([&] { AdamW(ps(), 0.1, AdamWOptions{.beta1 = 1.5}); }, {"AdamW", "beta1"});
  Adam ok(ps(), 0.0, AdamOptions{.beta1 = 0.0});  // boundaries allowed
  EXPECT_EQ(ok.beta1(), 0.0);
}

TEST(OptimizerValidation, LearningRateSetters) {
  Momentum fixed({{"w", make_param({1, 2})}}, 0.1, 0.9);
  fixed.set_learning_rate(0.05);
  EXPECT_DOUBLE_EQ(fixed.current_learning_rate(), 0.05);
  expect_error([&] { fixed.set_learning_rate(-1); }, {"learning rate", "-1"});

  Momentum scheduled({{"w", make_param({1, 2})}}, std::make_shared<ConstantLR>(0.2), 0.9);
  EXPECT_DOUBLE_EQ(scheduled.current_learning_rate(), 0.2);
  expect_error([&] { scheduled.set_learning_rate(0.1); }, {"Momentum.set_learning_rate", "set_learning_rate_schedule"});
  scheduled.set_learning_rate_schedule(std::make_shared<ConstantLR>(0.3));
  EXPECT_DOUBLE_EQ(scheduled.current_learning_rate(), 0.3);
  expect_error([&] { scheduled.set_learning_rate_schedule(nullptr); }, {"null"});
  expect_error([&] { scheduled.set_global_step(-1); }, {"set_global_step", "-1"});
  scheduled.set_global_step(7);
  EXPECT_EQ(scheduled.global_step(), 7);
}

TEST(OptimizerValidation, AccessorsReportConstruction) {
  Tensor w = make_param({1, 2});
  Adam opt({{"fc.weight", w}}, 0.01, AdamOptions{.beta1 = 0.8, .beta2 = 0.99, .eps = 1e-7, .weight_decay = 0.1});
  EXPECT_EQ(opt.name(), "Adam");
  EXPECT_EQ(opt.beta1(), 0.8);
  EXPECT_EQ(opt.beta2(), 0.99);
  EXPECT_EQ(opt.eps(), 1e-7);
  EXPECT_EQ(opt.weight_decay(), 0.1);
  ASSERT_EQ(opt.parameters().size(), 1u);
  EXPECT_EQ(opt.parameters()[0].first, "fc.weight");
  EXPECT_TRUE(opt.parameters()[0].second.same(w));
  EXPECT_EQ(opt.learning_rate_schedule(), nullptr);
  expect_error([&] { (void)opt.decays_weight(1); }, {"out of range"});
}
