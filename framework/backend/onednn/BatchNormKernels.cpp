#include "framework/backend/onednn/BatchNormKernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "framework/backend/onednn/Parallel.h"
#include "framework/core/Threads.h"

namespace anvil::onednn_detail {
namespace {

using i64 = std::int64_t;

// Two-lane double / float vectors (GCC/Clang vector extensions): float values are widened to double
// two at a time and summed in several independent accumulators, which the compiler cannot do on its
// own (floating-point sums are not reassociated without -ffast-math).
typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline v2d lo(v4f v) { return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1), v2d); }
inline v2d hi(v4f v) { return __builtin_convertvector(__builtin_shufflevector(v, v, 2, 3), v2d); }
inline double hsum(v2d v) { return v[0] + v[1]; }

// Each channel's m = n*hw values, in (n, hw) order, are cut into blocks of kBlock values: the unit of
// the partial sums (and of the parallel work when there are few channels). Fixed, so that the order
// of every floating-point sum depends on the shape only.
constexpr i64 kBlock = 8192;

i64 blocks_per_channel(const BnShape& s) { return (s.n * s.hw + kBlock - 1) / kBlock; }

// Calls f(offset, len) for the contiguous runs of block b of channel c (offsets into the tensor).
template <class F>
inline void for_runs(const BnShape& s, i64 c, i64 b, F&& f) {
  i64 idx = b * kBlock;
  const i64 end = std::min(s.n * s.hw, idx + kBlock);
  i64 img = idx / s.hw, i = idx - img * s.hw;
  while (idx < end) {
    const i64 len = std::min(s.hw - i, end - idx);
    f((img * s.c + c) * s.hw + i, len);
    idx += len;
    ++img;
    i = 0;
  }
}

// ---- accumulators (fixed lane / tail order: bits depend on the sequence of runs only) ----

// sum x
struct SumAcc {
  v2d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  double t = 0.0;
  void add(const float* __restrict p, i64 len) {
    i64 i = 0;
    for (; i + 8 <= len; i += 8) {
      const v4f u = load4(p + i), v = load4(p + i + 4);
      a0 += lo(u);
      a1 += hi(u);
      a2 += lo(v);
      a3 += hi(v);
    }
    if (i + 4 <= len) {
      const v4f u = load4(p + i);
      a0 += lo(u);
      a1 += hi(u);
      i += 4;
    }
    for (; i < len; ++i) t += static_cast<double>(p[i]);
  }
  double total() const { return hsum((a0 + a1) + (a2 + a3)) + t; }
};

// sum (x - mean)^2
struct SqAcc {
  explicit SqAcc(double mean) : mu(mean), mm{mean, mean} {}
  double mu;
  v2d mm;
  v2d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  double t = 0.0;
  void add(const float* __restrict p, i64 len) {
    i64 i = 0;
    for (; i + 8 <= len; i += 8) {
      const v4f u = load4(p + i), v = load4(p + i + 4);
      const v2d d0 = lo(u) - mm, d1 = hi(u) - mm, d2 = lo(v) - mm, d3 = hi(v) - mm;
      a0 += d0 * d0;
      a1 += d1 * d1;
      a2 += d2 * d2;
      a3 += d3 * d3;
    }
    if (i + 4 <= len) {
      const v4f u = load4(p + i);
      const v2d d0 = lo(u) - mm, d1 = hi(u) - mm;
      a0 += d0 * d0;
      a1 += d1 * d1;
      i += 4;
    }
    for (; i < len; ++i) {
      const double d = static_cast<double>(p[i]) - mu;
      t += d * d;
    }
  }
  double total() const { return hsum((a0 + a1) + (a2 + a3)) + t; }
};

// sum dy and sum dy * (x - mean)
struct BwdAcc {
  explicit BwdAcc(double mean) : mu(mean), mm{mean, mean} {}
  double mu;
  v2d mm;
  v2d s0 = {}, s1 = {}, s2 = {}, s3 = {}, q0 = {}, q1 = {}, q2 = {}, q3 = {};
  double st = 0.0, qt = 0.0;
  void add(const float* __restrict dy, const float* __restrict x, i64 len) {
    i64 i = 0;
    for (; i + 8 <= len; i += 8) {
      const v4f gu = load4(dy + i), gv = load4(dy + i + 4), xu = load4(x + i), xv = load4(x + i + 4);
      const v2d g0 = lo(gu), g1 = hi(gu), g2 = lo(gv), g3 = hi(gv);
      s0 += g0;
      s1 += g1;
      s2 += g2;
      s3 += g3;
      q0 += g0 * (lo(xu) - mm);
      q1 += g1 * (hi(xu) - mm);
      q2 += g2 * (lo(xv) - mm);
      q3 += g3 * (hi(xv) - mm);
    }
    for (; i < len; ++i) {
      const double g = static_cast<double>(dy[i]);
      st += g;
      qt += g * (static_cast<double>(x[i]) - mu);
    }
  }
  double sum_dy() const { return hsum((s0 + s1) + (s2 + s3)) + st; }
  double sum_dyx() const { return hsum((q0 + q1) + (q2 + q3)) + qt; }
};

