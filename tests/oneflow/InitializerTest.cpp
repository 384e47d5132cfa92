// OneFlow initializers and VariableStore: statistical tests with fixed seeds and tolerances derived
// from the sample size (5 standard errors), fan rules for Dense and Conv weights (NCHW / NHWC).
#include <gtest/gtest.h>

#include <cmath>

#include "framework/nn/OneFlowInitializers.h"
#include "framework/nn/VariableStore.h"

using namespace anvil;
using namespace anvil::nn;
using namespace anvil::nn::oneflow;

namespace {

struct Stats {
  double mean = 0, std = 0, min = 1e300, max = -1e300;
  std::int64_t n = 0;
};
Stats stats_of(const Tensor& t) {
  auto v = t.to_vector<double>();
  Stats s;
  s.n = static_cast<std::int64_t>(v.size());
  for (double x : v) {
    s.mean += x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  s.mean /= static_cast<double>(s.n);
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / static_cast<double>(s.n - 1));
  return s;
}
Tensor draw(const InitializerPtr& init, const Shape& shape, std::uint64_t seed = 7, DType dt = DType::kF32) {
  Tensor t = Tensor::empty(shape, dt);
  Generator g(seed);
  init->fill(t, g);
  return t;
}
// Checks mean and std against expectations. SE(mean) = sd/sqrt(n): tolerance 5 SE.
// SE(std) ≈ sd·sqrt((kurtosis_excess+2)/(4n)) ≤ sd/sqrt(2n) for the distributions used here (uniform
// −1.2, normal 0, truncated normal < 0): tolerance 5·sd/sqrt(n) ≥ 7 SE.
void expect_moments(const Stats& s, double mean, double sd) {
  const double n = static_cast<double>(s.n);
  EXPECT_NEAR(s.mean, mean, 5 * sd / std::sqrt(n));
  EXPECT_NEAR(s.std, sd, 5 * sd / std::sqrt(n));
}

}  // namespace

TEST(OneFlowInit, ConstantZerosOnes) {
  auto t = draw(constant_initializer(2.5), Shape({3, 4}));
  for (float x : t.to_vector<float>()) EXPECT_EQ(x, 2.5f);
  auto i = draw(constant_initializer(7.9), Shape({5}), 1, DType::kI64);
  for (auto x : i.to_vector<std::int64_t>()) EXPECT_EQ(x, 7);
  auto z = draw(zeros_initializer(), Shape({4}), 1, DType::kI32);
  for (auto x : z.to_vector<std::int32_t>()) EXPECT_EQ(x, 0);
  auto o = draw(ones_initializer(), Shape({4}), 1, DType::kF64);
  for (auto x : o.to_vector<double>()) EXPECT_EQ(x, 1.0);
  Tensor u = Tensor::empty(Shape({2}), DType::kU16);
  Generator g(1);
  try {
    ones_initializer()->fill(u, g);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Do not support such data type"), std::string::npos);
  }
}

TEST(OneFlowInit, RandomUniformFloatAndIntInclusive) {
  auto s = stats_of(draw(random_uniform_initializer(-2, 3), Shape({200000})));
  EXPECT_GE(s.min, -2.0);
  EXPECT_LE(s.max, 3.0);
  expect_moments(s, 0.5, 5 / std::sqrt(12.0));
  auto ti = draw(random_uniform_initializer(1, 4), Shape({20000}), 3, DType::kI32).to_vector<std::int32_t>();
  int counts[6] = {};
  for (auto x : ti) {
    ASSERT_GE(x, 1);
    ASSERT_LE(x, 4);
    ++counts[x];
  }
  for (int k = 1; k <= 4; ++k) EXPECT_NEAR(counts[k], 5000, 5 * std::sqrt(20000 * 0.25 * 0.75));  // max included
  EXPECT_THROW(random_uniform_initializer(2, 1), Error);
}

