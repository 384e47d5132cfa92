#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/optim/Adam.h"
#include "framework/optim/AdamW.h"
#include "framework/optim/CosineDecayLR.h"
#include "framework/optim/Momentum.h"
#include "framework/optim/SGD.h"
#include "framework/optim/WarmupThen.h"
#include "OptimizerTestUtil.h"

using namespace anvil;
using anvil::test::expect_error;
using anvil::test::make_param;
using anvil::test::make_vec;

namespace {

struct Expected {
  std::string name;
  DType dtype;
  Shape shape;
};

void expect_layout(const NamedTensors& st, const std::vector<Expected>& expected) {
  ASSERT_EQ(st.size(), expected.size());
  for (std::size_t i = 0; i < st.size(); ++i) {
    EXPECT_EQ(st[i].first, expected[i].name) << "entry " << i;
    EXPECT_EQ(st[i].second.dtype(), expected[i].dtype) << st[i].first;
    EXPECT_EQ(st[i].second.shape(), expected[i].shape) << st[i].first;
    EXPECT_FALSE(st[i].second.requires_grad()) << st[i].first;
  }
}

double value_of(const NamedTensors& st, const std::string& name) {
  for (const auto& [n, t] : st)
    if (n == name) return t.item();
  ADD_FAILURE() << "no entry " << name;
  return 0;
}

NamedTensors two_params() { return {{"fc.weight", make_param({0.5f, -1.5f})}, {"fc.bias", make_param({0.25f, 2.0f})}}; }

NamedTensors clone_params(const NamedTensors& ps) {
  NamedTensors out;
  for (const auto& [n, t] : ps) {
    Tensor c = t.clone();
    c.set_requires_grad(true);
    out.emplace_back(n, c);
  }
  return out;
}

NamedTensors snapshot(const NamedTensors& st) {
  NamedTensors out;
  for (const auto& [n, t] : st) out.emplace_back(n, t.clone());
  return out;
}

// Deterministic gradient of step t that depends on the current parameter values (as a real loss would).
void set_grads(NamedTensors& ps, int t) {
  for (std::size_t k = 0; k < ps.size(); ++k) {
    const auto v = ps[k].second.to_vector<float>();
    std::vector<float> g(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      g[i] = 0.5f * v[i] + 0.1f * static_cast<float>((t + 1) * (i + 1 + k)) - 0.3f;
    ps[k].second.set_grad(make_vec(g));
  }
}

using Factory = std::function<std::unique_ptr<Optimizer>(NamedTensors)>;

// One optimizer runs 4 steps; another runs 2, its state is saved (copied), a fresh optimizer over
// copies of the parameters loads it and runs 2 more: parameters must be bit-identical.
void expect_bit_identical_resume(const Factory& make) {
  NamedTensors straight = two_params();
  NamedTensors first_half = clone_params(straight);
  {
    auto opt = make(straight);
    for (int t = 0; t < 4; ++t) {
      set_grads(straight, t);
      opt->step();
    }
  }
  NamedTensors saved;
  {
    auto opt = make(first_half);
    for (int t = 0; t < 2; ++t) {
      set_grads(first_half, t);
      opt->step();
    }
    saved = snapshot(opt->state_dict());
  }
  NamedTensors resumed = clone_params(first_half);
  auto opt = make(resumed);
  opt->load_state_dict(saved);
  EXPECT_EQ(opt->global_step(), 2);
  for (int t = 2; t < 4; ++t) {
    set_grads(resumed, t);
    opt->step();
  }
  for (std::size_t k = 0; k < straight.size(); ++k) {
    const Tensor& a = straight[k].second;
    const Tensor& b = resumed[k].second;
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << straight[k].first;
    EXPECT_NE(a.to_vector<float>(), first_half[k].second.to_vector<float>()) << "the last two steps changed nothing";
  }
}

}  // namespace

TEST(StateDict, SgdNamesAndShapes) {
  SGD opt(two_params(), 0.1);
  expect_layout(opt.state_dict(), {{"global_step", DType::kI32, Shape{1}}, {"learning_rate", DType::kF32, Shape{}}});
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(opt.state_dict(), "learning_rate")), 0.1f);
}

TEST(StateDict, MomentumNamesShapesAndValues) {
  NamedTensors ps = two_params();
  Momentum opt(ps, 0.01, 0.9);
  expect_layout(opt.state_dict(), {{"global_step", DType::kI32, Shape{1}},
                                   {"learning_rate", DType::kF32, Shape{}},
                                   {"momentum", DType::kF32, Shape{}},
                                   {"moments.fc.weight", DType::kF32, Shape{2}},
                                   {"moments.fc.bias", DType::kF32, Shape{2}}});
  set_grads(ps, 0);
  opt.step();
  opt.step();
  const auto st = opt.state_dict();
  EXPECT_EQ(value_of(st, "global_step"), 2);
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(st, "momentum")), 0.9f);
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(st, "learning_rate")), 0.01f);
}

