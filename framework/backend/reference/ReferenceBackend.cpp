// Plain-loop implementation of every Backend op: the oracle other backends are compared with.
//
// Every op is a function template over the element type T (float or double), selected from the
// tensors' dtype. Sums, means and dot products accumulate in double whatever T is, so the float32
// results are as close to the exact value as a single final rounding allows. Loops are ordered so the
// innermost one walks contiguous memory (rows of a matrix, the width of an image plane); nothing else
// is done for speed.
#include "framework/backend/reference/ReferenceBackend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "framework/backend/ComputePrecision.h"
#include "framework/backend/detail/ArgChecks.h"
#include "framework/core/Error.h"

namespace anvil {
namespace {

using i64 = std::int64_t;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::size_t uz(i64 v) { return static_cast<std::size_t>(v); }

// ---- argument checks (the messages name the op through `fn`) ----

using backend_detail::AxisGeom;
using backend_detail::axis_geom;
using backend_detail::BnGeom;
using backend_detail::bn_geom;
using backend_detail::dispatch;
using backend_detail::require_defined;
using backend_detail::require_labels;
using backend_detail::require_same_shape;
using backend_detail::require_shape;


// A defined host tensor of a compute dtype.
void require_float(const char* fn, const char* what, const Tensor& t) {
  require_defined(fn, what, t);
  if (!t.device().is_cpu())
    detail::throw_error(fn, fmt::format("{} {} is on {}; the reference backend computes on CPU only", what,
                                        t.desc(), t.device().str()));
  if (!is_compute_type(t.dtype()))
    detail::throw_error(fn, fmt::format("{} must be float32 or float64, got {}", what, t.desc()));
}

// `t` is a float tensor with the same dtype as `ref` (named `ref_what`).
void require_same_dtype(const char* fn, const char* what, const Tensor& t, const char* ref_what, const Tensor& ref) {
  require_float(fn, what, t);
  if (t.dtype() != ref.dtype())
    detail::throw_error(fn, fmt::format("dtype mismatch: {} {} vs {} {}", what, t.desc(), ref_what, ref.desc()));
}

i64 prod(const std::vector<i64>& d, std::size_t begin, std::size_t end) {
  i64 p = 1;
  for (std::size_t i = begin; i < end; ++i) p *= d[i];
  return p;
}

// Half-open range [lo, hi) of output positions o for which o*stride + off lies in [0, in).
void valid_range(i64 out, i64 stride, i64 off, i64 in, i64& lo, i64& hi) {
  // o*stride + off >= 0  <=>  o >= ceil(-off / stride)
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  // o*stride + off <= in - 1  <=>  o <= floor((in - 1 - off) / stride)
  const i64 last = in - 1 - off;
  hi = last < 0 ? 0 : last / stride + 1;
  lo = std::min(lo, out);
  hi = std::min(hi, out);
  if (hi < lo) hi = lo;
}

// ---- dense algebra ----

// c[M,N] = op(a) op(b) for one batch entry; a, b point at that entry's matrices.
template <typename T>
void gemm(const T* a, const T* b, T* c, i64 m, i64 k, i64 n, bool ta, bool tb) {
  std::vector<double> row(uz(n));
  for (i64 i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    if (tb) {
      // b is [N, K]: row j of b is contiguous, dot products.
      for (i64 j = 0; j < n; ++j) {
        double acc = 0.0;
        for (i64 p = 0; p < k; ++p) {
          const double av = ta ? a[p * m + i] : a[i * k + p];
          acc += av * static_cast<double>(b[j * k + p]);
        }
        row[uz(j)] = acc;
      }
    } else {
      // b is [K, N]: accumulate a(i,p) * row p of b.
      for (i64 p = 0; p < k; ++p) {
        const double av = ta ? a[p * m + i] : a[i * k + p];
        const T* brow = b + p * n;
        for (i64 j = 0; j < n; ++j) row[uz(j)] += av * static_cast<double>(brow[j]);
      }
    }
    for (i64 j = 0; j < n; ++j) c[i * n + j] = static_cast<T>(row[uz(j)]);
  }
}

// ---- convolution geometry ----

struct ConvGeom {
  i64 n, c, h, w;      // input
  i64 k, cg, r, s;     // weight [K, C/groups, R, S]
  i64 kg;              // output channels per group
  i64 oh, ow;          // output spatial size
  i64 groups;
};

ConvGeom conv_geom(const char* fn, const Shape& x, const Shape& w, const Conv2dParams& p) {
  if (x.rank() != 4) detail::throw_error(fn, fmt::format("input must be [N,C,H,W], got {}", x.str()));
  if (w.rank() != 4) detail::throw_error(fn, fmt::format("weight must be [K,C/groups,R,S], got {}", w.str()));
  if (p.groups < 1 || w[0] % p.groups != 0)
    detail::throw_error(fn, fmt::format("out channels {} not divisible by groups {}", w[0], p.groups));
  if (x[1] != w[1] * p.groups)
    detail::throw_error(fn, fmt::format("input {} has {} channels but weight {} with groups={} expects {}", x.str(),
                                        x[1], w.str(), p.groups, w[1] * p.groups));
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    detail::throw_error(fn, fmt::format("padding must be >= 0, got top {} bottom {} left {} right {}", p.pad_top,
                                        p.pad_bottom, p.pad_left, p.pad_right));
  ConvGeom g{};
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.k = w[0];
  g.cg = w[1];
  g.r = w[2];
  g.s = w[3];
  g.groups = p.groups;
  g.kg = g.k / p.groups;
  g.oh = conv_out_size(g.h, g.r, p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h);
  g.ow = conv_out_size(g.w, g.s, p.stride_w, p.pad_left, p.pad_right, p.dilation_w);
  return g;
}

// y[n,k,oh,ow] = b[k] + Σ_{c,r,s} w[k,c,r,s] x[n, g*Cg + c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]
template <typename T>
void conv_fwd(const T* x, const T* w, const T* b, T* y, const ConvGeom& g, const Conv2dParams& p) {
  std::vector<double> acc(uz(g.oh * g.ow));
  for (i64 n = 0; n < g.n; ++n) {
    for (i64 k = 0; k < g.k; ++k) {
      const i64 grp = k / g.kg;
      std::fill(acc.begin(), acc.end(), b ? static_cast<double>(b[k]) : 0.0);
      for (i64 c = 0; c < g.cg; ++c) {
        const T* xp = x + ((n * g.c + grp * g.cg + c) * g.h) * g.w;  // [H, W]
        for (i64 r = 0; r < g.r; ++r) {
          i64 oh_lo, oh_hi;
          valid_range(g.oh, p.stride_h, r * p.dilation_h - p.pad_top, g.h, oh_lo, oh_hi);
          for (i64 s = 0; s < g.s; ++s) {
            const double wv = static_cast<double>(w[((k * g.cg + c) * g.r + r) * g.s + s]);
            i64 ow_lo, ow_hi;
            valid_range(g.ow, p.stride_w, s * p.dilation_w - p.pad_left, g.w, ow_lo, ow_hi);
            for (i64 oh = oh_lo; oh < oh_hi; ++oh) {
              const i64 ih = oh * p.stride_h - p.pad_top + r * p.dilation_h;
              const T* xrow = xp + ih * g.w;
              double* arow = acc.data() + oh * g.ow;
              for (i64 ow = ow_lo; ow < ow_hi; ++ow)
                arow[ow] += wv * static_cast<double>(xrow[ow * p.stride_w - p.pad_left + s * p.dilation_w]);
            }
          }
        }
      }
      T* yp = y + (n * g.k + k) * g.oh * g.ow;
      for (std::size_t i = 0; i < acc.size(); ++i) yp[i] = static_cast<T>(acc[i]);
    }
  }
}

// dx[n, g*Cg + c, ih, iw] = Σ_{k in group g, r, s, oh, ow: ih = oh*sh - pt + r*dh, iw = ...} w[k,c,r,s] dy[n,k,oh,ow]
template <typename T>
void conv_bwd_data(const T* dy, const T* w, T* dx, const ConvGeom& g, const Conv2dParams& p) {
  std::vector<double> acc(uz(g.h * g.w));
  for (i64 n = 0; n < g.n; ++n) {
    for (i64 ci = 0; ci < g.c; ++ci) {
      const i64 grp = ci / g.cg, c = ci % g.cg;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (i64 k = grp * g.kg; k < (grp + 1) * g.kg; ++k) {
        const T* dyp = dy + (n * g.k + k) * g.oh * g.ow;  // [OH, OW]
        for (i64 r = 0; r < g.r; ++r) {
          i64 oh_lo, oh_hi;
          valid_range(g.oh, p.stride_h, r * p.dilation_h - p.pad_top, g.h, oh_lo, oh_hi);
          for (i64 s = 0; s < g.s; ++s) {
            const double wv = static_cast<double>(w[((k * g.cg + c) * g.r + r) * g.s + s]);
            i64 ow_lo, ow_hi;
            valid_range(g.ow, p.stride_w, s * p.dilation_w - p.pad_left, g.w, ow_lo, ow_hi);
            for (i64 oh = oh_lo; oh < oh_hi; ++oh) {
              const i64 ih = oh * p.stride_h - p.pad_top + r * p.dilation_h;
              double* arow = acc.data() + ih * g.w;
              const T* dyrow = dyp + oh * g.ow;
              for (i64 ow = ow_lo; ow < ow_hi; ++ow)
                arow[ow * p.stride_w - p.pad_left + s * p.dilation_w] += wv * static_cast<double>(dyrow[ow]);
            }
          }
        }
      }
      T* dxp = dx + (n * g.c + ci) * g.h * g.w;
      for (std::size_t i = 0; i < acc.size(); ++i) dxp[i] = static_cast<T>(acc[i]);
    }
  }
}

// dw[k,c,r,s] = Σ_{n,oh,ow} dy[n,k,oh,ow] x[n, g*Cg + c, ih, iw];  db[k] = Σ_{n,oh,ow} dy[n,k,oh,ow]
template <typename T>
void conv_bwd_weights(const T* dy, const T* x, T* dw, T* db, const ConvGeom& g, const Conv2dParams& p) {
  for (i64 k = 0; k < g.k; ++k) {
    const i64 grp = k / g.kg;
    for (i64 c = 0; c < g.cg; ++c) {
      for (i64 r = 0; r < g.r; ++r) {
        i64 oh_lo, oh_hi;
        valid_range(g.oh, p.stride_h, r * p.dilation_h - p.pad_top, g.h, oh_lo, oh_hi);
        for (i64 s = 0; s < g.s; ++s) {
          i64 ow_lo, ow_hi;
          valid_range(g.ow, p.stride_w, s * p.dilation_w - p.pad_left, g.w, ow_lo, ow_hi);
          double acc = 0.0;
          for (i64 n = 0; n < g.n; ++n) {
            const T* dyp = dy + (n * g.k + k) * g.oh * g.ow;
            const T* xp = x + ((n * g.c + grp * g.cg + c) * g.h) * g.w;
            for (i64 oh = oh_lo; oh < oh_hi; ++oh) {
              const i64 ih = oh * p.stride_h - p.pad_top + r * p.dilation_h;
              const T* xrow = xp + ih * g.w;
              const T* dyrow = dyp + oh * g.ow;
              for (i64 ow = ow_lo; ow < ow_hi; ++ow)
                acc += static_cast<double>(dyrow[ow]) *
                       static_cast<double>(xrow[ow * p.stride_w - p.pad_left + s * p.dilation_w]);
            }
          }
          dw[((k * g.cg + c) * g.r + r) * g.s + s] = static_cast<T>(acc);
        }
      }
    }
    if (db) {
      double acc = 0.0;
      for (i64 n = 0; n < g.n; ++n) {
        const T* dyp = dy + (n * g.k + k) * g.oh * g.ow;
        for (i64 i = 0; i < g.oh * g.ow; ++i) acc += static_cast<double>(dyp[i]);
      }
      db[k] = static_cast<T>(acc);
    }
  }
}

// ---- pooling ----

struct PoolGeom {
  i64 planes, h, w, oh, ow;
};

PoolGeom pool_geom(const char* fn, const Shape& x, const Pool2dParams& p) {
  if (x.rank() != 4) detail::throw_error(fn, fmt::format("input must be [N,C,H,W], got {}", x.str()));
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    detail::throw_error(fn, fmt::format("padding must be >= 0, got top {} bottom {} left {} right {}", p.pad_top,
                                        p.pad_bottom, p.pad_left, p.pad_right));
  PoolGeom g{};
  g.planes = x[0] * x[1];
  g.h = x[2];
  g.w = x[3];
  g.oh = conv_out_size(g.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1);
  g.ow = conv_out_size(g.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1);
  return g;
}

// The window of output (oh, ow) clipped to the input: rows [h0, h1), columns [w0, w1).
void pool_window(const PoolGeom& g, const Pool2dParams& p, i64 oh, i64 ow, i64& h0, i64& h1, i64& w0, i64& w1) {
  const i64 hs = oh * p.stride_h - p.pad_top, ws = ow * p.stride_w - p.pad_left;
  h0 = std::max<i64>(hs, 0);
  h1 = std::min<i64>(hs + p.kernel_h, g.h);
  w0 = std::max<i64>(ws, 0);
  w1 = std::min<i64>(ws + p.kernel_w, g.w);
}

double avg_divisor(const Pool2dParams& p, i64 h0, i64 h1, i64 w0, i64 w1) {
  if (p.count_include_pad) return static_cast<double>(p.kernel_h * p.kernel_w);
  return static_cast<double>(std::max<i64>(h1 - h0, 0) * std::max<i64>(w1 - w0, 0));
}

template <typename T>
void pool_fwd(const T* x, T* y, i64* idx, const PoolGeom& g, const Pool2dParams& p) {
  for (i64 pl = 0; pl < g.planes; ++pl) {
    const T* xp = x + pl * g.h * g.w;
    for (i64 oh = 0; oh < g.oh; ++oh) {
      for (i64 ow = 0; ow < g.ow; ++ow) {
        i64 h0, h1, w0, w1;
        pool_window(g, p, oh, ow, h0, h1, w0, w1);
        const i64 o = (pl * g.oh + oh) * g.ow + ow;
        if (p.kind == PoolKind::kMax) {
          // Padding never wins: only input cells compete; the first maximum (row-major) wins; NaN propagates.
          double best = -kInf;
          i64 arg = -1;
          for (i64 ih = h0; ih < h1; ++ih)
            for (i64 iw = w0; iw < w1; ++iw) {
              const double v = static_cast<double>(xp[ih * g.w + iw]);
              if (arg < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
                best = v;
                arg = ih * g.w + iw;
              }
            }
          y[o] = static_cast<T>(best);  // -inf for a window lying wholly in the padding
          idx[o] = arg;
        } else {
          double sum = 0.0;
          for (i64 ih = h0; ih < h1; ++ih)
            for (i64 iw = w0; iw < w1; ++iw) sum += static_cast<double>(xp[ih * g.w + iw]);
          const double div = avg_divisor(p, h0, h1, w0, w1);
          y[o] = static_cast<T>(div > 0 ? sum / div : 0.0);
        }
      }
    }
  }
}

template <typename T>
void pool_bwd(const T* dy, const i64* idx, T* dx, const PoolGeom& g, const Pool2dParams& p) {
  std::vector<double> acc(uz(g.h * g.w));
  for (i64 pl = 0; pl < g.planes; ++pl) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (i64 oh = 0; oh < g.oh; ++oh) {
      for (i64 ow = 0; ow < g.ow; ++ow) {
        const i64 o = (pl * g.oh + oh) * g.ow + ow;
        const double d = static_cast<double>(dy[o]);
        if (p.kind == PoolKind::kMax) {
          if (idx[o] >= 0) acc[uz(idx[o])] += d;
        } else {
          i64 h0, h1, w0, w1;
          pool_window(g, p, oh, ow, h0, h1, w0, w1);
          const double div = avg_divisor(p, h0, h1, w0, w1);
          if (div <= 0) continue;
          for (i64 ih = h0; ih < h1; ++ih)
            for (i64 iw = w0; iw < w1; ++iw) acc[uz(ih * g.w + iw)] += d / div;
        }
      }
    }
    T* dxp = dx + pl * g.h * g.w;
    for (std::size_t i = 0; i < acc.size(); ++i) dxp[i] = static_cast<T>(acc[i]);
  }
}

// ---- elementwise ----

constexpr double kSqrt1_2 = 0.70710678118654752440;   // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2 pi)

double eltwise_value(EltwiseKind kind, double x, double alpha, double beta) {
  switch (kind) {
    case EltwiseKind::kRelu: return x > 0 ? x : alpha * x;
    case EltwiseKind::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case EltwiseKind::kTanh: return std::tanh(x);
    case EltwiseKind::kGelu: return 0.5 * x * (1.0 + std::erf(x * kSqrt1_2));
    case EltwiseKind::kExp: return std::exp(x);
    case EltwiseKind::kLog: return std::log(x);
    case EltwiseKind::kSqrt: return std::sqrt(x);
    case EltwiseKind::kSquare: return x * x;
    case EltwiseKind::kAbs: return std::abs(x);
    case EltwiseKind::kLinear: return alpha * x + beta;
  }
  ANVIL_THROW("unknown eltwise kind {}", static_cast<int>(kind));
}

// dy * f'(x), with f'(x) written through the forward output y where that is the usual form.
double eltwise_grad(EltwiseKind kind, double dy, double x, double y, double alpha) {
  switch (kind) {
    case EltwiseKind::kRelu: return x > 0 ? dy : alpha * dy;  // derivative at 0 is alpha (0 for plain ReLU)
    case EltwiseKind::kSigmoid: return dy * y * (1.0 - y);
    case EltwiseKind::kTanh: return dy * (1.0 - y * y);
    case EltwiseKind::kGelu:
      return dy * (0.5 * (1.0 + std::erf(x * kSqrt1_2)) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x));
    case EltwiseKind::kExp: return dy * y;
    case EltwiseKind::kLog: return dy / x;
    case EltwiseKind::kSqrt: return dy / (2.0 * y);
    case EltwiseKind::kSquare: return dy * 2.0 * x;
    case EltwiseKind::kAbs: return x > 0 ? dy : (x < 0 ? -dy : 0.0);
    case EltwiseKind::kLinear: return dy * alpha;
  }
  ANVIL_THROW("unknown eltwise kind {}", static_cast<int>(kind));
}

