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
constexpr int kBnThreads = 1024;  // batch norm: one block per channel, so make each block wide

unsigned grid_for(i64 n) {
  i64 b = (n + kThreads - 1) / kThreads;
  if (b > 65535LL * 32) b = 65535LL * 32;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b < 1 ? 1 : b);
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

template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_bn_train(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, i64 n, i64 c, i64 hw,
                           double eps) {
  __shared__ double sh[kBnThreads];
  const i64 ch = blockIdx.x;
  const i64 m = n * hw;
  double s = 0.0;
  for (i64 j = threadIdx.x; j < m; j += blockDim.x) s += static_cast<double>(x[((j / hw) * c + ch) * hw + j % hw]);
  const double mu = block_sum(s, sh) / static_cast<double>(m);
  double q = 0.0;
  for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
    const double d = static_cast<double>(x[((j / hw) * c + ch) * hw + j % hw]) - mu;
    q += d * d;
  }
  const double vr = block_sum(q, sh) / static_cast<double>(m);
  const double inv = 1.0 / sqrt(vr + eps);
  const double gm = static_cast<double>(gamma[ch]), bt = static_cast<double>(beta[ch]);
  for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
    const i64 k = ((j / hw) * c + ch) * hw + j % hw;
    y[k] = static_cast<T>(gm * (static_cast<double>(x[k]) - mu) * inv + bt);
  }
  if (threadIdx.x == 0) {
    mean[ch] = static_cast<T>(mu);
    var[ch] = static_cast<T>(vr);
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

template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_bn_bwd(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma,
                         T* dbeta, i64 n, i64 c, i64 hw, double eps) {
  __shared__ double sh[kBnThreads];
  const i64 ch = blockIdx.x;
  const i64 m = n * hw;
  const double mu = static_cast<double>(mean[ch]);
  const double inv = 1.0 / sqrt(static_cast<double>(var[ch]) + eps);
  const double gm = static_cast<double>(gamma[ch]);
  double sdy = 0.0, sdyx = 0.0;
  for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
    const i64 k = ((j / hw) * c + ch) * hw + j % hw;
    const double d = static_cast<double>(dy[k]);
    sdy += d;
    sdyx += d * (static_cast<double>(x[k]) - mu) * inv;
  }
  sdy = block_sum(sdy, sh);
  sdyx = block_sum(sdyx, sh);
  const double md = sdy / static_cast<double>(m), mdx = sdyx / static_cast<double>(m);
  for (i64 j = threadIdx.x; j < m; j += blockDim.x) {
    const i64 k = ((j / hw) * c + ch) * hw + j % hw;
    const double xhat = (static_cast<double>(x[k]) - mu) * inv;
    dx[k] = static_cast<T>(gm * inv * (static_cast<double>(dy[k]) - md - xhat * mdx));
  }
  if (threadIdx.x == 0) {
    dgamma[ch] = static_cast<T>(sdyx);
    dbeta[ch] = static_cast<T>(sdy);
  }
}

// Layer norm: x viewed as [m, d]; one block per row (two-pass double statistics, as batch norm).
template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_ln_fwd(const T* x, const T* gamma, const T* beta, T* y, T* mean,
                                                       T* var, i64 d, double eps) {
  __shared__ double sh[kBnThreads];
  const i64 row = blockIdx.x;
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

// dx of layer norm, one block per row: with xhat = (x - mu) * inv and g = dy * gamma,
// dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
template <typename T>
__global__ void __launch_bounds__(kBnThreads) k_ln_bwd_dx(const T* dy, const T* x, const T* gamma, const T* mean,
                                                          const T* var, T* dx, i64 d, double eps) {
  __shared__ double sh[kBnThreads];
  const i64 row = blockIdx.x;
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

template <typename T, typename L>
__global__ void k_ce_bwd(const T* dloss, const T* prob, const L* labels, T* dx, i64 n, i64 c, i64* bad) {
  ANVIL_GRID_STRIDE(k, n * c) {
    const i64 i = k / c, j = k % c;
    const i64 label = static_cast<i64>(labels[i]);
    if (label < 0 || label >= c) {
      atomicMin(reinterpret_cast<unsigned long long*>(bad), static_cast<unsigned long long>(i));
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

template <typename T>
void binary(int kind, const T* a, const T* b, T* c, const Dims& dims, i64 n, cudaStream_t s) {
  if (n == 0) return;
  k_binary<T><<<grid_for(n), kThreads, 0, s>>>(kind, a, b, c, dims, n);
  check_launch();
}

template <typename T>
void reduce(int kind, const T* x, T* y, i64 out_n, i64 count, const Dims& out, const Dims& red, cudaStream_t s) {
  if (out_n == 0) return;
  const i64 blocks = out_n < 65535LL * 32 ? out_n : 65535LL * 32;
  k_reduce<T><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(kind, x, y, out_n, count, out, red);
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

template <typename T>
void bn_forward_training(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, i64 n, i64 c, i64 hw,
                         double eps, cudaStream_t s) {
  if (c == 0) return;
  k_bn_train<T><<<static_cast<unsigned>(c), kBnThreads, 0, s>>>(x, gamma, beta, y, mean, var, n, c, hw, eps);
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
                 i64 n, i64 c, i64 hw, double eps, cudaStream_t s) {
  if (c == 0) return;
  k_bn_bwd<T><<<static_cast<unsigned>(c), kBnThreads, 0, s>>>(dy, x, gamma, mean, var, dx, dgamma, dbeta, n, c, hw, eps);
  check_launch();
}

template <typename T>
void ln_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var, i64 m, i64 d, double eps,
                cudaStream_t s) {
  if (m == 0) return;
  k_ln_fwd<T><<<static_cast<unsigned>(m), kBnThreads, 0, s>>>(x, gamma, beta, y, mean, var, d, eps);
  check_launch();
}

template <typename T>
void ln_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx, T* dgamma, T* dbeta,
                 i64 m, i64 d, double eps, cudaStream_t s) {
  if (m == 0 || d == 0) return;
  k_ln_bwd_dx<T><<<static_cast<unsigned>(m), kBnThreads, 0, s>>>(dy, x, gamma, mean, var, dx, d, eps);
  check_launch();
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
  if (n * c == 0) return;
  k_ce_bwd<T, L><<<grid_for(n * c), kThreads, 0, s>>>(dloss, prob, labels, dx, n, c, bad);
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
  template void bn_forward_training<T>(const T*, const T*, const T*, T*, T*, T*, i64, i64, i64, double,            \
                                       cudaStream_t);                                                              \
  template void bn_forward_inference<T>(const T*, const T*, const T*, const T*, const T*, T*, i64, i64, i64,       \
                                        double, cudaStream_t);                                                     \
  template void bn_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, i64, i64, i64, double, \
                               cudaStream_t);                                                                      \
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