TEST(StateDict, AdamNamesShapesAndBetaPowers) {
  NamedTensors ps = two_params();
  Adam opt(ps);
  expect_layout(opt.state_dict(), {{"global_step", DType::kI32, Shape{1}},
                                   {"learning_rate", DType::kF32, Shape{}},
                                   {"beta1_power", DType::kF32, Shape{}},
                                   {"beta2_power", DType::kF32, Shape{}},
                                   {"moment1.fc.weight", DType::kF32, Shape{2}},
                                   {"moment1.fc.bias", DType::kF32, Shape{2}},
                                   {"moment2.fc.weight", DType::kF32, Shape{2}},
                                   {"moment2.fc.bias", DType::kF32, Shape{2}}});
  EXPECT_EQ(value_of(opt.state_dict(), "beta1_power"), 1.0);
  set_grads(ps, 0);
  opt.step();
  opt.step();
  const auto st = opt.state_dict();
  const float b1p = 0.9f * 0.9f, b2p = 0.999f * 0.999f;  // float32 arithmetic, as MindSpore
  EXPECT_EQ(static_cast<float>(value_of(st, "beta1_power")), b1p);
  EXPECT_EQ(static_cast<float>(value_of(st, "beta2_power")), b2p);
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(st, "learning_rate")), 1e-3f);
}

TEST(StateDict, AdamWNames) {
  AdamW opt(two_params(), 1e-3, AdamWOptions{.weight_decay = 0.01});
  expect_layout(opt.state_dict(), {{"global_step", DType::kI32, Shape{1}},
                                   {"learning_rate", DType::kF32, Shape{}},
                                   {"adam_m.fc.weight", DType::kF32, Shape{2}},
                                   {"adam_m.fc.bias", DType::kF32, Shape{2}},
                                   {"adam_v.fc.weight", DType::kF32, Shape{2}},
                                   {"adam_v.fc.bias", DType::kF32, Shape{2}}});
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(opt.state_dict(), "learning_rate")), 1e-3f);
}

TEST(StateDict, LearningRateEntryFollowsTheSchedule) {
  NamedTensors ps = two_params();
  SGD opt(ps, std::make_shared<CosineDecayLR>(0.0, 0.1, 2));
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(opt.state_dict(), "learning_rate")), 0.1f);
  set_grads(ps, 0);
  opt.step();
  EXPECT_FLOAT_EQ(static_cast<float>(value_of(opt.state_dict(), "learning_rate")), 0.05f);
}

TEST(StateDict, ResumeIsBitIdenticalSgd) {
  expect_bit_identical_resume([](NamedTensors ps) {
    return std::make_unique<SGD>(std::move(ps), 0.1, SGDOptions{.weight_decay = 0.01});
  });
}

TEST(StateDict, ResumeIsBitIdenticalMomentumNesterovWithSchedule) {
  expect_bit_identical_resume([](NamedTensors ps) {
    return std::make_unique<Momentum>(
        std::move(ps), std::make_shared<WarmupThen>(1, std::make_shared<CosineDecayLR>(0.001, 0.1, 3)), 0.9,
        MomentumOptions{.weight_decay = 1e-3, .nesterov = true});
  });
}

TEST(StateDict, ResumeIsBitIdenticalAdam) {
  expect_bit_identical_resume([](NamedTensors ps) {
    return std::make_unique<Adam>(std::move(ps), 0.01, AdamOptions{.weight_decay = 0.01});
  });
}

TEST(StateDict, ResumeIsBitIdenticalAdamW) {
  expect_bit_identical_resume([](NamedTensors ps) {
    return std::make_unique<AdamW>(std::move(ps), 0.01, AdamWOptions{.weight_decay = 0.1});
  });
}

TEST(StateDict, StateIsKeyedByNameNotPosition) {
  NamedTensors ps = two_params();
  Momentum a(ps, 0.1, 0.9);
  set_grads(ps, 0);
  a.step();
  NamedTensors st = snapshot(a.state_dict());
  std::reverse(st.begin(), st.end());  // order does not matter, names do
  NamedTensors reversed = {ps[1], ps[0]};
  Momentum b(clone_params(reversed), 0.1, 0.9);
  b.load_state_dict(st);
  const auto got = b.state_dict();
  EXPECT_EQ(got[3].first, "moments.fc.bias");
  EXPECT_EQ(got[3].second.to_vector<float>(), a.state_dict()[4].second.to_vector<float>());
}