template <typename T>
T binary_value(BinaryKind kind, T a, T b) {
  switch (kind) {
    case BinaryKind::kAdd: return a + b;
    case BinaryKind::kSub: return a - b;
    case BinaryKind::kMul: return a * b;
    case BinaryKind::kDiv: return a / b;
    case BinaryKind::kMax:
      if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      return a < b ? b : a;
    case BinaryKind::kMin:
      if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
      return b < a ? b : a;
  }
  ANVIL_THROW("unknown binary kind {}", static_cast<int>(kind));
}

// Strides of `s` right-aligned against an output of rank `rank`, 0 where `s` broadcasts.
std::vector<i64> broadcast_strides(const Shape& s, std::size_t rank) {
  std::vector<i64> out(rank, 0);
  const std::vector<i64> st = contiguous_strides(s);
  const std::size_t lead = rank - s.rank();
  for (std::size_t i = 0; i < s.rank(); ++i) out[lead + i] = s.dims()[i] == 1 ? 0 : st[i];
  return out;
}

// Walks a row-major index space of `dims`, calling body(offsets...) once per innermost row with the
// starting offset into each operand (given by its strides); the body loops over the last dimension.
template <typename Body>
void for_each_row(const std::vector<i64>& dims, const std::vector<std::vector<i64>>& strides, Body&& body) {
  const std::size_t r = dims.size();
  for (i64 d : dims)
    if (d == 0) return;
  const i64 rows = r == 0 ? 1 : prod(dims, 0, r - 1);
  std::vector<i64> idx(r == 0 ? 0 : r - 1, 0);
  std::vector<i64> off(strides.size(), 0);
  for (i64 row = 0; row < rows; ++row) {
    body(off);
    // Advance the multi-index over dims [0, r-1) and update the offsets incrementally.
    for (std::size_t d = idx.size(); d-- > 0;) {
      ++idx[d];
      for (std::size_t t = 0; t < off.size(); ++t) off[t] += strides[t][d];
      if (idx[d] < dims[d]) break;
      for (std::size_t t = 0; t < off.size(); ++t) off[t] -= strides[t][d] * idx[d];
      idx[d] = 0;
    }
  }
}

