// Anvil's own CUDA kernels: elementwise, broadcasting binary ops, reductions, pooling, batch norm, the
// fused softmax cross entropy and the optimizer updates. Semantics mirror ReferenceBackend.cpp line by
// line (double accumulation, NaN rules, first-maximum argmax, gather-form backward passes so results
// are deterministic: no atomics on floating-point data).
#include "framework/backend/cuda/CudaKernels.h"

#include <cstdint>

#include "framework/backend/cuda/CudaCheck.h"

namespace anvil::cuda::kernels {
namespace {

using i64 = std::int64_t;
constexpr int kThreads = 256;
constexpr int kBnThreads = 1024;  // layer norm: a block per row (looped), so make each block wide

unsigned grid_for(i64 n) {
  i64 b = (n + kThreads - 1) / kThreads;
  if (b > 65535LL * 32) b = 65535LL * 32;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Batch norm work split (see k_bn_stats): blocks of tx x ty = kThreads threads, tx the smallest power of
// two >= min(hw, kThreads); each channel split into kn row ranges of `rows` rows times kh hw ranges of
// `seg` positions (every chunk non-empty), aiming at about kBnTargetBlocks blocks in all.
constexpr i64 kBnTargetBlocks = 1024;
constexpr i64 kMaxGridY = 65535;

struct BnPlan {
  int tx = 1, ty = kThreads;
  i64 kn = 1, rows = 1, kh = 1, seg = 1;
};

i64 ceil_div(i64 a, i64 b) { return (a + b - 1) / b; }

BnPlan bn_plan(i64 n, i64 c, i64 hw) {
  BnPlan p;
  while (p.tx < kThreads && p.tx < hw) p.tx *= 2;
  p.ty = kThreads / p.tx;
  if (n <= 0 || hw <= 0) return p;
  i64 want = ceil_div(kBnTargetBlocks, c > 0 ? c : 1);
  if (want > kBnTargetBlocks) want = kBnTargetBlocks;
  p.kn = ceil_div(n, p.ty);
  if (p.kn > want) p.kn = want;
  p.rows = ceil_div(n, p.kn);
  p.kn = ceil_div(n, p.rows);
  p.kh = ceil_div(want, p.kn);
  const i64 max_kh = ceil_div(hw, 4 * static_cast<i64>(p.tx));  // at least ~4 elements per thread
  if (p.kh > max_kh) p.kh = max_kh;
  if (p.kh < 1) p.kh = 1;
  p.seg = ceil_div(hw, p.kh);
  p.kh = ceil_div(hw, p.seg);
  return p;  // kn * kh <= 2 * kBnTargetBlocks < kMaxGridY
}

#define ANVIL_GRID_STRIDE(i, n) \
  for (i64 i = blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<i64>(blockDim.x) * gridDim.x)

void check_launch() { ANVIL_CUDA_CHECK(cudaGetLastError()); }

__device__ double d_nan() { return __longlong_as_double(0x7ff8000000000000LL); }
__device__ double d_inf() { return __longlong_as_double(0x7ff0000000000000LL); }

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

__device__ double elt_value(int kind, double x, double alpha, double beta) {
  switch (kind) {
    case 0: return x > 0 ? x : alpha * x;
    case 1: return 1.0 / (1.0 + exp(-x));
    case 2: return tanh(x);
    case 3: return 0.5 * x * (1.0 + erf(x * kSqrt1_2));
    case 4: return exp(x);
    case 5: return log(x);
    case 6: return sqrt(x);
    case 7: return x * x;
    case 8: return fabs(x);
    default: return alpha * x + beta;
  }
}

__device__ double elt_grad(int kind, double dy, double x, double y, double alpha) {
  switch (kind) {
    case 0: return x > 0 ? dy : alpha * dy;
    case 1: return dy * y * (1.0 - y);
    case 2: return dy * (1.0 - y * y);
    case 3: return dy * (0.5 * (1.0 + erf(x * kSqrt1_2)) + x * kInvSqrt2Pi * exp(-0.5 * x * x));
    case 4: return dy * y;
    case 5: return dy / x;
    case 6: return dy / (2.0 * y);
    case 7: return dy * 2.0 * x;
    case 8: return x > 0 ? dy : (x < 0 ? -dy : 0.0);
    default: return dy * alpha;
  }
}

template <typename T>
__global__ void k_eltwise_fwd(int kind, const T* x, T* y, i64 n, double alpha, double beta) {
  ANVIL_GRID_STRIDE(i, n) y[i] = static_cast<T>(elt_value(kind, static_cast<double>(x[i]), alpha, beta));
}

template <typename T>
__global__ void k_eltwise_bwd(int kind, const T* dy, const T* x, const T* y, T* dx, i64 n, double alpha, double beta) {
  ANVIL_GRID_STRIDE(i, n) {
    const double xv = static_cast<double>(x[i]);
    const double yv = y ? static_cast<double>(y[i]) : elt_value(kind, xv, alpha, beta);
    dx[i] = static_cast<T>(elt_grad(kind, static_cast<double>(dy[i]), xv, yv, alpha));
  }
}

template <typename T>
__device__ T bin_value(int kind, T a, T b) {
  switch (kind) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4:
      if (isnan(a) || isnan(b)) return static_cast<T>(d_nan());
      return a < b ? b : a;
    default:
      if (isnan(a) || isnan(b)) return static_cast<T>(d_nan());
      return b < a ? b : a;
  }
}

template <typename T>
__global__ void k_binary(int kind, const T* a, const T* b, T* c, Dims dims, i64 n) {
  ANVIL_GRID_STRIDE(i, n) {
    i64 rem = i, oa = 0, ob = 0;
    for (int d = dims.rank - 1; d >= 0; --d) {
      const i64 q = rem % dims.d[d];
      rem /= dims.d[d];
      oa += q * dims.s0[d];
      ob += q * dims.s1[d];
    }
    c[i] = bin_value<T>(kind, a[oa], b[ob]);
  }
}

// Flat path: operand index i % am (resp. i % bm), where am == n means the operand is indexed by i itself.
template <typename T>
__global__ void k_binary_flat(int kind, const T* a, const T* b, T* c, i64 n, i64 am, i64 bm) {
  ANVIL_GRID_STRIDE(i, n) {
    const i64 ia = am == n ? i : i % am;
    const i64 ib = bm == n ? i : i % bm;
    c[i] = bin_value<T>(kind, a[ia], b[ib]);
  }
}

__device__ i64 offset_of(i64 linear, const Dims& dims) {
  i64 off = 0;
  for (int d = dims.rank - 1; d >= 0; --d) {
    off += (linear % dims.d[d]) * dims.s0[d];
    linear /= dims.d[d];
  }
  return off;
}

// One block per output element; threads stride over the folded inputs; partials combine in shared memory.
template <typename T>
__global__ void k_reduce(int kind, const T* x, T* y, i64 out_n, i64 count, Dims out, Dims red) {
  __shared__ double part[kThreads];
  for (i64 o = blockIdx.x; o < out_n; o += gridDim.x) {
    const i64 base = offset_of(o, out);
    double acc = (kind == 2) ? -d_inf() : (kind == 3) ? d_inf() : 0.0;
    for (i64 j = threadIdx.x; j < count; j += blockDim.x) {
      const double v = static_cast<double>(x[base + offset_of(j, red)]);
      if (kind <= 1) acc += v;
      else if (kind == 2) { if (v > acc || isnan(v)) acc = isnan(acc) ? acc : v; }
      else { if (v < acc || isnan(v)) acc = isnan(acc) ? acc : v; }
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) {
        const double a = part[threadIdx.x], b = part[threadIdx.x + s];
        double r;
        if (kind <= 1) r = a + b;
        else if (isnan(a) || isnan(b)) r = d_nan();
        else if (kind == 2) r = a > b ? a : b;
        else r = a < b ? a : b;
        part[threadIdx.x] = r;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      double v = part[0];
      if (kind == 1) v = count > 0 ? v / static_cast<double>(count) : d_nan();
      y[o] = static_cast<T>(v);
    }
    __syncthreads();
  }
}

// Reduction steps shared by the fast paths below, with k_reduce's semantics: double accumulation, a NaN
// anywhere makes max/min NaN, mean of nothing is NaN.
__device__ double red_init(int kind) { return (kind == 2) ? -d_inf() : (kind == 3) ? d_inf() : 0.0; }
__device__ double red_step(int kind, double acc, double v) {
  if (kind <= 1) return acc + v;
  if (kind == 2) return (v > acc || isnan(v)) ? (isnan(acc) ? acc : v) : acc;
  return (v < acc || isnan(v)) ? (isnan(acc) ? acc : v) : acc;
}
__device__ double red_combine(int kind, double a, double b) {
  if (kind <= 1) return a + b;
  if (isnan(a) || isnan(b)) return d_nan();
  return kind == 2 ? (a > b ? a : b) : (a < b ? a : b);
}
__device__ double red_final(int kind, double v, i64 count) {
  return kind == 1 ? (count > 0 ? v / static_cast<double>(count) : d_nan()) : v;
}

// x viewed as [out_n, count] (reduced dims trailing): one warp per output (a warp-uniform loop), lanes
// stride the contiguous row, then a fixed shuffle tree (deterministic).
template <typename T>
__global__ void k_reduce_inner(int kind, const T* x, T* y, i64 out_n, i64 count) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const i64 warp = (blockIdx.x * static_cast<i64>(blockDim.x) + threadIdx.x) / 32;
  const i64 warps = static_cast<i64>(gridDim.x) * blockDim.x / 32;
  for (i64 o = warp; o < out_n; o += warps) {
    const T* xr = x + o * count;
    double acc = red_init(kind);
    for (i64 j = lane; j < count; j += 32) acc = red_step(kind, acc, static_cast<double>(xr[j]));
    for (int off = 16; off > 0; off >>= 1) acc = red_combine(kind, acc, __shfl_down_sync(0xffffffffu, acc, off));
    if (lane == 0) y[o] = static_cast<T>(red_final(kind, acc, count));
  }
}

// x viewed as [count, out_n] (reduced dims leading): one thread per output column, rows in order
// (coalesced across the warp, deterministic).
template <typename T>
__global__ void k_reduce_outer(int kind, const T* x, T* y, i64 out_n, i64 count) {
  ANVIL_GRID_STRIDE(o, out_n) {
    double acc = red_init(kind);
    for (i64 r = 0; r < count; ++r) acc = red_step(kind, acc, static_cast<double>(x[r * out_n + o]));
    y[o] = static_cast<T>(red_final(kind, acc, count));
  }
}

template <typename T>
__global__ void k_add_bias(T* y, const T* b, i64 outer, i64 c, i64 inner) {
  ANVIL_GRID_STRIDE(i, outer * c * inner) {
    const i64 ch = (i / inner) % c;
    y[i] = static_cast<T>(static_cast<double>(y[i]) + static_cast<double>(b[ch]));
  }
}

template <typename T>
__global__ void k_pad(const T* x, T* y, i64 planes, i64 h, i64 w, i64 yh, i64 yw, i64 top, i64 left) {
  ANVIL_GRID_STRIDE(i, planes * yh * yw) {
    const i64 xw = i % yw - left, xh = (i / yw) % yh - top, pl = i / (yw * yh);
    y[i] = (xh >= 0 && xh < h && xw >= 0 && xw < w) ? x[(pl * h + xh) * w + xw] : T(0);
  }
}

template <typename T>
__global__ void k_crop(const T* y, T* x, i64 planes, i64 h, i64 w, i64 yh, i64 yw, i64 top, i64 left) {
  ANVIL_GRID_STRIDE(i, planes * h * w) {
    const i64 xw = i % w, xh = (i / w) % h, pl = i / (w * h);
    x[i] = y[(pl * yh + xh + top) * yw + xw + left];
  }
}

__device__ void pool_window(const PoolArgs& a, i64 oh, i64 ow, i64& h0, i64& h1, i64& w0, i64& w1) {
  const i64 hs = oh * a.sh - a.pt, ws = ow * a.sw - a.pl;
  h0 = hs > 0 ? hs : 0;
  h1 = hs + a.kh < a.h ? hs + a.kh : a.h;
  w0 = ws > 0 ? ws : 0;
  w1 = ws + a.kw < a.w ? ws + a.kw : a.w;
}

__device__ double avg_div(const PoolArgs& a, i64 h0, i64 h1, i64 w0, i64 w1) {
  if (a.count_include_pad) return static_cast<double>(a.kh * a.kw);
  const i64 hh = h1 - h0 > 0 ? h1 - h0 : 0, ww = w1 - w0 > 0 ? w1 - w0 : 0;
  return static_cast<double>(hh * ww);
}

template <typename T>
__global__ void k_pool_fwd(const T* x, T* y, i64* idx, PoolArgs a) {
  ANVIL_GRID_STRIDE(o, a.planes * a.oh * a.ow) {
    const i64 ow = o % a.ow, oh = (o / a.ow) % a.oh, pl = o / (a.ow * a.oh);
    const T* xp = x + pl * a.h * a.w;
    i64 h0, h1, w0, w1;
    pool_window(a, oh, ow, h0, h1, w0, w1);
    if (a.max) {
      double best = -d_inf();
      i64 arg = -1;
      for (i64 ih = h0; ih < h1; ++ih)
        for (i64 iw = w0; iw < w1; ++iw) {
          const double v = static_cast<double>(xp[ih * a.w + iw]);
          if (arg < 0 || v > best || (isnan(v) && !isnan(best))) {
            best = v;
            arg = ih * a.w + iw;
          }
        }
      y[o] = static_cast<T>(best);
      idx[o] = arg;
    } else {
      double sum = 0.0;
      for (i64 ih = h0; ih < h1; ++ih)
        for (i64 iw = w0; iw < w1; ++iw) sum += static_cast<double>(xp[ih * a.w + iw]);
      const double div = avg_div(a, h0, h1, w0, w1);
      y[o] = static_cast<T>(div > 0 ? sum / div : 0.0);
    }
  }
}

// Gather form: each input cell sums the outputs whose window covers it, in the reference's (oh, ow) order.
template <typename T>
__global__ void k_pool_bwd(const T* dy, const i64* idx, T* dx, PoolArgs a) {
  ANVIL_GRID_STRIDE(i, a.planes * a.h * a.w) {
    const i64 iw = i % a.w, ih = (i / a.w) % a.h, pl = i / (a.w * a.h);
    // Output rows whose window [oh*sh - pt, +kh) contains ih.
    i64 oh_lo = (ih + a.pt - a.kh + 1 + a.sh - 1);
    oh_lo = oh_lo > 0 ? oh_lo / a.sh : 0;
    i64 oh_hi = (ih + a.pt) / a.sh;
    if (oh_hi > a.oh - 1) oh_hi = a.oh - 1;
    i64 ow_lo = (iw + a.pl - a.kw + 1 + a.sw - 1);
    ow_lo = ow_lo > 0 ? ow_lo / a.sw : 0;
    i64 ow_hi = (iw + a.pl) / a.sw;
    if (ow_hi > a.ow - 1) ow_hi = a.ow - 1;
    double acc = 0.0;
    const i64 cell = ih * a.w + iw;
    for (i64 oh = oh_lo; oh <= oh_hi; ++oh)
      for (i64 ow = ow_lo; ow <= ow_hi; ++ow) {
        const i64 o = (pl * a.oh + oh) * a.ow + ow;
        const double d = static_cast<double>(dy[o]);
        if (a.max) {
          if (idx[o] == cell) acc += d;
        } else {
          i64 h0, h1, w0, w1;
          pool_window(a, oh, ow, h0, h1, w0, w1);
          const double div = avg_div(a, h0, h1, w0, w1);
          if (div > 0) acc += d / div;
        }
      }
    dx[i] = static_cast<T>(acc);
  }
}

// Sum over the block (blockDim.x a power of two, sh sized blockDim.x); every thread gets the result.
__device__ double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();
  return r;
}