TEST(LoadStateDict, ShapeMismatchNamesEntryAndBothShapes) {
  Momentum opt(two_params(), 0.1, 0.9);
  NamedTensors st = snapshot(opt.state_dict());
  st[3].second = Tensor::zeros(Shape{3});  // moments.fc.weight
  expect_error([&] { opt.load_state_dict(st); },
               {"Momentum.load_state_dict", "shape mismatch", "'moments.fc.weight'", "given [3]", "expected [2]"});
}

TEST(LoadStateDict, UnknownNamesAreListed) {
  Adam opt(two_params());
  NamedTensors st = snapshot(opt.state_dict());
  st.emplace_back("moment1.fc.nope", Tensor::zeros(Shape{2}));
  st.emplace_back("moments.fc.weight", Tensor::zeros(Shape{2}));
  expect_error([&] { opt.load_state_dict(st); },
               {"Adam.load_state_dict", "2 entries are not part of the Adam state", "'moment1.fc.nope'",
                "'moments.fc.weight'", "'moment1.<parameter>'"});
}

TEST(LoadStateDict, MissingEntriesAreListedAndNothingChanges) {
  NamedTensors ps = two_params();
  Adam opt(ps, 0.01);
  set_grads(ps, 0);
  opt.step();
  NamedTensors st = snapshot(opt.state_dict());
  st[0].second.fill_(7);  // global_step
  st.erase(st.begin() + 5);  // moment1.fc.bias
  expect_error([&] { opt.load_state_dict(st); }, {"1 entry is missing", "'moment1.fc.bias'"});
  EXPECT_EQ(opt.global_step(), 1);
}

TEST(LoadStateDict, RejectsBadValuesAndDtypes) {
  Adam opt(two_params());
  NamedTensors st = snapshot(opt.state_dict());
  st[2].second = Tensor::scalar(1.5);  // beta1_power
  expect_error([&] { opt.load_state_dict(st); }, {"'beta1_power'", "[0, 1]"});
  st = snapshot(opt.state_dict());
  st[1].second = Tensor::scalar(-1.0);
  expect_error([&] { opt.load_state_dict(st); }, {"'learning_rate'", "-1"});
  st = snapshot(opt.state_dict());
  st[4].second = Tensor::zeros(Shape{2}, DType::kI32);
  expect_error([&] { opt.load_state_dict(st); }, {"'moment1.fc.weight'", "int32"});
  st = snapshot(opt.state_dict());
  const auto dup = st[4];
  st.push_back(dup);
  expect_error([&] { opt.load_state_dict(st); }, {"given twice"});
}

TEST(LoadStateDict, MindSporeFormsLoad) {
  // A MindSpore r0.1 Momentum checkpoint: learning_rate and momentum as float64, no global_step;
  // scalars may arrive as [1].
  Momentum opt(two_params(), 0.1, 0.9);
  opt.set_global_step(5);
  NamedTensors st = {{"learning_rate", Tensor::full(Shape{1}, 0.001, DType::kF64)},
                     {"momentum", Tensor::scalar(0.5, DType::kF64)},
                     {"moments.fc.weight", Tensor::from_vector<float>({1.0f, 2.0f}, Shape{2})},
                     {"moments.fc.bias", Tensor::from_vector<float>({3.0f, 4.0f}, Shape{2})}};
  opt.load_state_dict(st);
  EXPECT_EQ(opt.global_step(), 0);
  EXPECT_DOUBLE_EQ(opt.current_learning_rate(), 0.001);
  EXPECT_DOUBLE_EQ(opt.momentum(), 0.5);
  EXPECT_EQ(opt.state_dict()[4].second.to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));

  // A float32 learning rate equal to float32(current) keeps the exact double; another value is adopted.
  Momentum exact(two_params(), 0.1, 0.9);
  exact.load_state_dict(snapshot(exact.state_dict()));
  EXPECT_EQ(exact.current_learning_rate(), 0.1);
  EXPECT_EQ(exact.momentum(), 0.9);
}

TEST(LoadStateDict, ReplacesValuesInTheLiveBuffers) {
  Adam opt(two_params());
  const NamedTensors live = opt.state_dict();
  NamedTensors st = snapshot(live);
  st[4].second.fill_(0.5);
  st[2].second.fill_(0.25);
  opt.load_state_dict(st);
  EXPECT_EQ(live[4].second.to_vector<float>(), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(opt.beta1_power(), 0.25f);
  EXPECT_EQ(opt.state_dict().size(), live.size());
}
