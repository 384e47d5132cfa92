// Reference (plain-loop) layer normalization and embedding gather / scatter-add: the oracle for the
// ops added with Embedding and LayerNorm. Kept beside ReferenceBackend.cpp rather than inside it so
// the two files can evolve independently; same conventions: float32 and float64, accumulation in
// double, loops walk contiguous memory.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "framework/backend/detail/ArgChecks.h"
#include "framework/backend/reference/ReferenceBackend.h"
#include "framework/core/Error.h"

namespace anvil {
namespace {

using i64 = std::int64_t;
using backend_detail::dispatch;
using backend_detail::require_indices;
using backend_detail::require_table_shape;

void require_compute(const char* fn, const char* what, const Tensor& t) {
  if (!t.defined()) detail::throw_error(fn, fmt::format("{} is undefined", what));
  if (!t.device().is_cpu())
    detail::throw_error(fn, fmt::format("{} {} is on {}; the reference backend computes on CPU only", what,
                                        t.desc(), t.device().str()));
  if (!is_compute_type(t.dtype()))
    detail::throw_error(fn, fmt::format("{} must be float32 or float64, got {}", what, t.desc()));
}

void require_like(const char* fn, const char* what, const Tensor& t, const char* ref_what, const Tensor& ref) {
  require_compute(fn, what, t);
  if (t.dtype() != ref.dtype())
    detail::throw_error(fn, fmt::format("dtype mismatch: {} {} vs {} {}", what, t.desc(), ref_what, ref.desc()));
}

// x viewed as [M, D] with D = gamma.numel().
struct LnGeom {
  i64 m, d;
};

LnGeom ln_geom(const char* fn, const Tensor& x, const Tensor& gamma) {
  require_compute(fn, "x", x);
  require_like(fn, "gamma", gamma, "x", x);
  const i64 d = gamma.numel();
  if (d <= 0 || x.numel() % d != 0)
    detail::throw_error(fn, fmt::format("input {} cannot be viewed as rows of gamma's {} elements ({})", x.desc(), d,
                                        gamma.desc()));
  return {x.numel() / d, d};
}

void require_stats(const char* fn, const char* what, const Tensor& t, const Tensor& x, i64 m) {
  require_like(fn, what, t, "x", x);
  if (t.numel() != m)
    detail::throw_error(fn, fmt::format("{} {} does not have one value per row ({} rows of {})", what, t.desc(), m,
                                        x.desc()));
}

// Index i of `indices` (int32 or int64), checked against [0, v).
i64 index_at(const char* fn, const Tensor& indices, i64 i, i64 v) {
  const i64 idx = indices.dtype() == DType::kI32 ? static_cast<i64>(indices.data<std::int32_t>()[i])
                                                 : indices.data<std::int64_t>()[i];
  if (idx < 0 || idx >= v)
    detail::throw_error(fn, fmt::format("index {} at position {} of {} is outside [0, {}) (vocab_size {})", idx, i,
                                        indices.desc(), v, v));
  return idx;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// layer norm
// ---------------------------------------------------------------------------------------------

LayerNormResult ReferenceBackend::layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                     double eps) {
  const LnGeom g = ln_geom(__func__, x, gamma);
  require_like(__func__, "beta", beta, "x", x);
  if (beta.numel() != g.d)
    detail::throw_error(__func__, fmt::format("beta {} and gamma {} differ in size", beta.desc(), gamma.desc()));
  LayerNormResult r;
  r.y = Tensor::empty(x.shape(), x.dtype());
  r.mean = Tensor::empty(Shape{g.m}, x.dtype());
  r.var = Tensor::empty(Shape{g.m}, x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* gp = gamma.data<T>();
    const T* bp = beta.data<T>();
    for (i64 row = 0; row < g.m; ++row) {
      const T* xr = x.data<T>() + row * g.d;  // [D]
      T* yr = r.y.data<T>() + row * g.d;
      double sum = 0.0;
      for (i64 j = 0; j < g.d; ++j) sum += static_cast<double>(xr[j]);
      const double mean = sum / static_cast<double>(g.d);
      double sq = 0.0;
      for (i64 j = 0; j < g.d; ++j) {
        const double dv = static_cast<double>(xr[j]) - mean;
        sq += dv * dv;
      }
      const double var = sq / static_cast<double>(g.d);
      const double inv = 1.0 / std::sqrt(var + eps);
      for (i64 j = 0; j < g.d; ++j)
        yr[j] = static_cast<T>((static_cast<double>(xr[j]) - mean) * inv * static_cast<double>(gp[j]) +
                               static_cast<double>(bp[j]));
      r.mean.data<T>()[row] = static_cast<T>(mean);
      r.var.data<T>()[row] = static_cast<T>(var);
    }
  });
  return r;
}

LayerNormGrads ReferenceBackend::layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                                     const Tensor& mean, const Tensor& var, double eps) {
  const LnGeom g = ln_geom(__func__, x, gamma);
  require_like(__func__, "dy", dy, "x", x);
  if (dy.shape() != x.shape())
    detail::throw_error(__func__, fmt::format("shape mismatch: dy {} vs x {}", dy.desc(), x.desc()));
  require_stats(__func__, "mean", mean, x, g.m);
  require_stats(__func__, "var", var, x, g.m);
  LayerNormGrads r;
  r.dx = Tensor::empty(x.shape(), x.dtype());
  r.dgamma = Tensor::empty(gamma.shape(), x.dtype());
  r.dbeta = Tensor::empty(gamma.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    const T* gp = gamma.data<T>();
    std::vector<double> dgamma(static_cast<std::size_t>(g.d), 0.0), dbeta(static_cast<std::size_t>(g.d), 0.0);
    for (i64 row = 0; row < g.m; ++row) {
      const T* xr = x.data<T>() + row * g.d;  // [D]
      const T* dyr = dy.data<T>() + row * g.d;
      T* dxr = r.dx.data<T>() + row * g.d;
      const double mu = static_cast<double>(mean.data<T>()[row]);
      const double inv = 1.0 / std::sqrt(static_cast<double>(var.data<T>()[row]) + eps);
      // With xhat = (x - mu) * inv and g = dy * gamma:
      // dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
      double sg = 0.0, sgx = 0.0;
      for (i64 j = 0; j < g.d; ++j) {
        const double xhat = (static_cast<double>(xr[j]) - mu) * inv;
        const double gj = static_cast<double>(dyr[j]) * static_cast<double>(gp[j]);
        sg += gj;
        sgx += gj * xhat;
        dgamma[static_cast<std::size_t>(j)] += static_cast<double>(dyr[j]) * xhat;
        dbeta[static_cast<std::size_t>(j)] += static_cast<double>(dyr[j]);
      }
      const double mg = sg / static_cast<double>(g.d), mgx = sgx / static_cast<double>(g.d);
      for (i64 j = 0; j < g.d; ++j) {
        const double xhat = (static_cast<double>(xr[j]) - mu) * inv;
        const double gj = static_cast<double>(dyr[j]) * static_cast<double>(gp[j]);
        dxr[j] = static_cast<T>(inv * (gj - mg - xhat * mgx));
      }
    }
    for (i64 j = 0; j < g.d; ++j) {
      r.dgamma.data<T>()[j] = static_cast<T>(dgamma[static_cast<std::size_t>(j)]);
      r.dbeta.data<T>()[j] = static_cast<T>(dbeta[static_cast<std::size_t>(j)]);
    }
  });
  return r;
}