// Batch norm, x [N, C, HW], as a deterministic two-stage reduction. Each channel's N x HW values are
// split into plan.kn x plan.kh chunks (a range of rows n times a range of hw); a block of kThreads
// threads, laid out (tx over hw, ty over n), reduces one (channel, chunk) pair into a partial in double
// without any per-element division. A second kernel folds a channel's partials in chunk order (no
// atomics, so results are repeatable), and an elementwise kernel writes y (or dx) plane by plane.
// The plan depends only on the shape, so the summation order is fixed for a given shape.

// Sum over the block of kThreads threads (any 2-D layout); every thread gets the result. Block-uniform.
__device__ double block_sum_2d(double v, double* sh) {
  const int t = threadIdx.y * blockDim.x + threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();
  return r;
}

__device__ i64 min_i64(i64 a, i64 b) { return a < b ? a : b; }

// Chunk `chunk` of a channel covers rows [n0, n1) and hw positions [h0, h1), all non-empty.
struct BnChunk {
  i64 n0, n1, h0, h1;
};
__device__ BnChunk bn_chunk(const BnPlan& p, i64 chunk, i64 n, i64 hw) {
  const i64 a = chunk / p.kh, b = chunk - a * p.kh;
  BnChunk r;
  r.n0 = a * p.rows;
  r.n1 = min_i64(n, r.n0 + p.rows);
  r.h0 = b * p.seg;
  r.h1 = min_i64(hw, r.h0 + p.seg);
  return r;
}

