// Pool2x2Kernels: hand-vectorized float32 NCHW kernels for 2x2 / stride-2 / unpadded pooling, the
// pooling of LeNet-style networks. Internal to the oneDNN backend.
//
// Why: oneDNN 2.6 pools a plain NCHW tensor by transposing it to a blocked layout and back, which is
// 4-5x slower than these loops on small-channel activations (e.g. [64,6,28,28]). Semantics match
// the reference backend: max takes the first maximum in row-major window order, and the windows of
// an odd-sized input leave its last row/column out (floor mode).
#pragma once

#include <cstdint>

namespace anvil::onednn_detail {

/// Geometry of one call: `planes` = N*C images of h x w; output (h/2) x (w/2).
struct Pool2x2Shape {
  std::int64_t planes, h, w;
  std::int64_t oh() const { return h / 2; }
  std::int64_t ow() const { return w / 2; }
};

/// y [planes, oh, ow] = window max; argmax [planes, oh, ow] = index of the maximum in its window
/// (0: top-left, 1: top-right, 2: bottom-left, 3: bottom-right).
void max_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y, std::uint8_t* argmax);
/// dx [planes, h, w]: dy routed to each window's argmax, zero elsewhere.
void max_pool2x2_backward(const Pool2x2Shape& s, const float* dy, const std::uint8_t* argmax, float* dx);
/// y = window mean.
void avg_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y);
/// dx = dy / 4 spread over each window, zero outside the windows.
void avg_pool2x2_backward(const Pool2x2Shape& s, const float* dy, float* dx);

}  // namespace anvil::onednn_detail
