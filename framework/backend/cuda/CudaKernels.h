// Host-callable launchers of Anvil's own CUDA kernels (CudaKernels.cu). Plain pointers and sizes only,
// so CudaBackend.cpp compiles with the host compiler. T is float or double; every kernel accumulates
// and evaluates in double, as the reference backend does, so float32 results match it to one rounding
// (transcendentals aside: CUDA's exp/erf/tanh are within 1-2 ulp of glibc's).
// All launches are asynchronous on `stream`; launch errors are checked (ANVIL_CUDA_CHECK(cudaGetLastError())).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace anvil::cuda::kernels {

constexpr int kMaxRank = 8;

struct Dims {
  int rank = 0;
  std::int64_t d[kMaxRank] = {};
  std::int64_t s0[kMaxRank] = {};  // strides of operand 0 (0 = broadcast / not indexed)
  std::int64_t s1[kMaxRank] = {};  // strides of operand 1
};

// kind: the integer value of anvil::EltwiseKind / BinaryKind / ReduceKind.
template <typename T>
void eltwise_forward(int kind, const T* x, T* y, std::int64_t n, double alpha, double beta, cudaStream_t s);
/// y may be null (recomputed from x).
template <typename T>
void eltwise_backward(int kind, const T* dy, const T* x, const T* y, T* dx, std::int64_t n, double alpha, double beta,
                      cudaStream_t s);
/// c[i] = a[...] op b[...] over the output index space dims.d (row-major), a/b strides in s0/s1.
/// Operands whose index is i itself (same shape) or i % k (broadcast along leading dims only, e.g. a
/// bias [C] added to [N, C], or a scalar) take a flat path without per-dimension div/mod.
template <typename T>
void binary(int kind, const T* a, const T* b, T* c, const Dims& dims, std::int64_t n, cudaStream_t s);
/// out: dims.d = output dims (1 where reduced), dims.s0 = x strides for those dims (0 where reduced);
/// red: red.d = reduced dims (1 where kept), red.s0 = x strides. count = elements folded per output.
/// x contiguous viewed as [out_n, count] (a warp per output) or [count, out_n] (a thread per column) takes
/// a fast path when there are enough outputs; otherwise a block per output. All deterministic.
template <typename T>
void reduce(int kind, const T* x, T* y, std::int64_t out_n, std::int64_t count, const Dims& out, const Dims& red,
            cudaStream_t s);
/// y[(o*C + c)*inner + i] += b[c]
template <typename T>
void add_channel_bias(T* y, const T* b, std::int64_t outer, std::int64_t c, std::int64_t inner, cudaStream_t s);

/// Zero padding of planes [P, H, W] into [P, H + top + bottom, W + left + right] (y sized by the caller:
/// yh, yw), and its adjoint: the crop of the interior window back out.
template <typename T>
void pad_planes(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t yh, std::int64_t yw,
                std::int64_t top, std::int64_t left, cudaStream_t s);
template <typename T>
void crop_planes(const T* y, T* x, std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t yh,
                 std::int64_t yw, std::int64_t top, std::int64_t left, cudaStream_t s);

/// Pooling over planes [P, H, W] -> [P, OH, OW]; max writes argmax (ih*W + iw, -1 for an all-padding window).
struct PoolArgs {
  std::int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  std::int64_t kh = 0, kw = 0, sh = 0, sw = 0, pt = 0, pl = 0;
  bool max = true, count_include_pad = false;
};
template <typename T>
void pool_forward(const T* x, T* y, std::int64_t* idx, const PoolArgs& a, cudaStream_t s);
template <typename T>
void pool_backward(const T* dy, const std::int64_t* idx, T* dx, const PoolArgs& a, cudaStream_t s);

/// Batch norm, x [N, C, HW]; mean/var [C] (biased variance). Training forward and backward are
/// deterministic two-stage reductions over (channel, chunk) partials: they need a device workspace of
/// bn_workspace_doubles(n, c, hw) doubles (the same size serves both), owned by the caller.
std::int64_t bn_workspace_doubles(std::int64_t n, std::int64_t c, std::int64_t hw);
template <typename T>
void bn_forward_training(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, std::int64_t n,
                         std::int64_t c, std::int64_t hw, double eps, double* workspace, cudaStream_t s);
template <typename T>
void bn_forward_inference(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, T* y, std::int64_t n,
                          std::int64_t c, std::int64_t hw, double eps, cudaStream_t s);
template <typename T>
void bn_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma, T* dbeta,
                 std::int64_t n, std::int64_t c, std::int64_t hw, double eps, double* workspace, cudaStream_t s);

// Layer norm over rows of d values (x viewed as [m, d]); mean/var [m] (biased variance). With m == 0
// the backward pass writes zero dgamma/dbeta (sums over no rows).
template <typename T>
void ln_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, std::int64_t m, std::int64_t d,
                double eps, cudaStream_t s);
template <typename T>
void ln_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma, T* dbeta,
                 std::int64_t m, std::int64_t d, double eps, cudaStream_t s);

// Embedding: gather rows of table [V, e] by n indices (already range-checked); scatter-add by the
// host-built CSR of positions per row (order: positions grouped by row, ascending; start: V + 1 offsets).
template <typename T, typename L>
void embedding_forward(const T* table, const L* idx, T* y, std::int64_t n, std::int64_t e, cudaStream_t s);
template <typename T>
void embedding_backward(const T* dy, const std::int64_t* order, const std::int64_t* start, T* dtable, std::int64_t v,
                        std::int64_t e, cudaStream_t s);

/// Softmax cross entropy, logits [N, C]; labels int32 or int64 (L). A label outside [0, C) writes the
/// smallest such row index into *bad (initialised by the caller to N) and NaN into that row's outputs.
/// Every row's label is checked whenever N > 0, also when C == 0 (then no label is valid).
template <typename T, typename L>
void softmax_ce_forward(const T* logits, const L* labels, T* loss, T* prob, std::int64_t n, std::int64_t c,
                        std::int64_t* bad, cudaStream_t s);
template <typename T, typename L>
void softmax_ce_backward(const T* dloss, const T* prob, const L* labels, T* dx, std::int64_t n, std::int64_t c,
                         std::int64_t* bad, cudaStream_t s);

/// p[0..n) = value, queued on `s` (initialises device flags without a synchronising upload).
void fill_i64(std::int64_t* p, std::int64_t value, std::int64_t n, cudaStream_t s);

// In-place helpers and fused optimizer updates (formulas in framework/backend/Backend.h).
template <typename T>
void axpy(T* dst, const T* src, double alpha, std::int64_t n, cudaStream_t s);
template <typename T>
void sgd_update(T* p, const T* g, double lr, double wd, std::int64_t n, cudaStream_t s);
template <typename T>
void momentum_update(T* p, const T* g, T* m, double lr, double momentum, double wd, bool nesterov, std::int64_t n,
                     cudaStream_t s);
template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, double lr, double step, double b1, double b2, double eps, double wd,
                 bool decoupled, std::int64_t n, cudaStream_t s);

}  // namespace anvil::cuda::kernels