TEST(OneFlowInit, NormalAndTruncatedNormal) {
  expect_moments(stats_of(draw(random_normal_initializer(1.5, 2.0), Shape({200000}))), 1.5, 2.0);
  auto s = stats_of(draw(truncated_normal_initializer(-1.0, 0.5), Shape({200000})));
  EXPECT_GT(s.min, -1.0 - 1.0);
  EXPECT_LT(s.max, -1.0 + 1.0);
  expect_moments(s, -1.0, 0.5 * 0.87962566103423978);
  EXPECT_THROW(random_normal_initializer(0, 0), Error);
}

TEST(OneFlowInit, FanRulesDenseAndConv) {
  Fans d = oneflow_fans(Shape({10, 784}), "");
  EXPECT_EQ(d.fan_in, 784);
  EXPECT_EQ(d.fan_out, 10);
  Fans nchw = oneflow_fans(Shape({64, 3, 7, 5}), "NCHW");  // [O, I, kh, kw]
  EXPECT_EQ(nchw.fan_in, 3 * 7 * 5);
  EXPECT_EQ(nchw.fan_out, 64 * 7 * 5);
  Fans nhwc = oneflow_fans(Shape({64, 7, 5, 3}), "NHWC");  // [O, kh, kw, I]
  EXPECT_EQ(nhwc.fan_in, 7 * 5 * 3);
  EXPECT_EQ(nhwc.fan_out, 64 * 7 * 5);
  EXPECT_THROW(oneflow_fans(Shape({64, 3, 7, 7}), ""), Error);
  EXPECT_THROW(oneflow_fans(Shape({64, 3, 7, 7}), "HWCN"), Error);
  EXPECT_EQ(select_oneflow_fan(nchw, "FAN_AVG"), (105 + 64 * 35) / 2.0);
  EXPECT_THROW(select_oneflow_fan(nchw, "fan_sum"), Error);
  EXPECT_THROW(variance_scaling_initializer(1, "fan_sum"), Error);
}

TEST(OneFlowInit, VarianceScalingDistributions) {
  const Shape conv({32, 16, 3, 3});
  const double fan_out = 32 * 9, fan_in = 16 * 9;
  // truncated_normal: std = sqrt(s)/0.8796..., kept std = sqrt(s), bounded at 2·std
  auto t = stats_of(draw(variance_scaling_initializer(2.0, "fan_out", "truncated_normal", "NCHW"), conv));
  const double st = std::sqrt(2.0 / fan_out) / 0.87962566103423978;
  EXPECT_LT(std::max(-t.min, t.max), 2 * st);
  expect_moments(t, 0, std::sqrt(2.0 / fan_out));
  expect_moments(stats_of(draw(variance_scaling_initializer(1.0, "fan_in", "random_normal", "NCHW"), conv)), 0,
                 std::sqrt(1.0 / fan_in));
  auto u = stats_of(draw(variance_scaling_initializer(3.0, "fan_avg", "random_uniform", "NCHW"), conv));
  const double b = std::sqrt(3 * 3.0 / ((fan_in + fan_out) / 2));
  EXPECT_LE(std::max(-u.min, u.max), b);
  expect_moments(u, 0, b / std::sqrt(3.0));
  // NHWC layout of the same conv: [O, kh, kw, I] has the same fans.
  auto n = stats_of(draw(variance_scaling_initializer(1.0, "fan_out", "random_normal", "NHWC"), Shape({32, 3, 3, 16})));
  expect_moments(n, 0, std::sqrt(1.0 / fan_out));
}

