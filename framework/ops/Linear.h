// Differentiable dense algebra.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y [N, O] = x [N, I] · wᵀ + b, with w [O, I] and b [O] (or undefined for no bias).
/// Throws anvil::Error naming all shapes when I differs, ranks are wrong or dtypes differ.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());

/// Matrix product over the last two dims (batched over equal leading dims), with optional transposes.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

}  // namespace anvil::ops