void require_channel_vector(const char* fn, const char* what, const Tensor& t, const Tensor& x) {
  require_same_dtype(fn, what, t, "x", x);
  if (t.shape() != Shape{x.dim(1)})
    detail::throw_error(fn, fmt::format("{} {} does not match the {} channels of input {}", what, t.desc(), x.dim(1),
                                        x.desc()));
}

// Label n as an index, checked against [0, C).
i64 label_at(const char* fn, const Tensor& labels, i64 n, i64 c) {
  const i64 v = labels.dtype() == DType::kI32 ? static_cast<i64>(labels.data<std::int32_t>()[n])
                                              : labels.data<std::int64_t>()[n];
  if (v < 0 || v >= c)
    detail::throw_error(fn, fmt::format("label at index {} is {}, outside the valid range [0, {}) of {} classes", n, v,
                                        c, c));
  return v;
}

}  // namespace

// Mixed precision (ComputePrecision.h): under kBF16 the float32 operands of the compute-heavy ops are
// rounded to bfloat16 first, then the float loops run as usual (bf16 products, wide accumulation).
static Tensor amp_operand(const Tensor& t) {
  if (!t.defined() || t.dtype() != DType::kF32 || current_compute_precision() != ComputePrecision::kBF16) return t;
  Tensor r = t.clone();
  round_to_bf16_inplace(r.data<float>(), r.numel());
  return r;
}

