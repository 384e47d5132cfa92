// Differentiable softmax and log-softmax.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// softmax along `axis` (negative counts from the end). Throws when axis is out of range.
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
/// log(softmax(x)) computed stably.
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);

}  // namespace anvil::ops
