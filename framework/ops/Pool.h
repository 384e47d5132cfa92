// Differentiable 2-D max and average pooling over NCHW activations.
#pragma once

#include "framework/backend/Backend.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y [N, C, P, Q] = pool(x [N, C, H, W]). Throws when x is not rank 4 or the window does not fit.
Tensor pool2d(const Tensor& x, const Pool2dParams& p);

}  // namespace anvil::ops
