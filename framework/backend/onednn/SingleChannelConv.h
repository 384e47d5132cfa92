// SingleChannelConv: AVX-512 direct convolution for one input channel, NCHW in and out — the first
// layer of MNIST-style networks (LeNet's conv1: [N,1,32,32] * [6,1,5,5]). Internal to the oneDNN
// backend.
//
// Why: oneDNN 2.6 has no plain-layout kernel for C = 1 other than im2col+GEMM (5x slower); its
// blocked kernel pads K = 6 output channels to 16 and needs a reorder of the [N,6,28,28] result
// (forward) or gradient (backward weights) on every call. These loops keep the K outputs of a
// 16-wide row segment in registers and need no reorder: ~4x faster forward and ~3x faster
// backward-weights on LeNet's conv1 (measured, 2 threads).
//
// Results are deterministic for a given shape: images are split into fixed chunks whose partial
// weight gradients are summed in chunk order, whatever the thread count.
#pragma once

#include <cstdint>

#include "framework/backend/Backend.h"

namespace anvil::onednn_detail {

/// x [n, 1, h, w], weights [k, 1, r, s]; stride 1, no padding, no dilation.
struct SingleChannelConvShape {
  std::int64_t n, k, h, w, r, s;
  std::int64_t oh() const { return h - r + 1; }
  std::int64_t ow() const { return w - s + 1; }
};

/// True when the kernels handle this convolution on this CPU: one input channel, groups 1, stride 1,
/// dilation 1, no padding, an output row of at least 16 values, a kernel width of 3, 5 or 7, and
/// AVX-512F available.
bool single_channel_conv_applies(const Shape& x, const Shape& w, const Conv2dParams& p);

/// y [n, k, oh, ow] = x * weights (+ bias [k] when not null).
void single_channel_conv_forward(const SingleChannelConvShape& g, const float* x, const float* weights,
                                 const float* bias, float* y);
/// dw [k, 1, r, s] = Σ dy ⊗ x; db [k] = Σ dy when db is not null.
void single_channel_conv_backward_weights(const SingleChannelConvShape& g, const float* x, const float* dy,
                                          float* dw, float* db);

}  // namespace anvil::onednn_detail
