// Gradient clipping (MindSpore clip_by_global_norm semantics) and the gradient-buffer helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "framework/optim/ClipGrad.h"
#include "OptimizerTestUtil.h"

using namespace anvil;
using anvil::test::expect_error;
using anvil::test::make_param;
using anvil::test::make_vec;

namespace {

// Two parameters with gradients [3, 4] and [12] (global norm 13) plus one without a gradient.
NamedTensors params_with_grads(float s = 1.0f) {
  NamedTensors ps{{"a", make_param({1.0f, 2.0f})}, {"b", make_param({0.5f})}, {"c", make_param({7.0f})}};
  ps[0].second.set_grad(make_vec({3.0f * s, 4.0f * s}));
  ps[1].second.set_grad(make_vec({12.0f * s}));
  return ps;
}

}  // namespace

TEST(ClipGrad, GlobalNormIsComputedOverEveryGradient) {
  EXPECT_DOUBLE_EQ(grad_global_norm(params_with_grads()), 13.0);
  EXPECT_DOUBLE_EQ(grad_global_norm({{"x", make_param({1.0f})}}), 0.0);  // no gradient at all
}

TEST(ClipGrad, ClippedGlobalNormEqualsMaxNorm) {
  for (double max_norm : {0.1, 1.0, 5.0, 12.999}) {
    NamedTensors ps = params_with_grads();
    const double before = clip_grad_norm(ps, max_norm);
    EXPECT_DOUBLE_EQ(before, 13.0);
    EXPECT_NEAR(grad_global_norm(ps), max_norm, 1e-6 * max_norm) << max_norm;
    // The direction is kept: every gradient is scaled by the same factor.
    const auto a = ps[0].second.grad().to_vector<float>();
    EXPECT_NEAR(a[0] / a[1], 0.75, 1e-6);
    EXPECT_FALSE(ps[2].second.grad().defined());
  }
}

TEST(ClipGrad, BelowMaxNormIsLeftUntouched) {
  NamedTensors ps = params_with_grads();
  EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 13.0), 13.0);  // equal: untouched
  EXPECT_DOUBLE_EQ(clip_grad_norm(ps, 100.0), 13.0);
  EXPECT_EQ(ps[0].second.grad().to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(ps[1].second.grad().to_vector<float>(), (std::vector<float>{12.0f}));
}

TEST(ClipGrad, NonFiniteNormLeavesGradientsAlone) {
  NamedTensors ps = params_with_grads();
  ps[1].second.set_grad(make_vec({std::numeric_limits<float>::infinity()}));
  EXPECT_TRUE(std::isinf(clip_grad_norm(ps, 1.0)));
  EXPECT_EQ(ps[0].second.grad().to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_FALSE(grads_all_finite(ps));
  EXPECT_TRUE(grads_all_finite(params_with_grads()));
}

TEST(ClipGrad, ByValueClampsEachElement) {
  NamedTensors ps = params_with_grads();
  ps[0].second.set_grad(make_vec({-9.0f, 0.5f}));
  clip_grad_value(ps, 2.0);
  EXPECT_EQ(ps[0].second.grad().to_vector<float>(), (std::vector<float>{-2.0f, 0.5f}));
  EXPECT_EQ(ps[1].second.grad().to_vector<float>(), (std::vector<float>{2.0f}));
}

TEST(ClipGrad, ScaleGradsMultipliesInPlace) {
  NamedTensors ps = params_with_grads();
  scale_grads(ps, 0.25);
  EXPECT_EQ(ps[0].second.grad().to_vector<float>(), (std::vector<float>{0.75f, 1.0f}));
  EXPECT_EQ(ps[1].second.grad().to_vector<float>(), (std::vector<float>{3.0f}));
}

TEST(ClipGrad, InvalidArgumentsThrow) {
  NamedTensors ps = params_with_grads();
  expect_error([&] { clip_grad_norm(ps, 0.0); }, {"clip_grad_norm", "max_norm"});
  expect_error([&] { clip_grad_norm(ps, std::nan("")); }, {"max_norm"});
  expect_error([&] { clip_grad_value(ps, -1.0); }, {"clip_grad_value", "clip_value"});
  EXPECT_EQ(ps[0].second.grad().to_vector<float>(), (std::vector<float>{3.0f, 4.0f}));
}
