// Differentiable (inverted) dropout with an explicit generator.
#pragma once

#include "framework/core/Random.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// Training: zeroes each element with probability p (drawn from `gen`, one draw per element in
/// row-major order) and scales the rest by 1/(1-p). Not training, or p == 0: returns x.
/// Throws unless 0 <= p < 1.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);
/// Channel dropout (MindSpore ops.dropout2d / nn.Dropout2d, PyTorch F.dropout2d): x [N, C, H, W].
/// Training: zeroes each whole channel (n, c) with probability p (one draw from `gen` per channel,
/// in row-major (n, c) order) and scales the kept channels by 1/(1-p). Not training, or p == 0:
/// returns x. Throws unless 0 <= p < 1 and x is a float [N, C, H, W] tensor.
Tensor dropout2d(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace anvil::ops
