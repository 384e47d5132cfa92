// Differentiable reshapes (views that share storage).
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// View of x with `shape`; one dimension may be -1 (inferred). Throws naming both shapes on mismatch.
Tensor reshape(const Tensor& x, const Shape& shape);
/// [N, ...] -> [N, prod(...)] (MindSpore nn.Flatten). Throws on a 0-d input.
Tensor flatten(const Tensor& x);

}  // namespace anvil::ops