std::string ReferenceBackend::name() const { return "reference"; }
Device ReferenceBackend::device() const { return Device::cpu(); }

// ---------------------------------------------------------------------------------------------
// dense algebra
// ---------------------------------------------------------------------------------------------

Tensor ReferenceBackend::matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b) {
  const Tensor a = amp_operand(a_in), b = amp_operand(b_in);
  require_float(__func__, "a", a);
  require_same_dtype(__func__, "b", b, "a", a);
  ANVIL_CHECK(a.rank() >= 2 && a.rank() == b.rank(),
              "operands must have the same rank >= 2, got a {} and b {}", a.desc(), b.desc());
  const std::size_t r = a.rank();
  const auto& ad = a.shape().dims();
  const auto& bd = b.shape().dims();
  for (std::size_t i = 0; i + 2 < r; ++i)
    ANVIL_CHECK(ad[i] == bd[i], "leading (batch) dims differ: a {} vs b {}", a.desc(), b.desc());
  const i64 m = trans_a ? ad[r - 1] : ad[r - 2];
  const i64 k = trans_a ? ad[r - 2] : ad[r - 1];
  const i64 kb = trans_b ? bd[r - 1] : bd[r - 2];
  const i64 n = trans_b ? bd[r - 2] : bd[r - 1];
  ANVIL_CHECK(k == kb, "inner dims differ: a {}{} has K={}, b {}{} has K={}", a.desc(), trans_a ? " (transposed)" : "",
              k, b.desc(), trans_b ? " (transposed)" : "", kb);
  const i64 batch = prod(ad, 0, r - 2);
  std::vector<i64> od(ad.begin(), ad.end() - 2);
  od.push_back(m);
  od.push_back(n);
  Tensor c = Tensor::empty(Shape(od), a.dtype());
  dispatch(a.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = c.data<T>();
    for (i64 i = 0; i < batch; ++i) gemm(ap + i * m * k, bp + i * k * n, cp + i * m * n, m, k, n, trans_a, trans_b);
  });
  return c;
}

Tensor ReferenceBackend::linear_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b) {
  const Tensor x = amp_operand(x_in), w = amp_operand(w_in);
  require_float(__func__, "x", x);
  require_same_dtype(__func__, "w", w, "x", x);
  ANVIL_CHECK(x.rank() == 2 && w.rank() == 2 && x.dim(1) == w.dim(1),
              "expected x [N,I] and w [O,I], got x {} and w {}", x.desc(), w.desc());
  const i64 n = x.dim(0), in = x.dim(1), out = w.dim(0);
  if (b.defined()) {
    require_same_dtype(__func__, "b", b, "x", x);
    require_shape(__func__, "bias", b, Shape{out});
  }
  Tensor y = Tensor::empty(Shape{n, out}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    const T* wp = w.data<T>();
    const T* bp = b.defined() ? b.data<T>() : nullptr;
    T* yp = y.data<T>();
    for (i64 i = 0; i < n; ++i)
      for (i64 o = 0; o < out; ++o) {
        double acc = bp ? static_cast<double>(bp[o]) : 0.0;
        for (i64 j = 0; j < in; ++j) acc += static_cast<double>(xp[i * in + j]) * static_cast<double>(wp[o * in + j]);
        yp[i * out + o] = static_cast<T>(acc);
      }
  });
  return y;
}

