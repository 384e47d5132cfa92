// The one finite-difference gradient checker every differentiable op and layer is tested with.
//
// grad_check(f, inputs) makes float64 copies of `inputs` that require grad, evaluates
// L = Σ f(x) ⊙ w with a fixed random weight w (so every output element's gradient matters), runs
// backward, and compares each input's analytic gradient with central differences
// (L(x + εe_i) − L(x − εe_i)) / 2ε on the reference backend. Returns a gtest AssertionResult that
// names the input, the coordinate and both values on failure.
#pragma once

#include <functional>
#include <vector>

#include <gtest/gtest.h>

#include "framework/tensor/Tensor.h"

namespace anvil::testutil {

struct GradCheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  /// Check at most this many coordinates per input (sampled with a fixed seed); 0 = all.
  std::size_t max_coords = 0;
  /// Indices of inputs whose gradient is not checked (e.g. integer labels).
  std::vector<std::size_t> skip_inputs = {};
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

::testing::AssertionResult grad_check(const GradFn& f, const std::vector<Tensor>& inputs,
                                      const GradCheckOptions& options = {});

/// Parameter gradients of a whole function of a cell's parameters: `params` are leaf float64 tensors
/// already used inside `loss` (which must return a one-element tensor). Checks a sample of coordinates.
::testing::AssertionResult grad_check_params(const std::function<Tensor()>& loss, const NamedTensors& params,
                                             const GradCheckOptions& options = {});

/// A float64 tensor of `shape` with values uniform in [lo, hi), from a fixed seed.
Tensor random_f64(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0);
/// Same for float32.
Tensor random_f32(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace anvil::testutil
