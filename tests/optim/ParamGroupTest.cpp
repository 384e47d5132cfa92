// Parameter groups (MindSpore group_params): per-group learning rate and weight decay, order_params,
// frozen parameters, and the group-naming of the state dict.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "framework/optim/Adam.h"
#include "framework/optim/ConstantLR.h"
#include "framework/optim/Momentum.h"
#include "framework/optim/SGD.h"
#include "OptimizerTestUtil.h"

using namespace anvil;
using anvil::test::expect_error;
using anvil::test::make_param;
using anvil::test::make_vec;

namespace {

std::vector<std::string> names(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

}  // namespace

TEST(ParamGroups, PerGroupLearningRateAndWeightDecay) {
  Tensor w = make_param({1.0f}), b = make_param({1.0f}), bn = make_param({1.0f});
  SGD opt(OptimizerParams({ParamGroup{.params = {{"fc.weight", w}}},                          // defaults
                           ParamGroup{.params = {{"fc.bias", b}}, .lr = 0.5, .weight_decay = 0.0},
                           ParamGroup{.params = {{"bn.gamma", bn}}, .weight_decay = 0.5}}),
          0.1, SGDOptions{.weight_decay = 0.25});
  EXPECT_EQ(opt.num_groups(), 3u);
  EXPECT_TRUE(opt.is_group_lr());
  EXPECT_EQ(opt.current_learning_rates(), (std::vector<double>{0.1, 0.5, 0.1}));
  EXPECT_DOUBLE_EQ(opt.group_weight_decay(0), 0.25);
  EXPECT_DOUBLE_EQ(opt.group_weight_decay(1), 0.0);
  // A group's weight decay applies to every member, even names the default filter rejects ("gamma").
  EXPECT_DOUBLE_EQ(opt.group_weight_decay(2), 0.5);
  for (Tensor* t : {&w, &b, &bn}) t->set_grad(make_vec({1.0f}));
  opt.step();
  EXPECT_FLOAT_EQ(w.item(), 1.0f - 0.1f * (1.0f + 0.25f));
  EXPECT_FLOAT_EQ(b.item(), 1.0f - 0.5f * 1.0f);
  EXPECT_FLOAT_EQ(bn.item(), 1.0f - 0.1f * (1.0f + 0.5f));
}

TEST(ParamGroups, StateNamesGroupsByIndex) {
  Tensor w = make_param({1.0f, 2.0f}), b = make_param({3.0f});
  Momentum opt(OptimizerParams({ParamGroup{.params = {{"fc.weight", w}}, .lr = 0.01},
                                ParamGroup{.params = {{"fc.bias", b}}, .lr = 0.02}}),
               0.1, 0.9);
  EXPECT_EQ(names(opt.state_dict()), (std::vector<std::string>{"global_step", "learning_rate_group_0",
                                                               "learning_rate_group_1", "momentum",
                                                               "moments.fc.weight", "moments.fc.bias"}));
  // Groups without their own lr keep the single "learning_rate" entry (MindSpore's is_group_lr false).
  Tensor w2 = make_param({1.0f}), b2 = make_param({1.0f});
  SGD plain(OptimizerParams({ParamGroup{.params = {{"w", w2}}, .weight_decay = 0.1}, ParamGroup{.params = {{"b", b2}}}}),
            0.1);
  EXPECT_FALSE(plain.is_group_lr());
  EXPECT_EQ(names(plain.state_dict()), (std::vector<std::string>{"global_step", "learning_rate"}));
  EXPECT_EQ(plain.current_learning_rates(), (std::vector<double>{0.1, 0.1}));
}

TEST(ParamGroups, GroupRatesRoundTripThroughStateDict) {
  auto build = [](Tensor w, Tensor b) {
    return std::make_unique<Momentum>(
        OptimizerParams({ParamGroup{.params = {{"w", w}}, .lr = 0.01},
                         ParamGroup{.params = {{"b", b}}, .lr = std::make_shared<ConstantLR>(0.3)}}),
        0.1, 0.9);
  };
  Tensor w = make_param({1.0f}), b = make_param({2.0f});
  auto a = build(w, b);
  a->set_group_learning_rate(0, 0.04);
  w.set_grad(make_vec({1.0f}));
  b.set_grad(make_vec({1.0f}));
  a->step();
  const NamedTensors st = a->state_dict();
  Tensor w2 = make_param({1.0f}), b2 = make_param({2.0f});
  auto c = build(w2, b2);
  c->load_state_dict(st);
  EXPECT_EQ(c->current_learning_rates(), (std::vector<double>{static_cast<float>(0.04), 0.3}));
  EXPECT_EQ(c->global_step(), 1);
  expect_error([&] { c->load_state_dict({{"learning_rate", Tensor::scalar(0.1)}}); }, {"learning_rate"});
}

TEST(ParamGroups, OrderParamsFixesTheOrder) {
  Tensor w = make_param({1.0f}), b = make_param({1.0f}), v = make_param({1.0f});
  SGD opt(OptimizerParams({ParamGroup{.params = {{"w", w}, {"v", v}}}, ParamGroup{.params = {{"b", b}}, .lr = 0.2}},
                          {{"b", b}, {"w", w}, {"v", v}}),
          0.1);
  EXPECT_EQ(names(opt.parameters()), (std::vector<std::string>{"b", "w", "v"}));
  EXPECT_EQ(opt.param_group(0), 1u);
  EXPECT_EQ(opt.param_group(1), 0u);
  expect_error(
      [&] {
        SGD bad(OptimizerParams({ParamGroup{.params = {{"w", w}}}}, {{"w", w}, {"b", b}}), 0.1);
      },
      {"order_params", "'b'", "not in any parameter group"});
  expect_error(
      [&] {
        SGD bad(OptimizerParams({ParamGroup{.params = {{"w", w}, {"b", b}}}}, {{"w", w}}), 0.1);
      },
      {"'b'", "missing from order_params"});
}

TEST(ParamGroups, FrozenParametersGetNoStateAndNoUpdate) {
  Tensor w = make_param({1.0f}), frozen = make_param({5.0f});
  frozen.set_requires_grad(false);
  Adam opt(OptimizerParams({ParamGroup{.params = {{"w", w}, {"frozen", frozen}}}}), 0.1);
  EXPECT_EQ(names(opt.parameters()), (std::vector<std::string>{"w"}));
  for (const auto& n : names(opt.state_dict())) EXPECT_EQ(n.find("frozen"), std::string::npos) << n;
  w.set_grad(make_vec({1.0f}));
  opt.step();
  EXPECT_FLOAT_EQ(frozen.item(), 5.0f);
  EXPECT_NE(w.item(), 1.0f);
  // A plain list still refuses frozen parameters (pass trainable_params()).
  expect_error([&] { SGD bad(NamedTensors{{"frozen", frozen}}, 0.1); }, {"does not require grad"});
}

TEST(ParamGroups, InvalidGroupsThrow) {
  Tensor w = make_param({1.0f});
  expect_error([&] { SGD bad(OptimizerParams(std::vector<ParamGroup>{}), 0.1); }, {"SGD", "empty"});
  expect_error([&] { SGD bad(OptimizerParams({ParamGroup{.params = {{"w", w}}, .lr = -1.0}}), 0.1); },
               {"parameter group 0", "learning rate"});
  expect_error([&] { SGD bad(OptimizerParams({ParamGroup{.params = {{"w", w}}, .weight_decay = -1.0}}), 0.1); },
               {"weight_decay", "group 0"});
  expect_error(
      [&] {
        SGD bad(OptimizerParams({ParamGroup{.params = {{"w", w}}}, ParamGroup{.params = {{"w2", w}}}}), 0.1);
      },
      {"parameter groups 0 and 1"});
  SGD plain(NamedTensors{{"w", w}}, 0.1);
  EXPECT_FALSE(plain.is_group_lr());
  expect_error([&] { plain.set_group_learning_rate(0, 0.1); }, {"set_learning_rate"});
}

// Two groups follow the optimizer-level rate; one of them was given its own rate during the saved run.
// A fresh optimizer built as before restores both rates instead of letting the last entry win.
TEST(ParamGroups, ARateSetDuringTheRunSurvivesALoadIntoFreshGroups) {
  auto build = [](Tensor w, Tensor b, Tensor v) {
    return std::make_unique<SGD>(OptimizerParams({ParamGroup{.params = {{"w", w}}}, ParamGroup{.params = {{"b", b}}, .lr = 0.5},
                                                  ParamGroup{.params = {{"v", v}}}}),
                                 0.1);
  };
  Tensor w = make_param({1.0f}), b = make_param({1.0f}), v = make_param({1.0f});
  auto a = build(w, b, v);
  a->set_group_learning_rate(0, 0.25);
  const std::vector<double> rates = a->current_learning_rates();
  EXPECT_EQ(rates, (std::vector<double>{0.25, 0.5, 0.1}));
  auto c = build(make_param({1.0f}), make_param({1.0f}), make_param({1.0f}));
  c->load_state_dict(a->state_dict());
  EXPECT_EQ(c->current_learning_rates(), rates);
}
