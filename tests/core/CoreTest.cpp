#include <gtest/gtest.h>

#include "framework/core/Error.h"
#include "framework/core/Random.h"
#include "framework/core/Shape.h"
#include "framework/tensor/Tensor.h"

using namespace anvil;

TEST(Shape, NumelStrAndBroadcast) {
  Shape s{6, 1, 5, 5};
  EXPECT_EQ(s.numel(), 150);
  EXPECT_EQ(s.str(), "[6,1,5,5]");
  EXPECT_EQ(s[-1], 5);
  EXPECT_EQ(broadcast_shapes(Shape{4, 1, 3}, Shape{2, 1}), (Shape{4, 2, 3}));
  try {
    broadcast_shapes(Shape{3}, Shape{4});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3] and [4]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s[4], Error);
}

TEST(Error, CheckNamesFunctionAndValues) {
  auto f = [] { ANVIL_CHECK(1 + 1 == 3, "value {} is wrong", 42); };
  try {
    f();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("value 42 is wrong"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("operator()"), std::string::npos) << e.what();
  }
}

TEST(Generator, SameSeedSameStreamAndStateRestores) {
  Generator a(7), b(7), c(8);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(a.next_u64(), c.next_u64());
  (void)a.normal();  // leaves a cached spare in the state
  auto st = a.state();
  std::vector<double> first;
  for (int i = 0; i < 5; ++i) first.push_back(a.normal());
  a.set_state(st);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.normal(), first[static_cast<std::size_t>(i)]);
}

TEST(Generator, UniformAndNormalMoments) {
  Generator g(1);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double x = g.normal(1.0, 2.0);
    s += x;
    s2 += x * x;
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_NEAR(var, 4.0, 0.05);
  for (int i = 0; i < 1000; ++i) {
    double u = g.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_LT(g.randint(10), 10u);
  }
}

TEST(Tensor, ViewsShareStorageAndCloneDoesNot) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{3, 2});
  Tensor rows = t.narrow0(1, 2);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.data<float>()[0], 3.0f);
  rows.data<float>()[0] = 30.0f;
  EXPECT_EQ(t.data<float>()[2], 30.0f);
  Tensor c = t.clone();
  c.data<float>()[0] = -1.0f;
  EXPECT_EQ(t.data<float>()[0], 1.0f);
  EXPECT_THROW(t.view(Shape{4}), Error);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_EQ(t.to(DType::kF64).to_vector<double>()[5], 6.0);
}