// Stage 1 of the forward statistics: per (channel, chunk) the count, the chunk mean and the chunk's sum
// of squared deviations from it (two passes over the chunk, the second mostly from cache).
// part[(ch * chunks + chunk) * 4 + {0, 1, 2, 3}] = {count, sum, mean, M2}.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_bn_stats(const T* x, double* part, i64 n, i64 c, i64 hw, BnPlan p) {
  __shared__ double sh[kThreads];
  const i64 chunks = p.kn * p.kh;
  const i64 chunk = blockIdx.y;
  const BnChunk k = bn_chunk(p, chunk, n, hw);
  const double cnt = static_cast<double>((k.n1 - k.n0) * (k.h1 - k.h0));
  for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double s = 0.0;
    for (i64 ni = k.n0 + threadIdx.y; ni < k.n1; ni += blockDim.y) {
      const T* xp = x + (ni * c + ch) * hw;
      for (i64 i = k.h0 + threadIdx.x; i < k.h1; i += blockDim.x) s += static_cast<double>(xp[i]);
    }
    const double tot = block_sum_2d(s, sh);
    const double cm = cnt > 0 ? tot / cnt : 0.0;
    double q = 0.0;
    for (i64 ni = k.n0 + threadIdx.y; ni < k.n1; ni += blockDim.y) {
      const T* xp = x + (ni * c + ch) * hw;
      for (i64 i = k.h0 + threadIdx.x; i < k.h1; i += blockDim.x) {
        const double d = static_cast<double>(xp[i]) - cm;
        q += d * d;
      }
    }
    const double m2 = block_sum_2d(q, sh);
    if (threadIdx.x == 0 && threadIdx.y == 0) {
      double* o = part + (ch * chunks + chunk) * 4;
      o[0] = cnt;
      o[1] = tot;
      o[2] = cm;
      o[3] = m2;
    }
  }
}

