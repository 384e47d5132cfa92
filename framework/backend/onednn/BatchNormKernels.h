// BatchNormKernels: float32 batch-norm loops for plain NCHW / [N, C] tensors. Internal to the
// oneDNN backend.
//
// Why: oneDNN 2.6 runs batch norm on a plain (ncsp) layout with its reference-style, non-JIT kernel,
// which made batch norm a third of a ResNet-18 training step. These loops parallelise over channels
// (or, when there are few channels, over fixed blocks of each channel's values) on oneDNN's pool.
//
// Semantics match the reference backend: statistics are accumulated in double, the variance is the
// biased one (divided by N*H*W) computed around the mean in a second pass. Results are
// deterministic: each channel's values are summed in fixed blocks whose partial sums are combined in
// a fixed order, so the bits depend on the shape only (not on the thread count or on timing). On
// x86-64 the partial sums use AVX2 when the CPU has it (chosen once per process; ANVIL_BN_ISA=sse2 in
// the environment forces the SSE2 loops), so an AVX2 machine and an SSE2-only one may differ in the
// last bits. The normalisation and dx passes subtract the double mean (and mean(dy)) as a float pair,
// so a mean much larger than the spread costs no precision.
#pragma once

#include <cstdint>

namespace anvil::onednn_detail {

/// x viewed as [n, c, hw] (hw = H*W, or 1 for an [N, C] input). n*hw must be positive.
struct BnShape {
  std::int64_t n, c, hw;
};

/// y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean / biased variance per channel,
/// which are returned in mean [c] and var [c].
void bn_forward_training(const BnShape& s, const float* x, const float* gamma, const float* beta, double eps,
                         float* y, float* mean, float* var);

/// y = gamma * (x - mean) / sqrt(var + eps) + beta with the given statistics.
void bn_forward_inference(const BnShape& s, const float* x, const float* gamma, const float* beta,
                          const float* mean, const float* var, double eps, float* y);

/// Backward of bn_forward_training given its mean / var: dbeta = sum dy, dgamma = sum dy * xhat,
/// dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat * mean(dy * xhat)).
void bn_backward(const BnShape& s, const float* dy, const float* x, const float* gamma, const float* mean,
                 const float* var, double eps, float* dx, float* dgamma, float* dbeta);

/// "avx2" or "sse2" (or "scalar" off x86-64): the partial-sum loops this process uses.
const char* bn_loops_isa();

}  // namespace anvil::onednn_detail