// ---- per-block partials and elementwise passes (not inlined: the fused and the split schedules
// call the very same code, so their sums are bit-identical) ----

[[gnu::noinline]] double block_sum(const BnShape& s, const float* x, i64 c, i64 b) {
  SumAcc acc;
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(x + off, len); });
  return acc.total();
}

[[gnu::noinline]] double block_sq(const BnShape& s, const float* x, i64 c, i64 b, double mean) {
  SqAcc acc(mean);
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(x + off, len); });
  return acc.total();
}

[[gnu::noinline]] void block_bwd(const BnShape& s, const float* dy, const float* x, i64 c, i64 b, double mean,
                                 double& sdy, double& sdyx) {
  BwdAcc acc(mean);
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(dy + off, x + off, len); });
  sdy = acc.sum_dy();
  sdyx = acc.sum_dyx();
}

// y = (x - mu) * a + bt
struct NormCoef {
  float mu, a, bt;
};
NormCoef norm_coef(double mean, double var, double gamma, double beta, double eps) {
  const double inv = 1.0 / std::sqrt(var + eps);
  return {static_cast<float>(mean), static_cast<float>(gamma * inv), static_cast<float>(beta)};
}

void norm_run(const float* __restrict x, float* __restrict y, i64 len, NormCoef k) {
  for (i64 i = 0; i < len; ++i) y[i] = (x[i] - k.mu) * k.a + k.bt;
}

void block_norm(const BnShape& s, const float* x, float* y, i64 c, i64 b, NormCoef k) {
  for_runs(s, c, b, [&](i64 off, i64 len) { norm_run(x + off, y + off, len, k); });
}

// dx = p * dy + (q * (x - mu) + r)
struct DxCoef {
  float mu, p, q, r;
};
DxCoef dx_coef(const BnShape& s, double mean, double var, double gamma, double eps, double sdy, double sdyx) {
  const double m = static_cast<double>(s.n * s.hw);
  const double inv = 1.0 / std::sqrt(var + eps);
  const double k = gamma * inv;
  const double mean_dy = sdy / m, mean_dyxhat = sdyx * inv / m;
  return {static_cast<float>(mean), static_cast<float>(k), static_cast<float>(-k * inv * mean_dyxhat),
          static_cast<float>(-k * mean_dy)};
}

void dx_run(const float* __restrict dy, const float* __restrict x, float* __restrict dx, i64 len, DxCoef k) {
  for (i64 i = 0; i < len; ++i) dx[i] = k.p * dy[i] + (k.q * (x[i] - k.mu) + k.r);
}

void block_dx(const BnShape& s, const float* dy, const float* x, float* dx, i64 c, i64 b, DxCoef k) {
  for_runs(s, c, b, [&](i64 off, i64 len) { dx_run(dy + off, x + off, dx + off, len, k); });
}

// Whole channels per thread (each channel's passes run back to back while its values are in cache)
// when there are enough channels to share out; otherwise (c, block) items per pass.
bool per_channel_schedule(const BnShape& s, i64 nb) {
  return nb == 1 || s.c >= 4 * static_cast<i64>(std::max(1, get_num_threads()));
}

// ---- [N, C] (hw == 1): rows of channels; each thread takes a channel range and walks the rows, so
// the inner loops run across contiguous channels. Per channel the sums go row by row. ----
constexpr i64 kColTile = 256;

i64 col_min_chunk(const BnShape& s) { return std::max<i64>(1, 16384 / std::max<i64>(1, s.n)); }