Tensor ReferenceBackend::linear_backward_data(const Tensor& dy_in, const Tensor& w_in) {
  const Tensor dy = amp_operand(dy_in), w = amp_operand(w_in);
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "w", w, "dy", dy);
  ANVIL_CHECK(dy.rank() == 2 && w.rank() == 2 && dy.dim(1) == w.dim(0),
              "expected dy [N,O] and w [O,I], got dy {} and w {}", dy.desc(), w.desc());
  const i64 n = dy.dim(0), out = w.dim(0), in = w.dim(1);
  Tensor dx = Tensor::empty(Shape{n, in}, dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    gemm(dy.data<T>(), w.data<T>(), dx.data<T>(), n, out, in, false, false);
  });
  return dx;
}

WeightGrads ReferenceBackend::linear_backward_weights(const Tensor& dy, const Tensor& x_in, bool with_bias) {
  const Tensor x = amp_operand(x_in), dy_mm = amp_operand(dy);  // db sums the unrounded dy
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "x", x, "dy", dy);
  ANVIL_CHECK(dy.rank() == 2 && x.rank() == 2 && dy.dim(0) == x.dim(0),
              "expected dy [N,O] and x [N,I], got dy {} and x {}", dy.desc(), x.desc());
  const i64 n = dy.dim(0), out = dy.dim(1), in = x.dim(1);
  WeightGrads g;
  g.dw = Tensor::empty(Shape{out, in}, dy.dtype());
  if (with_bias) g.db = Tensor::empty(Shape{out}, dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* dyp = dy.data<T>();
    gemm(dy_mm.data<T>(), x.data<T>(), g.dw.data<T>(), out, n, in, true, false);  // dyᵀ [O,N] · x [N,I]
    if (with_bias) {
      T* dbp = g.db.data<T>();
      for (i64 o = 0; o < out; ++o) {
        double acc = 0.0;
        for (i64 i = 0; i < n; ++i) acc += static_cast<double>(dyp[i * out + o]);
        dbp[o] = static_cast<T>(acc);
      }
    }
  });
  return g;
}

// ---------------------------------------------------------------------------------------------
// convolution
// ---------------------------------------------------------------------------------------------

Tensor ReferenceBackend::conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& b, const Conv2dParams& p) {
  const Tensor x = amp_operand(x_in), w = amp_operand(w_in);
  require_float(__func__, "x", x);
  require_same_dtype(__func__, "w", w, "x", x);
  const ConvGeom g = conv_geom(__func__, x.shape(), w.shape(), p);
  if (b.defined()) {
    require_same_dtype(__func__, "b", b, "x", x);
    require_shape(__func__, "bias", b, Shape{g.k});
  }
  Tensor y = Tensor::empty(Shape{g.n, g.k, g.oh, g.ow}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    conv_fwd(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : static_cast<const T*>(nullptr), y.data<T>(), g, p);
  });
  return y;
}

Tensor ReferenceBackend::conv2d_backward_data(const Tensor& dy_in, const Tensor& w_in, const Shape& x_shape,
                                              const Conv2dParams& p) {
  const Tensor dy = amp_operand(dy_in), w = amp_operand(w_in);
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "w", w, "dy", dy);
  const ConvGeom g = conv_geom(__func__, x_shape, w.shape(), p);
  require_shape(__func__, "dy", dy, Shape{g.n, g.k, g.oh, g.ow});
  Tensor dx = Tensor::empty(x_shape, dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    conv_bwd_data(dy.data<T>(), w.data<T>(), dx.data<T>(), g, p);
  });
  return dx;
}

WeightGrads ReferenceBackend::conv2d_backward_weights(const Tensor& dy_in, const Tensor& x_in, const Shape& w_shape,
                                                      bool with_bias, const Conv2dParams& p) {
  const Tensor dy = amp_operand(dy_in), x = amp_operand(x_in);
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "x", x, "dy", dy);
  const ConvGeom g = conv_geom(__func__, x.shape(), w_shape, p);
  require_shape(__func__, "dy", dy, Shape{g.n, g.k, g.oh, g.ow});
  WeightGrads wg;
  wg.dw = Tensor::empty(w_shape, dy.dtype());
  if (with_bias) wg.db = Tensor::empty(Shape{g.k}, dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    conv_bwd_weights(dy.data<T>(), x.data<T>(), wg.dw.data<T>(), with_bias ? wg.db.data<T>() : static_cast<T*>(nullptr),
                     g, p);
  });
  return wg;
}

// ---------------------------------------------------------------------------------------------
// pooling
// ---------------------------------------------------------------------------------------------

PoolResult ReferenceBackend::pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  require_float(__func__, "x", x);
  const PoolGeom g = pool_geom(__func__, x.shape(), p);
  const Shape ys{x.dim(0), x.dim(1), g.oh, g.ow};
  PoolResult r;
  r.y = Tensor::empty(ys, x.dtype());
  // Max: argmax as a flat index into the input plane (ih * W + iw), one per output element.
  if (p.kind == PoolKind::kMax) r.workspace = Tensor::empty(ys, DType::kI64);
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    pool_fwd(x.data<T>(), r.y.data<T>(), p.kind == PoolKind::kMax ? r.workspace.data<i64>() : nullptr, g, p);
  });
  return r;
}

Tensor ReferenceBackend::pool2d_backward(const Tensor& dy, const Tensor& x, const PoolResult& fwd,
                                         const Pool2dParams& p) {
  require_float(__func__, "dy", dy);
  require_defined(__func__, "x", x);
  const PoolGeom g = pool_geom(__func__, x.shape(), p);
  const Shape ys{x.dim(0), x.dim(1), g.oh, g.ow};
  require_shape(__func__, "dy", dy, ys);
  const i64* idx = nullptr;
  if (p.kind == PoolKind::kMax) {
    ANVIL_CHECK(fwd.workspace.defined() && fwd.workspace.dtype() == DType::kI64 && fwd.workspace.shape() == ys,
                "max pooling needs the int64{} argmax workspace of this backend's forward, got {}", ys.str(),
                fwd.workspace.desc());
    idx = fwd.workspace.data<i64>();
    const i64 plane = g.h * g.w;
    for (i64 i = 0; i < fwd.workspace.numel(); ++i)
      ANVIL_CHECK(idx[i] >= -1 && idx[i] < plane, "workspace index {} at {} is outside the input plane of {} cells",
                  idx[i], i, plane);
  }
  Tensor dx = Tensor::empty(x.shape(), dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    pool_bwd(dy.data<T>(), idx, dx.data<T>(), g, p);
  });
  return dx;
}

// ---------------------------------------------------------------------------------------------
// elementwise
// ---------------------------------------------------------------------------------------------