TEST(OneFlowInit, GlorotAndKaiming) {
  const Shape dense({300, 500});
  auto gu = stats_of(draw(glorot_uniform_initializer(), dense));
  const double b = std::sqrt(6.0 / 800);
  EXPECT_LE(std::max(-gu.min, gu.max), b);
  expect_moments(gu, 0, b / std::sqrt(3.0));
  expect_moments(stats_of(draw(xavier_normal_initializer(), dense)), 0, std::sqrt(2.0 / 800));
  // kaiming defaults: sqrt(2/fan_in); rank 2 fan_in = shape[1]
  expect_moments(stats_of(draw(kaiming_initializer(), dense)), 0, std::sqrt(2.0 / 500));
  auto ku = stats_of(draw(kaiming_initializer("random_uniform", "fan_out", "tanh", 0, "NCHW"), Shape({32, 16, 3, 3})));
  const double std = (5.0 / 3.0) / std::sqrt(32 * 9.0);
  EXPECT_LE(std::max(-ku.min, ku.max), std::sqrt(3.0) * std);
  expect_moments(ku, 0, std);
  auto kl = stats_of(draw(kaiming_initializer("random_normal", "fan_in", "leaky_relu", 0.2, "NHWC"), Shape({32, 3, 3, 16})));
  expect_moments(kl, 0, std::sqrt(2.0 / 1.04) / std::sqrt(144.0));
  Tensor v = Tensor::empty(Shape({8}));
  Generator g(1);
  EXPECT_THROW(kaiming_initializer()->fill(v, g), Error);
  EXPECT_THROW(kaiming_initializer("random_normal", "fan_in", "leaky_relu", 0, "CHWN"), Error);
}

TEST(OneFlowInit, DeterministicPerSeed) {
  auto a = draw(random_normal_initializer(), Shape({100}), 42).to_vector<float>();
  auto b = draw(random_normal_initializer(), Shape({100}), 42).to_vector<float>();
  auto c = draw(random_normal_initializer(), Shape({100}), 43).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(OneFlowVariableStore, GetVariableSemantics) {
  VariableStore store(1);
  VariableArgs args;
  args.shape = Shape({4, 3});
  args.initializer = random_normal_initializer();
  Tensor w;
  {
    NameScope s1(store, "Net");
    NameScope s2(store, "dense1");
    w = store.get_variable("weight", args);
  }
  ASSERT_NE(store.find("Net-dense1-weight"), nullptr);
  EXPECT_TRUE(w.requires_grad());
  // reuse=true returns the same variable and ignores other arguments
  VariableArgs again;
  again.initializer = zeros_initializer();
  EXPECT_TRUE(store.get_variable("Net-dense1-weight", again).same(w));
  // explicit conflicting shape / dtype: error
  again.shape = Shape({3, 4});
  EXPECT_THROW(store.get_variable("Net-dense1-weight", again), Error);
  VariableArgs dt;
  dt.dtype = DType::kF64;
  EXPECT_THROW(store.get_variable("Net-dense1-weight", dt), Error);
  // reuse=false: already exists
  VariableArgs nr = args;
  nr.reuse = false;
  try {
    store.get_variable("Net-dense1-weight", nr);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos);
  }
  // no initializer and no default
  VariableArgs none;
  none.shape = Shape({2});
  EXPECT_THROW(store.get_variable("b", none), Error);
  store.set_default_initializer("", ones_initializer());
  Tensor b = store.get_variable("b", none);
  EXPECT_EQ(b.to_vector<float>(), std::vector<float>({1, 1}));
  // another job: own handle on shared storage; configuration must match
  Tensor w_eval = store.get_variable("Net-dense1-weight", args, "eval");
  EXPECT_FALSE(w_eval.same(w));
  EXPECT_TRUE(w_eval.shares_storage(w));
  VariableArgs other = args;
  other.initializer = zeros_initializer();
  EXPECT_THROW(store.get_variable("Net-dense1-weight", other, "eval2"), Error);
  other = args;
  other.trainable = false;
  EXPECT_THROW(store.get_variable("Net-dense1-weight", other, "eval3"), Error);
  // re-initialization with the variable's own seed reproduces the values
  auto before = w.to_vector<float>();
  w.data<float>()[0] = 123;
  store.initialize("Net-dense1-weight");
  EXPECT_EQ(w.to_vector<float>(), before);
  EXPECT_EQ(store.variables().size(), 2u);
}