// Stage 2: one thread per channel folds its partials in chunk order (sum, then the exact M2 combination),
// giving the mean and the biased variance; stat[2 ch + {0, 1}] = {mean, 1 / sqrt(var + eps)} in double.
template <typename T>
__global__ void k_bn_stats_combine(const double* part, i64 c, i64 chunks, double eps, T* mean, T* var, double* stat) {
  ANVIL_GRID_STRIDE(ch, c) {
    // mean = (sum of the chunk sums) / count, as the reference's sum / m (so an inf gives inf, not
    // inf - inf); then M2 = sum over chunks of M2_k + cnt_k * (mean_k - mean)^2 (exact), in chunk order.
    double na = 0.0, total = 0.0;
    for (i64 k = 0; k < chunks; ++k) {
      const double* o = part + (ch * chunks + k) * 4;
      if (!(o[0] > 0)) continue;
      na += o[0];
      total += o[1];
    }
    const double ma = na > 0 ? total / na : d_nan();
    double m2 = 0.0;
    for (i64 k = 0; k < chunks; ++k) {
      const double* o = part + (ch * chunks + k) * 4;
      if (!(o[0] > 0)) continue;
      const double d = o[2] - ma;
      m2 += o[3] + o[0] * d * d;
    }
    const double vr = na > 0 ? m2 / na : d_nan();
    mean[ch] = static_cast<T>(ma);
    var[ch] = static_cast<T>(vr);
    stat[2 * ch] = ma;
    stat[2 * ch + 1] = 1.0 / sqrt(vr + eps);
  }
}

// y = gamma * (x - mean) * inv + beta, one (n, ch) plane per thread row (the channel computed per plane).
template <typename T>
__global__ void __launch_bounds__(kThreads) k_bn_apply(const T* x, const T* gamma, const T* beta, const double* stat,
                                                       T* y, i64 planes, i64 c, i64 hw) {
  for (i64 pl = blockIdx.x * static_cast<i64>(blockDim.y) + threadIdx.y; pl < planes;
       pl += static_cast<i64>(gridDim.x) * blockDim.y) {
    const i64 ch = pl % c;
    const double mu = stat[2 * ch], inv = stat[2 * ch + 1];
    const double gm = static_cast<double>(gamma[ch]), bt = static_cast<double>(beta[ch]);
    const T* xp = x + pl * hw;
    T* yp = y + pl * hw;
    for (i64 i = threadIdx.x; i < hw; i += blockDim.x)
      yp[i] = static_cast<T>(gm * (static_cast<double>(xp[i]) - mu) * inv + bt);
  }
}

template <typename T>
__global__ void k_bn_infer(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, T* y, i64 n, i64 c,
                           i64 hw, double eps) {
  ANVIL_GRID_STRIDE(k, n * c * hw) {
    const i64 ch = (k / hw) % c;
    const double inv = 1.0 / sqrt(static_cast<double>(var[ch]) + eps);
    y[k] = static_cast<T>(static_cast<double>(gamma[ch]) * (static_cast<double>(x[k]) - static_cast<double>(mean[ch])) *
                              inv +
                          static_cast<double>(beta[ch]));
  }
}

// Backward stage 1: per (channel, chunk) the partial sums of dy and dy * xhat;
// part[(ch * chunks + chunk) * 2 + {0, 1}].
template <typename T>
__global__ void __launch_bounds__(kThreads) k_bn_bwd_sums(const T* dy, const T* x, const T* mean, const T* var,
                                                          double* part, i64 n, i64 c, i64 hw, double eps, BnPlan p) {
  __shared__ double sh[kThreads];
  const i64 chunks = p.kn * p.kh;
  const i64 chunk = blockIdx.y;
  const BnChunk k = bn_chunk(p, chunk, n, hw);
  for (i64 ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mu = static_cast<double>(mean[ch]);
    const double inv = 1.0 / sqrt(static_cast<double>(var[ch]) + eps);
    double sdy = 0.0, sdyx = 0.0;
    for (i64 ni = k.n0 + threadIdx.y; ni < k.n1; ni += blockDim.y) {
      const i64 base = (ni * c + ch) * hw;
      for (i64 i = k.h0 + threadIdx.x; i < k.h1; i += blockDim.x) {
        const double d = static_cast<double>(dy[base + i]);
        sdy += d;
        sdyx += d * (static_cast<double>(x[base + i]) - mu) * inv;
      }
    }
    sdy = block_sum_2d(sdy, sh);
    sdyx = block_sum_2d(sdyx, sh);
    if (threadIdx.x == 0 && threadIdx.y == 0) {
      double* o = part + (ch * chunks + chunk) * 2;
      o[0] = sdy;
      o[1] = sdyx;
    }
  }
}

// Backward stage 2: per channel, the partials summed in chunk order; dgamma = sum dy * xhat,
// dbeta = sum dy; stat[2 ch + {0, 1}] = {mean(dy), mean(dy * xhat)}.
template <typename T>
__global__ void k_bn_bwd_combine(const double* part, i64 c, i64 chunks, i64 m, T* dgamma, T* dbeta, double* stat) {
  ANVIL_GRID_STRIDE(ch, c) {
    double sdy = 0.0, sdyx = 0.0;
    for (i64 k = 0; k < chunks; ++k) {
      sdy += part[(ch * chunks + k) * 2];
      sdyx += part[(ch * chunks + k) * 2 + 1];
    }
    dgamma[ch] = static_cast<T>(sdyx);
    dbeta[ch] = static_cast<T>(sdy);
    stat[2 * ch] = sdy / static_cast<double>(m);
    stat[2 * ch + 1] = sdyx / static_cast<double>(m);
  }
}

// dx = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat)), plane by plane as k_bn_apply.
template <typename T>
__global__ void __launch_bounds__(kThreads) k_bn_bwd_apply(const T* dy, const T* x, const T* gamma, const T* mean,
                                                           const T* var, const double* stat, T* dx, i64 planes, i64 c,
                                                           i64 hw, double eps) {
  for (i64 pl = blockIdx.x * static_cast<i64>(blockDim.y) + threadIdx.y; pl < planes;
       pl += static_cast<i64>(gridDim.x) * blockDim.y) {
    const i64 ch = pl % c;
    const double mu = static_cast<double>(mean[ch]);
    const double inv = 1.0 / sqrt(static_cast<double>(var[ch]) + eps);
    const double gm = static_cast<double>(gamma[ch]);
    const double md = stat[2 * ch], mdx = stat[2 * ch + 1];
    const i64 base = pl * hw;
    for (i64 i = threadIdx.x; i < hw; i += blockDim.x) {
      const double xhat = (static_cast<double>(x[base + i]) - mu) * inv;
      dx[base + i] = static_cast<T>(gm * inv * (static_cast<double>(dy[base + i]) - md - xhat * mdx));
    }
  }
}