Tensor ReferenceBackend::eltwise_forward(EltwiseKind kind, const Tensor& x, double alpha, double beta) {
  require_float(__func__, "x", x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (i64 i = 0; i < x.numel(); ++i) yp[i] = static_cast<T>(eltwise_value(kind, static_cast<double>(xp[i]), alpha, beta));
  });
  return y;
}

Tensor ReferenceBackend::eltwise_backward(EltwiseKind kind, const Tensor& dy, const Tensor& x, const Tensor& y,
                                          double alpha, double beta) {
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "x", x, "dy", dy);
  require_same_shape(__func__, "x", x, "dy", dy);
  if (y.defined()) {
    require_same_dtype(__func__, "y", y, "dy", dy);
    require_same_shape(__func__, "y", y, "dy", dy);
  }
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* dyp = dy.data<T>();
    const T* xp = x.data<T>();
    const T* yp = y.defined() ? y.data<T>() : nullptr;
    T* dxp = dx.data<T>();
    for (i64 i = 0; i < dy.numel(); ++i) {
      const double xv = static_cast<double>(xp[i]);
      // Without y (allowed for convenience), recompute it from x.
      const double yv = yp ? static_cast<double>(yp[i]) : eltwise_value(kind, xv, alpha, beta);
      dxp[i] = static_cast<T>(eltwise_grad(kind, static_cast<double>(dyp[i]), xv, yv, alpha));
    }
  });
  return dx;
}

Tensor ReferenceBackend::binary(BinaryKind kind, const Tensor& a, const Tensor& b) {
  require_float(__func__, "a", a);
  require_same_dtype(__func__, "b", b, "a", a);
  const Shape os = broadcast_shapes(a.shape(), b.shape());
  Tensor c = Tensor::empty(os, a.dtype());
  const std::size_t r = os.rank();
  const std::vector<std::vector<i64>> strides = {broadcast_strides(a.shape(), r), broadcast_strides(b.shape(), r),
                                                 contiguous_strides(os)};
  const i64 inner = r == 0 ? 1 : os.dims()[r - 1];
  const i64 as = r == 0 ? 0 : strides[0][r - 1], bs = r == 0 ? 0 : strides[1][r - 1];
  dispatch(a.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    T* cp = c.data<T>();
    for_each_row(os.dims(), strides, [&](const std::vector<i64>& off) {
      const T* ar = ap + off[0];
      const T* br = bp + off[1];
      T* cr = cp + off[2];
      for (i64 i = 0; i < inner; ++i) cr[i] = binary_value<T>(kind, ar[i * as], br[i * bs]);
    });
  });
  return c;
}

Tensor ReferenceBackend::reduce(ReduceKind kind, const Tensor& x, const Shape& out_shape) {
  require_float(__func__, "x", x);
  ANVIL_CHECK(out_shape.rank() == x.rank(), "out_shape {} must have the rank of the input {}", out_shape.str(),
              x.desc());
  const std::size_t r = x.rank();
  for (std::size_t i = 0; i < r; ++i)
    ANVIL_CHECK(out_shape.dims()[i] == x.shape().dims()[i] || out_shape.dims()[i] == 1,
                "out_shape {} is not a reduction of {}: dim {} is {}, expected {} or 1", out_shape.str(), x.desc(), i,
                out_shape.dims()[i], x.shape().dims()[i]);
  const i64 on = out_shape.numel();
  const i64 count = on == 0 ? 0 : x.numel() / on;  // inputs folded into each output
  if ((kind == ReduceKind::kMax || kind == ReduceKind::kMin) && count == 0 && on > 0)
    ANVIL_THROW("cannot take the {} of an empty input {}", kind == ReduceKind::kMax ? "max" : "min", x.desc());
  const double init = kind == ReduceKind::kMax ? -kInf : kind == ReduceKind::kMin ? kInf : 0.0;
  std::vector<double> acc(uz(on), init);
  // Output strides against x's index space: 0 along reduced dims.
  std::vector<i64> ostr = contiguous_strides(out_shape);
  for (std::size_t i = 0; i < r; ++i)
    if (out_shape.dims()[i] == 1) ostr[i] = 0;
  const std::vector<std::vector<i64>> strides = {contiguous_strides(x.shape()), ostr};
  const i64 inner = r == 0 ? 1 : x.shape().dims()[r - 1];
  const i64 os = r == 0 ? 0 : ostr[r - 1];
  Tensor y = Tensor::empty(out_shape, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    for_each_row(x.shape().dims(), strides, [&](const std::vector<i64>& off) {
      const T* xr = xp + off[0];
      double* ar = acc.data() + off[1];
      for (i64 i = 0; i < inner; ++i) {
        const double v = static_cast<double>(xr[i]);
        double& a = ar[i * os];
        switch (kind) {
          case ReduceKind::kSum:
          case ReduceKind::kMean: a += v; break;
          case ReduceKind::kMax:
            if (v > a || std::isnan(v)) a = v;  // NaN propagates and then sticks
            break;
          case ReduceKind::kMin:
            if (v < a || std::isnan(v)) a = v;
            break;
        }
      }
    });
    T* yp = y.data<T>();
    for (i64 i = 0; i < on; ++i) {
      double v = acc[uz(i)];
      if (kind == ReduceKind::kMean) v = count > 0 ? v / static_cast<double>(count) : kNaN;
      yp[i] = static_cast<T>(v);
    }
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// softmax
// ---------------------------------------------------------------------------------------------

Tensor ReferenceBackend::softmax_forward(const Tensor& x, std::int64_t axis, bool log) {
  require_float(__func__, "x", x);
  const AxisGeom g = axis_geom(__func__, x, axis);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (i64 o = 0; o < g.outer; ++o)
      for (i64 in = 0; in < g.inner; ++in) {
        const T* xs = xp + o * g.len * g.inner + in;  // element l at xs[l * inner]
        T* ys = yp + o * g.len * g.inner + in;
        double mx = -kInf;
        for (i64 l = 0; l < g.len; ++l) mx = std::max(mx, static_cast<double>(xs[l * g.inner]));
        double sum = 0.0;
        for (i64 l = 0; l < g.len; ++l) sum += std::exp(static_cast<double>(xs[l * g.inner]) - mx);
        const double lse = std::log(sum);
        for (i64 l = 0; l < g.len; ++l) {
          const double s = static_cast<double>(xs[l * g.inner]) - mx;
          ys[l * g.inner] = static_cast<T>(log ? s - lse : std::exp(s) / sum);
        }
      }
  });
  return y;
}

