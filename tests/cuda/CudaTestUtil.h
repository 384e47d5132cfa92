// Helpers shared by the CUDA tests: random inputs and the elementwise comparison of a tensor on any
// device with the reference backend's host result.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/core/Random.h"
#include "framework/tensor/Tensor.h"

namespace anvil::testutil {

/// Host tensor of `shape` with elements uniform in [lo, hi), drawn in double and converted to `dtype`.
inline Tensor uniform(const Shape& shape, Generator& gen, double lo = -1.0, double hi = 1.0,
                      DType dtype = DType::kF32) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()));
  for (double& x : v) x = gen.uniform(lo, hi);
  return Tensor::from_vector(v, shape).to(dtype);
}

/// Same shape and dtype, and elementwise |got - want| <= rtol * (|want| + max|want|) (NaN matches NaN,
/// an infinity only itself). `got` may live on a GPU; `want` is the reference's host result.
inline ::testing::AssertionResult close(const Tensor& got, const Tensor& want, double rtol) {
  if (!got.defined() || !want.defined())
    return ::testing::AssertionFailure() << "undefined tensor: got " << got.desc() << ", want " << want.desc();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << got.shape().str() << " != " << want.shape().str();
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype of " << got.desc() << " != " << want.desc();
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double max_abs = 1e-6;
  for (double x : w)
    if (std::isfinite(x)) max_abs = std::max(max_abs, std::abs(x));
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (std::isinf(w[i]) && g[i] == w[i]) continue;
    if (!(std::abs(g[i] - w[i]) <= rtol * (std::abs(w[i]) + max_abs)))
      return ::testing::AssertionFailure() << "element " << i << " of " << want.desc() << ": got " << g[i]
                                           << ", want " << w[i] << " (max |want| " << max_abs << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace anvil::testutil
