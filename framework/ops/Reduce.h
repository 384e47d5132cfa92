// Differentiable reductions.
#pragma once

#include <vector>

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// Sum of all elements, as a 0-d tensor.
Tensor sum(const Tensor& x);
/// Mean of all elements, as a 0-d tensor.
Tensor mean(const Tensor& x);
/// Sum over `axes` (negative counts from the end); keepdim keeps them as size 1.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);
/// Mean over `axes`.
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim = false);

}  // namespace anvil::ops