Tensor ReferenceBackend::softmax_backward(const Tensor& dy, const Tensor& y, std::int64_t axis, bool log) {
  require_float(__func__, "dy", dy);
  require_same_dtype(__func__, "y", y, "dy", dy);
  require_same_shape(__func__, "y", y, "dy", dy);
  const AxisGeom g = axis_geom(__func__, y, axis);
  Tensor dx = Tensor::empty(y.shape(), y.dtype());
  dispatch(y.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* dyp = dy.data<T>();
    const T* yp = y.data<T>();
    T* dxp = dx.data<T>();
    for (i64 o = 0; o < g.outer; ++o)
      for (i64 in = 0; in < g.inner; ++in) {
        const i64 base = o * g.len * g.inner + in;
        double s = 0.0;  // softmax: Σ dy·y; log-softmax: Σ dy
        for (i64 l = 0; l < g.len; ++l) {
          const i64 i = base + l * g.inner;
          s += log ? static_cast<double>(dyp[i]) : static_cast<double>(dyp[i]) * static_cast<double>(yp[i]);
        }
        for (i64 l = 0; l < g.len; ++l) {
          const i64 i = base + l * g.inner;
          const double d = static_cast<double>(dyp[i]), yv = static_cast<double>(yp[i]);
          dxp[i] = static_cast<T>(log ? d - std::exp(yv) * s : yv * (d - s));
        }
      }
  });
  return dx;
}

// ---------------------------------------------------------------------------------------------
// batch norm
// ---------------------------------------------------------------------------------------------

BatchNormTrainResult ReferenceBackend::batch_norm_forward_training(const Tensor& x, const Tensor& gamma,
                                                                   const Tensor& beta, double eps) {
  require_float(__func__, "x", x);
  const BnGeom g = bn_geom(__func__, x);
  require_channel_vector(__func__, "gamma", gamma, x);
  require_channel_vector(__func__, "beta", beta, x);
  const i64 m = g.n * g.hw;
  ANVIL_CHECK(m > 0, "input {} has no values per channel", x.desc());
  BatchNormTrainResult r;
  r.y = Tensor::empty(x.shape(), x.dtype());
  r.mean = Tensor::empty(Shape{g.c}, x.dtype());
  r.var = Tensor::empty(Shape{g.c}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    const T* gp = gamma.data<T>();
    const T* bp = beta.data<T>();
    T* yp = r.y.data<T>();
    for (i64 c = 0; c < g.c; ++c) {
      // Two passes in double: mean, then the biased variance around it.
      double sum = 0.0;
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) sum += static_cast<double>(xp[(n * g.c + c) * g.hw + i]);
      const double mean = sum / static_cast<double>(m);
      double sq = 0.0;
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) {
          const double d = static_cast<double>(xp[(n * g.c + c) * g.hw + i]) - mean;
          sq += d * d;
        }
      const double var = sq / static_cast<double>(m);
      const double inv = 1.0 / std::sqrt(var + eps);
      const double gm = static_cast<double>(gp[c]), bt = static_cast<double>(bp[c]);
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) {
          const i64 j = (n * g.c + c) * g.hw + i;
          yp[j] = static_cast<T>(gm * (static_cast<double>(xp[j]) - mean) * inv + bt);
        }
      r.mean.data<T>()[c] = static_cast<T>(mean);
      r.var.data<T>()[c] = static_cast<T>(var);
    }
  });
  return r;
}

Tensor ReferenceBackend::batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                      const Tensor& mean, const Tensor& var, double eps) {
  require_float(__func__, "x", x);
  const BnGeom g = bn_geom(__func__, x);
  require_channel_vector(__func__, "gamma", gamma, x);
  require_channel_vector(__func__, "beta", beta, x);
  require_channel_vector(__func__, "mean", mean, x);
  require_channel_vector(__func__, "var", var, x);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    for (i64 c = 0; c < g.c; ++c) {
      const double mu = static_cast<double>(mean.data<T>()[c]);
      const double inv = 1.0 / std::sqrt(static_cast<double>(var.data<T>()[c]) + eps);
      const double gm = static_cast<double>(gamma.data<T>()[c]), bt = static_cast<double>(beta.data<T>()[c]);
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) {
          const i64 j = (n * g.c + c) * g.hw + i;
          yp[j] = static_cast<T>(gm * (static_cast<double>(xp[j]) - mu) * inv + bt);
        }
    }
  });
  return y;
}

BatchNormGrads ReferenceBackend::batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                                     const Tensor& mean, const Tensor& var, double eps) {
  require_float(__func__, "x", x);
  const BnGeom g = bn_geom(__func__, x);
  require_same_dtype(__func__, "dy", dy, "x", x);
  require_same_shape(__func__, "dy", dy, "x", x);
  require_channel_vector(__func__, "gamma", gamma, x);
  require_channel_vector(__func__, "mean", mean, x);
  require_channel_vector(__func__, "var", var, x);
  const i64 m = g.n * g.hw;
  ANVIL_CHECK(m > 0, "input {} has no values per channel", x.desc());
  BatchNormGrads r;
  r.dx = Tensor::empty(x.shape(), x.dtype());
  r.dgamma = Tensor::empty(Shape{g.c}, x.dtype());
  r.dbeta = Tensor::empty(Shape{g.c}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = x.data<T>();
    const T* dyp = dy.data<T>();
    T* dxp = r.dx.data<T>();
    for (i64 c = 0; c < g.c; ++c) {
      const double mu = static_cast<double>(mean.data<T>()[c]);
      const double inv = 1.0 / std::sqrt(static_cast<double>(var.data<T>()[c]) + eps);
      const double gm = static_cast<double>(gamma.data<T>()[c]);
      double sdy = 0.0, sdyx = 0.0;  // Σ dy, Σ dy·xhat
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) {
          const i64 j = (n * g.c + c) * g.hw + i;
          const double d = static_cast<double>(dyp[j]);
          sdy += d;
          sdyx += d * (static_cast<double>(xp[j]) - mu) * inv;
        }
      const double md = sdy / static_cast<double>(m), mdx = sdyx / static_cast<double>(m);
      for (i64 n = 0; n < g.n; ++n)
        for (i64 i = 0; i < g.hw; ++i) {
          const i64 j = (n * g.c + c) * g.hw + i;
          const double xhat = (static_cast<double>(xp[j]) - mu) * inv;
          dxp[j] = static_cast<T>(gm * inv * (static_cast<double>(dyp[j]) - md - xhat * mdx));
        }
      r.dgamma.data<T>()[c] = static_cast<T>(sdyx);
      r.dbeta.data<T>()[c] = static_cast<T>(sdy);
    }
  });
  return r;
}