void col_forward_training(const BnShape& s, const float* x, const float* gamma, const float* beta, double eps,
                          float* y, float* mean, float* var) {
  parallel_for(s.c, col_min_chunk(s), [&](i64 c0, i64 c1) {
    double sum[kColTile], sq[kColTile], mu[kColTile];
    NormCoef k[kColTile];
    const double m = static_cast<double>(s.n);
    for (i64 t0 = c0; t0 < c1; t0 += kColTile) {
      const i64 w = std::min(kColTile, c1 - t0);
      std::fill(sum, sum + w, 0.0);
      std::fill(sq, sq + w, 0.0);
      for (i64 r = 0; r < s.n; ++r) {
        const float* row = x + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) sum[j] += static_cast<double>(row[j]);
      }
      for (i64 j = 0; j < w; ++j) mu[j] = sum[j] / m;
      for (i64 r = 0; r < s.n; ++r) {
        const float* row = x + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) {
          const double d = static_cast<double>(row[j]) - mu[j];
          sq[j] += d * d;
        }
      }
      for (i64 j = 0; j < w; ++j) {
        const double v = sq[j] / m;
        mean[t0 + j] = static_cast<float>(mu[j]);
        var[t0 + j] = static_cast<float>(v);
        k[j] = norm_coef(mu[j], v, gamma[t0 + j], beta[t0 + j], eps);
      }
      for (i64 r = 0; r < s.n; ++r) {
        const float* row = x + r * s.c + t0;
        float* out = y + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) out[j] = (row[j] - k[j].mu) * k[j].a + k[j].bt;
      }
    }
  });
}

void col_forward_inference(const BnShape& s, const float* x, const float* gamma, const float* beta,
                           const float* mean, const float* var, double eps, float* y) {
  parallel_for(s.c, col_min_chunk(s), [&](i64 c0, i64 c1) {
    NormCoef k[kColTile];
    for (i64 t0 = c0; t0 < c1; t0 += kColTile) {
      const i64 w = std::min(kColTile, c1 - t0);
      for (i64 j = 0; j < w; ++j) k[j] = norm_coef(mean[t0 + j], var[t0 + j], gamma[t0 + j], beta[t0 + j], eps);
      for (i64 r = 0; r < s.n; ++r) {
        const float* row = x + r * s.c + t0;
        float* out = y + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) out[j] = (row[j] - k[j].mu) * k[j].a + k[j].bt;
      }
    }
  });
}

void col_backward(const BnShape& s, const float* dy, const float* x, const float* gamma, const float* mean,
                  const float* var, double eps, float* dx, float* dgamma, float* dbeta) {
  parallel_for(s.c, col_min_chunk(s), [&](i64 c0, i64 c1) {
    double sdy[kColTile], sdyx[kColTile], mu[kColTile];
    DxCoef k[kColTile];
    for (i64 t0 = c0; t0 < c1; t0 += kColTile) {
      const i64 w = std::min(kColTile, c1 - t0);
      for (i64 j = 0; j < w; ++j) {
        sdy[j] = 0.0;
        sdyx[j] = 0.0;
        mu[j] = mean[t0 + j];
      }
      for (i64 r = 0; r < s.n; ++r) {
        const float* g = dy + r * s.c + t0;
        const float* row = x + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) {
          const double d = static_cast<double>(g[j]);
          sdy[j] += d;
          sdyx[j] += d * (static_cast<double>(row[j]) - mu[j]);
        }
      }
      for (i64 j = 0; j < w; ++j) {
        const double inv = 1.0 / std::sqrt(static_cast<double>(var[t0 + j]) + eps);
        dgamma[t0 + j] = static_cast<float>(sdyx[j] * inv);
        dbeta[t0 + j] = static_cast<float>(sdy[j]);
        k[j] = dx_coef(s, mu[j], var[t0 + j], gamma[t0 + j], eps, sdy[j], sdyx[j]);
      }
      for (i64 r = 0; r < s.n; ++r) {
        const float* g = dy + r * s.c + t0;
        const float* row = x + r * s.c + t0;
        float* out = dx + r * s.c + t0;
        for (i64 j = 0; j < w; ++j) out[j] = k[j].p * g[j] + (k[j].q * (row[j] - k[j].mu) + k[j].r);
      }
    }
  });
}

}  // namespace

