// Differentiable (inverted) dropout with an explicit generator.
#pragma once

#include "framework/core/Random.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// Training: zeroes each element with probability p (drawn from `gen`, one draw per element in
/// row-major order) and scales the rest by 1/(1-p). Not training, or p == 0: returns x.
/// Throws unless 0 <= p < 1.
Tensor dropout(const Tensor& x, double p, Generator& gen, bool training = true);

}  // namespace anvil::ops