// ---------------------------------------------------------------------------------------------
// fused loss
// ---------------------------------------------------------------------------------------------

SoftmaxCrossEntropyResult ReferenceBackend::softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels) {
  require_float(__func__, "logits", logits);
  ANVIL_CHECK(logits.rank() == 2, "logits must be [N,C], got {}", logits.desc());
  const i64 n = logits.dim(0), c = logits.dim(1);
  require_labels(__func__, labels, n);
  SoftmaxCrossEntropyResult r;
  r.loss = Tensor::empty(Shape{n}, logits.dtype());
  r.prob = Tensor::empty(logits.shape(), logits.dtype());
  dispatch(logits.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* xp = logits.data<T>();
    T* pp = r.prob.data<T>();
    T* lp = r.loss.data<T>();
    for (i64 i = 0; i < n; ++i) {
      const i64 label = label_at("softmax_cross_entropy_forward", labels, i, c);
      const T* row = xp + i * c;
      double mx = -kInf;
      for (i64 j = 0; j < c; ++j) mx = std::max(mx, static_cast<double>(row[j]));
      double sum = 0.0;
      for (i64 j = 0; j < c; ++j) sum += std::exp(static_cast<double>(row[j]) - mx);
      for (i64 j = 0; j < c; ++j) pp[i * c + j] = static_cast<T>(std::exp(static_cast<double>(row[j]) - mx) / sum);
      // -log softmax[label] = log Σ exp(x - max) + max - x[label]
      lp[i] = static_cast<T>(std::log(sum) + mx - static_cast<double>(row[label]));
    }
  });
  return r;
}

Tensor ReferenceBackend::softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& prob, const Tensor& labels) {
  require_float(__func__, "prob", prob);
  ANVIL_CHECK(prob.rank() == 2, "prob must be [N,C], got {}", prob.desc());
  const i64 n = prob.dim(0), c = prob.dim(1);
  require_same_dtype(__func__, "dloss", dloss, "prob", prob);
  require_shape(__func__, "dloss", dloss, Shape{n});
  require_labels(__func__, labels, n);
  Tensor dx = Tensor::empty(prob.shape(), prob.dtype());
  dispatch(prob.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* pp = prob.data<T>();
    const T* dl = dloss.data<T>();
    T* dxp = dx.data<T>();
    for (i64 i = 0; i < n; ++i) {
      const i64 label = label_at("softmax_cross_entropy_backward", labels, i, c);
      const double d = static_cast<double>(dl[i]);
      for (i64 j = 0; j < c; ++j)
        dxp[i * c + j] = static_cast<T>(d * (static_cast<double>(pp[i * c + j]) - (j == label ? 1.0 : 0.0)));
    }
  });
  return dx;
}

// ---------------------------------------------------------------------------------------------
// in-place helpers and optimizer kernels
// ---------------------------------------------------------------------------------------------

void ReferenceBackend::axpy_(Tensor& dst, const Tensor& src, double alpha) {
  require_float(__func__, "dst", dst);
  require_same_dtype(__func__, "src", src, "dst", dst);
  require_same_shape(__func__, "src", src, "dst", dst);
  dispatch(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    T* d = dst.data<T>();
    const T* s = src.data<T>();
    for (i64 i = 0; i < dst.numel(); ++i)
      d[i] = static_cast<T>(static_cast<double>(d[i]) + alpha * static_cast<double>(s[i]));
  });
}

void ReferenceBackend::sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) {
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad, "param", param);
  require_same_shape(__func__, "grad", grad, "param", param);
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    for (i64 i = 0; i < param.numel(); ++i) {
      const double pv = static_cast<double>(p[i]);
      const double gv = static_cast<double>(g[i]) + weight_decay * pv;
      p[i] = static_cast<T>(pv - lr * gv);
    }
  });
}

void ReferenceBackend::momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum,
                                       double weight_decay, bool nesterov) {
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad, "param", param);
  require_same_shape(__func__, "grad", grad, "param", param);
  require_same_dtype(__func__, "moments", moments, "param", param);
  require_same_shape(__func__, "moments", moments, "param", param);
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* mp = moments.data<T>();
    for (i64 i = 0; i < param.numel(); ++i) {
      const double pv = static_cast<double>(p[i]);
      const double gv = static_cast<double>(g[i]) + weight_decay * pv;
      const double m = momentum * static_cast<double>(mp[i]) + gv;
      mp[i] = static_cast<T>(m);
      p[i] = static_cast<T>(nesterov ? pv - lr * (gv + momentum * m) : pv - lr * m);
    }
  });
}

void ReferenceBackend::adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                                   double beta2, double eps, double weight_decay, double beta1_power,
                                   double beta2_power, bool decoupled) {
  require_float(__func__, "param", param);
  require_same_dtype(__func__, "grad", grad, "param", param);
  require_same_shape(__func__, "grad", grad, "param", param);
  require_same_dtype(__func__, "m", m, "param", param);
  require_same_shape(__func__, "m", m, "param", param);
  require_same_dtype(__func__, "v", v, "param", param);
  require_same_shape(__func__, "v", v, "param", param);
  if (!decoupled)
    ANVIL_CHECK(beta1_power != 1.0, "beta1_power is 1 (step 0?): the bias correction 1/(1 - beta1_power) is undefined");
  const double step = decoupled ? lr : lr * std::sqrt(1.0 - beta2_power) / (1.0 - beta1_power);
  dispatch(param.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* mp = m.data<T>();
    T* vp = v.data<T>();
    for (i64 i = 0; i < param.numel(); ++i) {
      const double pv = static_cast<double>(p[i]);
      const double gv = decoupled ? static_cast<double>(g[i]) : static_cast<double>(g[i]) + weight_decay * pv;
      const double mv = beta1 * static_cast<double>(mp[i]) + (1.0 - beta1) * gv;
      const double vv = beta2 * static_cast<double>(vp[i]) + (1.0 - beta2) * gv * gv;
      mp[i] = static_cast<T>(mv);
      vp[i] = static_cast<T>(vv);
      const double upd = mv / (std::sqrt(vv) + eps);
      p[i] = static_cast<T>(decoupled ? pv - lr * (upd + weight_decay * pv) : pv - step * upd);
    }
  });
}

}  // namespace anvil
