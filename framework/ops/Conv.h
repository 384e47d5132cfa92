// Differentiable 2-D convolution (cross-correlation), NCHW activations and OIHW weights.
#pragma once

#include <string>

#include "framework/backend/Backend.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y [N, K, P, Q] = conv(x [N, C, H, W], w [K, C/groups, R, S]) + b [K] (b may be undefined).
/// Throws anvil::Error naming the shapes when C does not match w, K is not divisible by groups,
/// or the padded input is smaller than the kernel.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p);

/// MindSpore pad_mode → explicit padding for one spatial dimension.
/// "valid": none; "same": output = ceil(in/stride), the extra pixel going to the bottom/right;
/// "pad": `pad` on both sides. Writes (before, after). Throws on an unknown mode.
void resolve_padding(const std::string& pad_mode, std::int64_t in, std::int64_t kernel, std::int64_t stride,
                     std::int64_t dilation, std::int64_t pad, std::int64_t& before, std::int64_t& after);

}  // namespace anvil::ops