// ---------------------------------------------------------------------------------------------
// embedding
// ---------------------------------------------------------------------------------------------

Tensor ReferenceBackend::embedding_forward(const Tensor& table, const Tensor& indices) {
  require_compute(__func__, "table", table);
  require_table_shape(__func__, table.shape());
  require_indices(__func__, indices);
  const i64 v = table.dim(0), e = table.dim(1), n = indices.numel();
  std::vector<i64> out_dims = indices.shape().dims();
  out_dims.push_back(e);
  Tensor y = Tensor::empty(Shape(out_dims), table.dtype());  // [S..., E]
  const std::size_t row_bytes = static_cast<std::size_t>(e) * dtype_size(table.dtype());
  const auto* src = static_cast<const unsigned char*>(table.data_ptr());
  auto* dst = static_cast<unsigned char*>(y.data_ptr());
  for (i64 i = 0; i < n; ++i) {
    const i64 idx = index_at("embedding_forward", indices, i, v);
    std::memcpy(dst + static_cast<std::size_t>(i) * row_bytes, src + static_cast<std::size_t>(idx) * row_bytes,
                row_bytes);
  }
  return y;
}

Tensor ReferenceBackend::embedding_backward(const Tensor& dy, const Tensor& indices, const Shape& table_shape,
                                            std::int64_t padding_idx) {
  require_compute(__func__, "dy", dy);
  require_table_shape(__func__, table_shape);
  require_indices(__func__, indices);
  const i64 v = table_shape[0], e = table_shape[1], n = indices.numel();
  if (dy.numel() != n * e || dy.rank() == 0 || dy.dim(static_cast<i64>(dy.rank()) - 1) != e)
    detail::throw_error(__func__, fmt::format("dy {} does not match indices {} and table {} (expected [{}..., {}])",
                                              dy.desc(), indices.desc(), table_shape.str(),
                                              indices.shape().str(), e));
  Tensor dt = Tensor::zeros(table_shape, dy.dtype());
  dispatch(dy.dtype(), [&](auto z) {
    using T = decltype(z);
    // Accumulate in double so repeated indices sum with one final rounding, as the other ops do.
    std::vector<double> acc(static_cast<std::size_t>(v * e), 0.0);
    const T* dyp = dy.data<T>();
    for (i64 i = 0; i < n; ++i) {
      const i64 idx = index_at("embedding_backward", indices, i, v);
      if (idx == padding_idx) continue;
      double* row = acc.data() + idx * e;
      for (i64 j = 0; j < e; ++j) row[j] += static_cast<double>(dyp[i * e + j]);
    }
    T* dp = dt.data<T>();
    for (std::size_t k = 0; k < acc.size(); ++k) dp[k] = static_cast<T>(acc[k]);
  });
  return dt;
}

}  // namespace anvil