void bn_forward_training(const BnShape& s, const float* x, const float* gamma, const float* beta, double eps,
                         float* y, float* mean, float* var) {
  if (s.hw == 1) return col_forward_training(s, x, gamma, beta, eps, y, mean, var);
  const i64 nb = blocks_per_channel(s);
  const double m = static_cast<double>(s.n * s.hw);
  if (per_channel_schedule(s, nb)) {
    parallel_for(s.c, 1, [&](i64 c0, i64 c1) {
      for (i64 c = c0; c < c1; ++c) {
        double sum = 0.0, sq = 0.0;
        for (i64 b = 0; b < nb; ++b) sum += block_sum(s, x, c, b);
        const double mu = sum / m;
        for (i64 b = 0; b < nb; ++b) sq += block_sq(s, x, c, b, mu);
        const double v = sq / m;
        mean[c] = static_cast<float>(mu);
        var[c] = static_cast<float>(v);
        const NormCoef k = norm_coef(mu, v, gamma[c], beta[c], eps);
        for (i64 b = 0; b < nb; ++b) block_norm(s, x, y, c, b, k);
      }
    });
    return;
  }
  // Few channels: (channel, block) items, partials combined per channel in block order.
  const i64 items = s.c * nb;
  std::vector<double> part(static_cast<std::size_t>(items)), mu(static_cast<std::size_t>(s.c));
  std::vector<NormCoef> coef(static_cast<std::size_t>(s.c));
  parallel_for(items, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) part[i] = block_sum(s, x, i / nb, i % nb);
  });
  for (i64 c = 0; c < s.c; ++c) {
    double sum = 0.0;
    for (i64 b = 0; b < nb; ++b) sum += part[c * nb + b];
    mu[c] = sum / m;
  }
  parallel_for(items, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) part[i] = block_sq(s, x, i / nb, i % nb, mu[i / nb]);
  });
  for (i64 c = 0; c < s.c; ++c) {
    double sq = 0.0;
    for (i64 b = 0; b < nb; ++b) sq += part[c * nb + b];
    const double v = sq / m;
    mean[c] = static_cast<float>(mu[c]);
    var[c] = static_cast<float>(v);
    coef[c] = norm_coef(mu[c], v, gamma[c], beta[c], eps);
  }
  parallel_for(items, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) block_norm(s, x, y, i / nb, i % nb, coef[i / nb]);
  });
}

void bn_forward_inference(const BnShape& s, const float* x, const float* gamma, const float* beta,
                          const float* mean, const float* var, double eps, float* y) {
  if (s.hw == 1) return col_forward_inference(s, x, gamma, beta, mean, var, eps, y);
  const i64 nb = blocks_per_channel(s);
  parallel_for(s.c * nb, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) {
      const i64 c = i / nb;
      block_norm(s, x, y, c, i % nb, norm_coef(mean[c], var[c], gamma[c], beta[c], eps));
    }
  });
}

void bn_backward(const BnShape& s, const float* dy, const float* x, const float* gamma, const float* mean,
                 const float* var, double eps, float* dx, float* dgamma, float* dbeta) {
  if (s.hw == 1) return col_backward(s, dy, x, gamma, mean, var, eps, dx, dgamma, dbeta);
  const i64 nb = blocks_per_channel(s);
  auto finish = [&](i64 c, double sdy, double sdyx) {
    const double inv = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    dgamma[c] = static_cast<float>(sdyx * inv);
    dbeta[c] = static_cast<float>(sdy);
    return dx_coef(s, mean[c], var[c], gamma[c], eps, sdy, sdyx);
  };
  if (per_channel_schedule(s, nb)) {
    parallel_for(s.c, 1, [&](i64 c0, i64 c1) {
      for (i64 c = c0; c < c1; ++c) {
        double sdy = 0.0, sdyx = 0.0;
        for (i64 b = 0; b < nb; ++b) {
          double a = 0.0, q = 0.0;
          block_bwd(s, dy, x, c, b, mean[c], a, q);
          sdy += a;
          sdyx += q;
        }
        const DxCoef k = finish(c, sdy, sdyx);
        for (i64 b = 0; b < nb; ++b) block_dx(s, dy, x, dx, c, b, k);
      }
    });
    return;
  }
  const i64 items = s.c * nb;
  std::vector<double> pdy(static_cast<std::size_t>(items)), pdyx(static_cast<std::size_t>(items));
  std::vector<DxCoef> coef(static_cast<std::size_t>(s.c));
  parallel_for(items, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) block_bwd(s, dy, x, i / nb, i % nb, mean[i / nb], pdy[i], pdyx[i]);
  });
  for (i64 c = 0; c < s.c; ++c) {
    double sdy = 0.0, sdyx = 0.0;
    for (i64 b = 0; b < nb; ++b) {
      sdy += pdy[c * nb + b];
      sdyx += pdyx[c * nb + b];
    }
    coef[c] = finish(c, sdy, sdyx);
  }
  parallel_for(items, 1, [&](i64 i0, i64 i1) {
    for (i64 i = i0; i < i1; ++i) block_dx(s, dy, x, dx, i / nb, i % nb, coef[i / nb]);
  });
}

}  // namespace anvil::onednn_detail