// Layer norm: x viewed as [m, d]; blocks loop over rows (row = blockIdx.x, += gridDim.x, a block-uniform
// loop, so every block_sum is reached by the whole block); two-pass double statistics, as batch norm.
template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_ln_fwd(const T* x, const T* gamma, const T* beta, T* y, T* mean,
                                                       T* var, i64 m, i64 d, double eps) {
  __shared__ double sh[kBnThreads];
  for (i64 row = blockIdx.x; row < m; row += gridDim.x) {
    const T* xr = x + row * d;
    T* yr = y + row * d;
    double s = 0.0;
    for (i64 j = threadIdx.x; j < d; j += blockDim.x) s += static_cast<double>(xr[j]);
    const double mu = block_sum(s, sh) / static_cast<double>(d);
    double q = 0.0;
    for (i64 j = threadIdx.x; j < d; j += blockDim.x) {
      const double dv = static_cast<double>(xr[j]) - mu;
      q += dv * dv;
    }
    const double vr = block_sum(q, sh) / static_cast<double>(d);
    const double inv = 1.0 / sqrt(vr + eps);
    for (i64 j = threadIdx.x; j < d; j += blockDim.x)
      yr[j] = static_cast<T>((static_cast<double>(xr[j]) - mu) * inv * static_cast<double>(gamma[j]) +
                             static_cast<double>(beta[j]));
    if (threadIdx.x == 0) {
      mean[row] = static_cast<T>(mu);
      var[row] = static_cast<T>(vr);
    }
  }
}

// dx of layer norm, blocks looping over rows as k_ln_fwd: with xhat = (x - mu) * inv and g = dy * gamma,
// dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_ln_bwd_dx(const T* dy, const T* x, const T* gamma, const T* mean,
                                                          const T* var, T* dx, i64 m, i64 d, double eps) {
  __shared__ double sh[kBnThreads];
  for (i64 row = blockIdx.x; row < m; row += gridDim.x) {
    const T* xr = x + row * d;
    const T* dyr = dy + row * d;
    T* dxr = dx + row * d;
    const double mu = static_cast<double>(mean[row]);
    const double inv = 1.0 / sqrt(static_cast<double>(var[row]) + eps);
    double sg = 0.0, sgx = 0.0;
    for (i64 j = threadIdx.x; j < d; j += blockDim.x) {
      const double g = static_cast<double>(dyr[j]) * static_cast<double>(gamma[j]);
      sg += g;
      sgx += g * (static_cast<double>(xr[j]) - mu) * inv;
    }
    const double mg = block_sum(sg, sh) / static_cast<double>(d);
    const double mgx = block_sum(sgx, sh) / static_cast<double>(d);
    for (i64 j = threadIdx.x; j < d; j += blockDim.x) {
      const double xhat = (static_cast<double>(xr[j]) - mu) * inv;
      const double g = static_cast<double>(dyr[j]) * static_cast<double>(gamma[j]);
      dxr[j] = static_cast<T>(inv * (g - mg - xhat * mgx));
    }
  }
}

// dgamma / dbeta of layer norm: one thread per feature, rows summed in order (deterministic).
template <typename T>
__global__ void k_ln_bwd_params(const T* dy, const T* x, const T* mean, const T* var, T* dgamma, T* dbeta, i64 m,
                                i64 d, double eps) {
  ANVIL_GRID_STRIDE(j, d) {
    double dg = 0.0, db = 0.0;
    for (i64 row = 0; row < m; ++row) {
      const double inv = 1.0 / sqrt(static_cast<double>(var[row]) + eps);
      const double g = static_cast<double>(dy[row * d + j]);
      dg += g * (static_cast<double>(x[row * d + j]) - static_cast<double>(mean[row])) * inv;
      db += g;
    }
    dgamma[j] = static_cast<T>(dg);
    dbeta[j] = static_cast<T>(db);
  }
}

// Embedding gather: y[i, k] = table[idx[i], k] (indices checked on the host before the launch).
template <typename T, typename L>
__global__ void k_embed_fwd(const T* table, const L* idx, T* y, i64 n, i64 e) {
  ANVIL_GRID_STRIDE(t, n * e) {
    const i64 i = t / e, k = t % e;
    y[t] = table[static_cast<i64>(idx[i]) * e + k];
  }
}

// Embedding scatter-add without atomics: row v of dtable sums dy over the positions order[start[v] ..
// start[v+1]) (positions of v in ascending order, built on the host), so the result is deterministic.
template <typename T>
__global__ void k_embed_bwd(const T* dy, const i64* order, const i64* start, T* dtable, i64 v, i64 e) {
  ANVIL_GRID_STRIDE(t, v * e) {
    const i64 row = t / e, k = t % e;
    double acc = 0.0;
    for (i64 p = start[row]; p < start[row + 1]; ++p) acc += static_cast<double>(dy[order[p] * e + k]);
    dtable[t] = static_cast<T>(acc);
  }
}

template <typename T, typename L>
__global__ void k_ce_fwd(const T* logits, const L* labels, T* loss, T* prob, i64 n, i64 c, i64* bad) {
  ANVIL_GRID_STRIDE(i, n) {
    const i64 label = static_cast<i64>(labels[i]);
    const T* row = logits + i * c;
    if (label < 0 || label >= c) {
      atomicMin(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(i));
      loss[i] = static_cast<T>(d_nan());
      for (i64 j = 0; j < c; ++j) prob[i * c + j] = static_cast<T>(d_nan());
      continue;
    }
    double mx = -d_inf();
    for (i64 j = 0; j < c; ++j) mx = fmax(mx, static_cast<double>(row[j]));
    double sum = 0.0;
    for (i64 j = 0; j < c; ++j) sum += exp(static_cast<double>(row[j]) - mx);
    for (i64 j = 0; j < c; ++j) prob[i * c + j] = static_cast<T>(exp(static_cast<double>(row[j]) - mx) / sum);
    loss[i] = static_cast<T>(log(sum) + mx - static_cast<double>(row[label]));
  }
}

// Label check of the backward pass, one thread per row (so it runs also when C == 0 and there is no
// element to write): the smallest bad row index goes to *bad.
template <typename L>
__global__ void k_ce_check_labels(const L* labels, i64 n, i64 c, i64* bad) {
  ANVIL_GRID_STRIDE(i, n) {
    const i64 label = static_cast<i64>(labels[i]);
    if (label < 0 || label >= c)
      atomicMin(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(i));
  }
}

