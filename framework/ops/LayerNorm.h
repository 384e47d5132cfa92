// Differentiable layer normalization over the trailing dimensions (MindSpore ops.LayerNorm,
// PyTorch F.layer_norm).
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y = (x - mean) / sqrt(var + eps) * gamma + beta, with mean and the biased variance taken over the
/// trailing dims of x that gamma's shape names (the normalized shape, e.g. x [N, L, C], gamma [C], or
/// gamma [L, C] to normalize over both). gamma and beta have the same shape and x's dtype.
/// Throws anvil::Error naming the shapes when gamma/beta do not match x's trailing dims.
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps);

}  // namespace anvil::ops
