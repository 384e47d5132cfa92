#include <gtest/gtest.h>

#include "framework/autograd/Engine.h"
#include "framework/autograd/GradMode.h"
#include "framework/backend/Backend.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"

using namespace anvil;

namespace {
Tensor leaf(std::vector<double> v) {
  Tensor t = Tensor::from_vector<double>(v, Shape{static_cast<std::int64_t>(v.size())});
  t.set_requires_grad(true);
  return t;
}
}  // namespace

TEST(Autograd, DiamondGraphSumsBothPaths) {
  BackendScope s(reference_backend());
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor a = ops::square(x);          // x²
  Tensor b = ops::scale(x, 3.0);      // 3x
  Tensor y = ops::sum(ops::mul(a, b));  // Σ 3x³ -> dy/dx = 9x²
  backward(y);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{9.0, 36.0, 81.0}));
}

TEST(Autograd, GradientsAccumulateUntilZeroGrad) {
  BackendScope s(reference_backend());
  Tensor x = leaf({1.0, -2.0});
  backward(ops::sum(ops::scale(x, 2.0)));
  backward(ops::sum(ops::scale(x, 2.0)));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4.0, 4.0}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  backward(ops::sum(x));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
}

TEST(Autograd, SharedGradientIsNotAliasedBetweenLeaves) {
  BackendScope s(reference_backend());
  Tensor a = leaf({1.0}), b = leaf({1.0});
  backward(ops::sum(ops::add(a, b)));
  backward(ops::sum(ops::scale(a, 5.0)));
  EXPECT_EQ(a.grad().item(), 6.0);
  EXPECT_EQ(b.grad().item(), 1.0);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = leaf({1.0});
  {
    NoGradGuard g;
    Tensor y = ops::scale(x, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  EXPECT_TRUE(ops::scale(x, 2.0).requires_grad());
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAnError) {
  BackendScope s(reference_backend());
  Tensor x = leaf({1.0, 2.0});
  Tensor y = ops::sum(ops::mul(x, x));
  backward(y);
  EXPECT_THROW(backward(y), Error);
  Tensor z = ops::sum(ops::mul(x, x));
  x.zero_grad();
  backward(z, Tensor(), /*retain_graph=*/true);
  backward(z);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4.0, 8.0}));
}

TEST(Autograd, BackwardNeedsAGraphAndAScalarOrGradient) {
  Tensor c = Tensor::from_vector<double>({1.0, 2.0}, Shape{2});
  EXPECT_THROW(backward(c), Error);
  Tensor x = leaf({1.0, 2.0});
  EXPECT_THROW(backward(ops::scale(x, 2.0)), Error);  // non-scalar root without a gradient
  backward(ops::scale(x, 2.0), Tensor::from_vector<double>({1.0, 10.0}, Shape{2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 20.0}));
}

TEST(Autograd, LongChainRunsWithoutRecursion) {
  BackendScope s(reference_backend());
  Tensor x = leaf({1.0});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = ops::affine(y, 1.0, 0.0);
  backward(ops::sum(y));
  EXPECT_EQ(x.grad().item(), 1.0);
}