// dx of the fused loss, one thread per element; rows with a bad label get NaN (reported by k_ce_check_labels).
template <typename T, typename L>
__global__ void k_ce_bwd(const T* dloss, const T* prob, const L* labels, T* dx, i64 n, i64 c) {
  ANVIL_GRID_STRIDE(k, n * c) {
    const i64 i = k / c, j = k % c;
    const i64 label = static_cast<i64>(labels[i]);
    if (label < 0 || label >= c) {
      dx[k] = static_cast<T>(d_nan());
      continue;
    }
    dx[k] = static_cast<T>(static_cast<double>(dloss[i]) * (static_cast<double>(prob[k]) - (j == label ? 1.0 : 0.0)));
  }
}

template <typename T>
__global__ void k_axpy(T* d, const T* s, double alpha, i64 n) {
  ANVIL_GRID_STRIDE(i, n) d[i] = static_cast<T>(static_cast<double>(d[i]) + alpha * static_cast<double>(s[i]));
}

template <typename T>
__global__ void k_sgd(T* p, const T* g, double lr, double wd, i64 n) {
  ANVIL_GRID_STRIDE(i, n) {
    const double pv = static_cast<double>(p[i]);
    const double gv = static_cast<double>(g[i]) + wd * pv;
    p[i] = static_cast<T>(pv - lr * gv);
  }
}

template <typename T>
__global__ void k_momentum(T* p, const T* g, T* mom, double lr, double mu, double wd, bool nesterov, i64 n) {
  ANVIL_GRID_STRIDE(i, n) {
    const double pv = static_cast<double>(p[i]);
    const double gv = static_cast<double>(g[i]) + wd * pv;
    const double m = mu * static_cast<double>(mom[i]) + gv;
    mom[i] = static_cast<T>(m);
    p[i] = static_cast<T>(nesterov ? pv - lr * (gv + mu * m) : pv - lr * m);
  }
}

template <typename T>
__global__ void k_adam(T* p, const T* g, T* m, T* v, double lr, double step, double b1, double b2, double eps,
                       double wd, bool decoupled, i64 n) {
  ANVIL_GRID_STRIDE(i, n) {
    const double pv = static_cast<double>(p[i]);
    const double gv = decoupled ? static_cast<double>(g[i]) : static_cast<double>(g[i]) + wd * pv;
    const double mv = b1 * static_cast<double>(m[i]) + (1.0 - b1) * gv;
    const double vv = b2 * static_cast<double>(v[i]) + (1.0 - b2) * gv * gv;
    m[i] = static_cast<T>(mv);
    v[i] = static_cast<T>(vv);
    const double upd = mv / (sqrt(vv) + eps);
    p[i] = static_cast<T>(decoupled ? pv - lr * (upd + wd * pv) : pv - step * upd);
  }
}

}  // namespace

template <typename T>
void eltwise_forward(int kind, const T* x, T* y, i64 n, double alpha, double beta, cudaStream_t s) {
  if (n == 0) return;
  k_eltwise_fwd<T><<<grid_for(n), kThreads, 0, s>>>(kind, x, y, n, alpha, beta);
  check_launch();
}

template <typename T>
void eltwise_backward(int kind, const T* dy, const T* x, const T* y, T* dx, i64 n, double alpha, double beta,
                      cudaStream_t s) {
  if (n == 0) return;
  k_eltwise_bwd<T><<<grid_for(n), kThreads, 0, s>>>(kind, dy, x, y, dx, n, alpha, beta);
  check_launch();
}

namespace {
// If an operand with strides st over dims.d reads element (i % k) for output position i, returns k
// (k == n: the operand has the output's shape; k == 1: a scalar); otherwise -1. That holds when the
// operand is contiguous over a trailing run of output dims and broadcast (stride 0) over the rest;
// dims of size 1 never contribute to an offset and are skipped.
i64 flat_modulus(const Dims& dims, const i64* st) {
  i64 contig = 1, ext = 1;
  bool tail = true;
  for (int d = dims.rank - 1; d >= 0; --d) {
    if (dims.d[d] == 1) continue;
    if (tail && st[d] == contig) {
      ext *= dims.d[d];
    } else if (st[d] == 0) {
      tail = false;
    } else {
      return -1;
    }
    contig *= dims.d[d];
  }
  return ext;
}
}  // namespace

template <typename T>
void binary(int kind, const T* a, const T* b, T* c, const Dims& dims, i64 n, cudaStream_t s) {
  if (n == 0) return;
  const i64 am = flat_modulus(dims, dims.s0), bm = flat_modulus(dims, dims.s1);
  if (am > 0 && bm > 0)
    k_binary_flat<T><<<grid_for(n), kThreads, 0, s>>>(kind, a, b, c, n, am, bm);
  else
    k_binary<T><<<grid_for(n), kThreads, 0, s>>>(kind, a, b, c, dims, n);
  check_launch();
}

namespace {
// Whether the dims of size > 1 are all kept before all reduced ([out_n, count], inner) and/or all
// reduced before all kept ([count, out_n], outer); x is contiguous, so those are plain 2-D views.
void reduce_layout(const Dims& out, const Dims& red, bool& inner, bool& outer) {
  bool seen_kept = false, seen_red = false;
  inner = outer = true;
  for (int d = 0; d < out.rank; ++d) {
    if (out.d[d] > 1) {
      if (seen_red) inner = false;
      seen_kept = true;
    }
    if (red.d[d] > 1) {
      if (seen_kept) outer = false;
      seen_red = true;
    }
  }
}
}  // namespace

template <typename T>
void reduce(int kind, const T* x, T* y, i64 out_n, i64 count, const Dims& out, const Dims& red, cudaStream_t s) {
  if (out_n == 0) return;
  bool inner = false, outer = false;
  if (count > 0 && out_n > 1) reduce_layout(out, red, inner, outer);
  // The fast paths walk `count` elements per thread (outer) or per warp (inner): take them only when that
  // is short or when there are outputs enough to fill the GPU; otherwise a block per output is faster.
  constexpr i64 kShortWalk = 4096, kManyOutputs = 132LL * 256;
  if (outer && (count == 1 || (out_n >= 256 && (count <= kShortWalk || out_n >= kManyOutputs)))) {
    k_reduce_outer<T><<<grid_for(out_n), kThreads, 0, s>>>(kind, x, y, out_n, count);
  } else if (inner && out_n >= 32 && (count <= kShortWalk || out_n >= kShortWalk)) {
    k_reduce_inner<T><<<grid_for(out_n * 32), kThreads, 0, s>>>(kind, x, y, out_n, count);
  } else {
    const i64 blocks = out_n < 65535LL * 32 ? out_n : 65535LL * 32;
    k_reduce<T><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(kind, x, y, out_n, count, out, red);
  }
  check_launch();
}

