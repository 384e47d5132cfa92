// Differentiable batch normalization over N (and H, W) per channel C.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// x [N, C, H, W] or [N, C]; gamma, beta, running_mean, running_var [C].
/// Training: normalizes with the batch statistics and, without recording, updates the running
/// statistics MindSpore's way: running = momentum * running + (1 - momentum) * batch, using the
/// unbiased batch variance (N·H·W / (N·H·W − 1)) for running_var.
/// Inference: normalizes with running_mean / running_var.
/// Throws naming the shapes when C does not match.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps);

}  // namespace anvil::ops