template <typename T>
void add_channel_bias(T* y, const T* b, i64 outer, i64 c, i64 inner, cudaStream_t s) {
  const i64 n = outer * c * inner;
  if (n == 0) return;
  k_add_bias<T><<<grid_for(n), kThreads, 0, s>>>(y, b, outer, c, inner);
  check_launch();
}

template <typename T>
void pad_planes(const T* x, T* y, i64 planes, i64 h, i64 w, i64 yh, i64 yw, i64 top, i64 left, cudaStream_t s) {
  const i64 n = planes * yh * yw;
  if (n == 0) return;
  k_pad<T><<<grid_for(n), kThreads, 0, s>>>(x, y, planes, h, w, yh, yw, top, left);
  check_launch();
}

template <typename T>
void crop_planes(const T* y, T* x, i64 planes, i64 h, i64 w, i64 yh, i64 yw, i64 top, i64 left, cudaStream_t s) {
  const i64 n = planes * h * w;
  if (n == 0) return;
  k_crop<T><<<grid_for(n), kThreads, 0, s>>>(y, x, planes, h, w, yh, yw, top, left);
  check_launch();
}

template <typename T>
void pool_forward(const T* x, T* y, i64* idx, const PoolArgs& a, cudaStream_t s) {
  const i64 n = a.planes * a.oh * a.ow;
  if (n == 0) return;
  k_pool_fwd<T><<<grid_for(n), kThreads, 0, s>>>(x, y, idx, a);
  check_launch();
}

template <typename T>
void pool_backward(const T* dy, const i64* idx, T* dx, const PoolArgs& a, cudaStream_t s) {
  const i64 n = a.planes * a.h * a.w;
  if (n == 0) return;
  k_pool_bwd<T><<<grid_for(n), kThreads, 0, s>>>(dy, idx, dx, a);
  check_launch();
}

i64 bn_workspace_doubles(i64 n, i64 c, i64 hw) {
  if (n <= 0 || c <= 0 || hw <= 0) return 0;
  const BnPlan p = bn_plan(n, c, hw);
  return c * (4 * p.kn * p.kh + 2);
}

namespace {
// Grids of the batch norm kernels: stage 1 (channels x chunks; channels beyond the grid looped over),
// and the plane-wise elementwise pass.
dim3 bn_stage1_grid(const BnPlan& p, i64 c) {
  return dim3(static_cast<unsigned>(c < kMaxGridY ? c : kMaxGridY), static_cast<unsigned>(p.kn * p.kh));
}
unsigned bn_plane_grid(const BnPlan& p, i64 planes) {
  i64 b = ceil_div(planes, p.ty);
  if (b > 65535LL * 32) b = 65535LL * 32;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}
}  // namespace

template <typename T>
void bn_forward_training(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, i64 n, i64 c, i64 hw,
                         double eps, double* ws, cudaStream_t s) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const BnPlan p = bn_plan(n, c, hw);
  const i64 chunks = p.kn * p.kh;
  double* part = ws;                    // [c, chunks, 4]
  double* stat = ws + c * chunks * 4;   // [c, 2]
  const dim3 block(static_cast<unsigned>(p.tx), static_cast<unsigned>(p.ty));
  k_bn_stats<T><<<bn_stage1_grid(p, c), block, 0, s>>>(x, part, n, c, hw, p);
  check_launch();
  k_bn_stats_combine<T><<<grid_for(c), kThreads, 0, s>>>(part, c, chunks, eps, mean, var, stat);
  check_launch();
  k_bn_apply<T><<<bn_plane_grid(p, n * c), block, 0, s>>>(x, gamma, beta, stat, y, n * c, c, hw);
  check_launch();
}

template <typename T>
void bn_forward_inference(const T* x, const T* gamma, const T* beta, const T* mean, const T* var, T* y, i64 n, i64 c,
                          i64 hw, double eps, cudaStream_t s) {
  const i64 t = n * c * hw;
  if (t == 0) return;
  k_bn_infer<T><<<grid_for(t), kThreads, 0, s>>>(x, gamma, beta, mean, var, y, n, c, hw, eps);
  check_launch();
}

template <typename T>
void bn_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma, T* dbeta,
                 i64 n, i64 c, i64 hw, double eps, double* ws, cudaStream_t s) {
  if (n <= 0 || c <= 0 || hw <= 0) return;
  const BnPlan p = bn_plan(n, c, hw);
  const i64 chunks = p.kn * p.kh;
  double* part = ws;                    // [c, chunks, 2]
  double* stat = ws + c * chunks * 4;   // [c, 2] (the forward's layout; the workspace fits both)
  const dim3 block(static_cast<unsigned>(p.tx), static_cast<unsigned>(p.ty));
  k_bn_bwd_sums<T><<<bn_stage1_grid(p, c), block, 0, s>>>(dy, x, mean, var, part, n, c, hw, eps, p);
  check_launch();
  k_bn_bwd_combine<T><<<grid_for(c), kThreads, 0, s>>>(part, c, chunks, n * hw, dgamma, dbeta, stat);
  check_launch();
  k_bn_bwd_apply<T><<<bn_plane_grid(p, n * c), block, 0, s>>>(dy, x, gamma, mean, var, stat, dx, n * c, c, hw, eps);
  check_launch();
}

namespace {
// Blocks for a kernel whose blocks loop over `rows` rows (grid-stride over blockIdx.x).
unsigned row_grid(i64 rows) {
  const i64 cap = 65535LL * 32;
  return static_cast<unsigned>(rows < 1 ? 1 : (rows < cap ? rows : cap));
}
}  // namespace

template <typename T>
void ln_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, i64 m, i64 d, double eps,
                cudaStream_t s) {
  if (m == 0) return;
  k_ln_fwd<T><<<row_grid(m), kBnThreads, 0, s>>>(x, gamma, beta, y, mean, var, m, d, eps);
  check_launch();
}

template <typename T>
void ln_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma, T* dbeta,
                 i64 m, i64 d, double eps, cudaStream_t s) {
  if (d == 0) return;
  if (m > 0) {
    k_ln_bwd_dx<T><<<row_grid(m), kBnThreads, 0, s>>>(dy, x, gamma, mean, var, dx, m, d, eps);
    check_launch();
  }
  // Also with m == 0: dgamma/dbeta are then sums over no rows, i.e. zeros (as the reference).
  k_ln_bwd_params<T><<<grid_for(d), kThreads, 0, s>>>(dy, x, mean, var, dgamma, dbeta, m, d, eps);
  check_launch();
}

template <typename T, typename L>
void embedding_forward(const T* table, const L* idx, T* y, i64 n, i64 e, cudaStream_t s) {
  if (n * e == 0) return;
  k_embed_fwd<T, L><<<grid_for(n * e), kThreads, 0, s>>>(table, idx, y, n, e);
  check_launch();
}

template <typename T>
void embedding_backward(const T* dy, const i64* order, const i64* start, T* dtable, i64 v, i64 e, cudaStream_t s) {
  if (v * e == 0) return;
  k_embed_bwd<T><<<grid_for(v * e), kThreads, 0, s>>>(dy, order, start, dtable, v, e);
  check_launch();
}

template <typename T, typename L>
void softmax_ce_forward(const T* logits, const L* labels, T* loss, T* prob, i64 n, i64 c, i64* bad, cudaStream_t s) {
  if (n == 0) return;
  k_ce_fwd<T, L><<<grid_for(n), kThreads, 0, s>>>(logits, labels, loss, prob, n, c, bad);
  check_launch();
}

template <typename T, typename L>
void softmax_ce_backward(const T* dloss, const T* prob, const L* labels, T* dx, i64 n, i64 c, i64* bad,
                         cudaStream_t s) {
  if (n == 0) return;
  k_ce_check_labels<L><<<grid_for(n), kThreads, 0, s>>>(labels, n, c, bad);
  check_launch();
  if (c == 0) return;
  k_ce_bwd<T, L><<<grid_for(n * c), kThreads, 0, s>>>(dloss, prob, labels, dx, n, c);
  check_launch();
}

namespace {
__global__ void k_fill_i64(i64* p, i64 v, i64 n) {
  ANVIL_GRID_STRIDE(i, n) p[i] = v;
}
}  // namespace

void fill_i64(i64* p, i64 value, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_fill_i64<<<grid_for(n), kThreads, 0, s>>>(p, value, n);
  check_launch();
}

template <typename T>
void axpy(T* dst, const T* src, double alpha, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_axpy<T><<<grid_for(n), kThreads, 0, s>>>(dst, src, alpha, n);
  check_launch();
}

template <typename T>
void sgd_update(T* p, const T* g, double lr, double wd, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_sgd<T><<<grid_for(n), kThreads, 0, s>>>(p, g, lr, wd, n);
  check_launch();
}

template <typename T>
void momentum_update(T* p, const T* g, T* m, double lr, double momentum, double wd, bool nesterov, i64 n,
                     cudaStream_t s) {
  if (n == 0) return;
  k_momentum<T><<<grid_for(n), kThreads, 0, s>>>(p, g, m, lr, momentum, wd, nesterov, n);
  check_launch();
}

template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, double lr, double step, double b1, double b2, double eps, double wd,
                 bool decoupled, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_adam<T><<<grid_for(n), kThreads, 0, s>>>(p, g, m, v, lr, step, b1, b2, eps, wd, decoupled, n);
  check_launch();
}

#define ANVIL_INSTANTIATE(T)                                                                                        \
  template void eltwise_forward<T>(int, const T*, T*, i64, double, double, cudaStream_t);                          \
  template void eltwise_backward<T>(int, const T*, const T*, const T*, T*, i64, double, double, cudaStream_t);     \
  template void binary<T>(int, const T*, const T*, T*, const Dims&, i64, cudaStream_t);                            \
  template void reduce<T>(int, const T*, T*, i64, i64, const Dims&, const Dims&, cudaStream_t);                    \
  template void add_channel_bias<T>(T*, const T*, i64, i64, i64, cudaStream_t);                                    \
  template void pad_planes<T>(const T*, T*, i64, i64, i64, i64, i64, i64, i64, cudaStream_t);                     \
  template void crop_planes<T>(const T*, T*, i64, i64, i64, i64, i64, i64, i64, cudaStream_t);                    \
  template void pool_forward<T>(const T*, T*, i64*, const PoolArgs&, cudaStream_t);                                \
  template void pool_backward<T>(const T*, const i64*, T*, const PoolArgs&, cudaStream_t);                         \
  template void bn_forward_training<T>(const T*, const T*, const T*, T*, T*, T*, i64, i64, i64, double, double*,   \
                                       cudaStream_t);                                                              \
  template void bn_forward_inference<T>(const T*, const T*, const T*, const T*, const T*, T*, i64, i64, i64,       \
                                        double, cudaStream_t);                                                     \
  template void bn_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, i64, i64, i64, double, \
                               double*, cudaStream_t);                                                                      \
  template void softmax_ce_forward<T, std::int32_t>(const T*, const std::int32_t*, T*, T*, i64, i64, i64*,         \
                                                    cudaStream_t);                                                 \
  template void softmax_ce_forward<T, std::int64_t>(const T*, const std::int64_t*, T*, T*, i64, i64, i64*,         \
                                                    cudaStream_t);                                                 \
  template void softmax_ce_backward<T, std::int32_t>(const T*, const T*, const std::int32_t*, T*, i64, i64, i64*,  \
                                                     cudaStream_t);                                                \
  template void softmax_ce_backward<T, std::int64_t>(const T*, const T*, const std::int64_t*, T*, i64, i64, i64*,  \
                                                     cudaStream_t);                                                \
  template void ln_forward<T>(const T*, const T*, const T*, T*, T*, T*, i64, i64, double, cudaStream_t);           \
  template void ln_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, i64, i64, double,     \
                               cudaStream_t);                                                                      \
  template void embedding_forward<T, std::int32_t>(const T*, const std::int32_t*, T*, i64, i64, cudaStream_t);    \
  template void embedding_forward<T, std::int64_t>(const T*, const std::int64_t*, T*, i64, i64, cudaStream_t);    \
  template void embedding_backward<T>(const T*, const i64*, const i64*, T*, i64, i64, cudaStream_t);              \
  template void axpy<T>(T*, const T*, double, i64, cudaStream_t);                                                  \
  template void sgd_update<T>(T*, const T*, double, double, i64, cudaStream_t);                                    \
  template void momentum_update<T>(T*, const T*, T*, double, double, double, bool, i64, cudaStream_t);             \
  template void adam_update<T>(T*, const T*, T*, T*, double, double, double, double, double, double, bool, i64,    \
                               cudaStream_t);

ANVIL_INSTANTIATE(float)
ANVIL_INSTANTIATE(double)

}  // namespace anvil::cuda::kernels
