#include "framework/backend/onednn/BatchNormKernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "framework/backend/onednn/Parallel.h"
#include "framework/core/Threads.h"

namespace anvil::onednn_detail {
namespace {

using i64 = std::int64_t;

// Two-lane double vectors (GCC/Clang vector extensions): float values are widened to double two at a
// time and summed in several independent accumulators, which the compiler cannot do on its own
// (floating-point sums are not reassociated without -ffast-math).
typedef double v2d __attribute__((vector_size(16)));

// p[0], p[1] widened to double. GCC 12 turns __builtin_convertvector of a 2-float vector into two
// scalar conversions, hence the SSE2 intrinsic (cvtps2pd) where there is one.
inline v2d load2d(const float* p) {
#if defined(__SSE2__)
  return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#else
  typedef float v2f __attribute__((vector_size(8)));
  v2f v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, v2d);
#endif
}
inline double hsum(v2d v) { return v[0] + v[1]; }

// Each channel's m = n*hw values, in (n, hw) order, are cut into blocks of kBlock values: the unit of
// the partial sums (and of the parallel work when there are few channels). Fixed, so that the order
// of every floating-point sum depends on the shape only.
constexpr i64 kBlock = 8192;

i64 blocks_per_channel(const BnShape& s) { return (s.n * s.hw + kBlock - 1) / kBlock; }

// The contiguous runs of block b of channel c: next() gives each one's offset into the tensor and
// length, in order.
class Runs {
 public:
  Runs(const BnShape& s, i64 c, i64 b)
      : s_(s), c_(c), idx_(b * kBlock), end_(std::min(s.n * s.hw, idx_ + kBlock)), img_(idx_ / s.hw),
        i_(idx_ - img_ * s.hw) {}
  bool next(i64& off, i64& len) {
    if (idx_ >= end_) return false;
    len = std::min(s_.hw - i_, end_ - idx_);
    off = (img_ * s_.c + c_) * s_.hw + i_;
    idx_ += len;
    ++img_;
    i_ = 0;
    return true;
  }

 private:
  const BnShape& s_;
  i64 c_, idx_, end_, img_, i_;
};

// Calls f(offset, len) for the contiguous runs of block b of channel c.
template <class F>
inline void for_runs(const BnShape& s, i64 c, i64 b, F&& f) {
  Runs r(s, c, b);
  i64 off = 0, len = 0;
  while (r.next(off, len)) f(off, len);
}

// ---- accumulators (fixed lane / tail order: bits depend on the sequence of runs only) ----

// sum x
struct SumAcc {
  v2d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  double t = 0.0;
  void add(const float* __restrict p, i64 len) {
    i64 i = 0;
    for (; i + 8 <= len; i += 8) {
      a0 += load2d(p + i);
      a1 += load2d(p + i + 2);
      a2 += load2d(p + i + 4);
      a3 += load2d(p + i + 6);
    }
    if (i + 4 <= len) {
      a0 += load2d(p + i);
      a1 += load2d(p + i + 2);
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
      const v2d d0 = load2d(p + i) - mm, d1 = load2d(p + i + 2) - mm, d2 = load2d(p + i + 4) - mm,
                d3 = load2d(p + i + 6) - mm;
      a0 += d0 * d0;
      a1 += d1 * d1;
      a2 += d2 * d2;
      a3 += d3 * d3;
    }
    if (i + 4 <= len) {
      const v2d d0 = load2d(p + i) - mm, d1 = load2d(p + i + 2) - mm;
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
      const v2d g0 = load2d(dy + i), g1 = load2d(dy + i + 2), g2 = load2d(dy + i + 4), g3 = load2d(dy + i + 6);
      s0 += g0;
      s1 += g1;
      s2 += g2;
      s3 += g3;
      q0 += g0 * (load2d(x + i) - mm);
      q1 += g1 * (load2d(x + i + 2) - mm);
      q2 += g2 * (load2d(x + i + 4) - mm);
      q3 += g3 * (load2d(x + i + 6) - mm);
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

// ---- per-block partials and elementwise passes ----

#if defined(__x86_64__) && defined(__GNUC__)
// AVX2 versions of the three partial sums: four lanes of double per instruction instead of two.
// Chosen once per process by the CPU (so results stay the same run to run on one machine; an AVX2
// and an SSE2-only machine differ in the last bits). No FMA: the products round as in the SSE2 code.
#define ANVIL_BN_AVX2 1
typedef double v4d __attribute__((vector_size(32)));

bool use_avx2() {
  // ANVIL_BN_ISA=sse2 forces the SSE2 loops (the tests run both on AVX2 machines).
  static const bool yes = [] {
    const char* isa = std::getenv("ANVIL_BN_ISA");
    return !(isa && std::string(isa) == "sse2") && __builtin_cpu_supports("avx2");
  }();
  return yes;
}

[[gnu::target("avx2")]] inline double hsum4(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

[[gnu::target("avx2"), gnu::noinline]] double block_sum_avx2(const BnShape& s, const float* x, i64 c, i64 b) {
  v4d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  double t = 0.0;
  Runs r(s, c, b);
  i64 off = 0, len = 0;
  while (r.next(off, len)) {
    const float* p = x + off;
    i64 i = 0;
    for (; i + 16 <= len; i += 16) {
      a0 += _mm256_cvtps_pd(_mm_loadu_ps(p + i));
      a1 += _mm256_cvtps_pd(_mm_loadu_ps(p + i + 4));
      a2 += _mm256_cvtps_pd(_mm_loadu_ps(p + i + 8));
      a3 += _mm256_cvtps_pd(_mm_loadu_ps(p + i + 12));
    }
    for (; i + 4 <= len; i += 4) a0 += _mm256_cvtps_pd(_mm_loadu_ps(p + i));
    for (; i < len; ++i) t += static_cast<double>(p[i]);
  }
  return hsum4((a0 + a1) + (a2 + a3)) + t;
}

[[gnu::target("avx2"), gnu::noinline]] double block_sq_avx2(const BnShape& s, const float* x, i64 c, i64 b,
                                                             double mean) {
  const v4d mm = {mean, mean, mean, mean};
  v4d a0 = {}, a1 = {}, a2 = {}, a3 = {};
  double t = 0.0;
  Runs r(s, c, b);
  i64 off = 0, len = 0;
  while (r.next(off, len)) {
    const float* p = x + off;
    i64 i = 0;
    for (; i + 16 <= len; i += 16) {
      const v4d d0 = _mm256_cvtps_pd(_mm_loadu_ps(p + i)) - mm, d1 = _mm256_cvtps_pd(_mm_loadu_ps(p + i + 4)) - mm,
                d2 = _mm256_cvtps_pd(_mm_loadu_ps(p + i + 8)) - mm, d3 = _mm256_cvtps_pd(_mm_loadu_ps(p + i + 12)) - mm;
      a0 += d0 * d0;
      a1 += d1 * d1;
      a2 += d2 * d2;
      a3 += d3 * d3;
    }
    for (; i + 4 <= len; i += 4) {
      const v4d d0 = _mm256_cvtps_pd(_mm_loadu_ps(p + i)) - mm;
      a0 += d0 * d0;
    }
    for (; i < len; ++i) {
      const double d = static_cast<double>(p[i]) - mean;
      t += d * d;
    }
  }
  return hsum4((a0 + a1) + (a2 + a3)) + t;
}

[[gnu::target("avx2"), gnu::noinline]] void block_bwd_avx2(const BnShape& s, const float* dy, const float* x, i64 c,
                                                            i64 b, double mean, double& sdy, double& sdyx) {
  const v4d mm = {mean, mean, mean, mean};
  v4d s0 = {}, s1 = {}, q0 = {}, q1 = {};
  double st = 0.0, qt = 0.0;
  Runs r(s, c, b);
  i64 off = 0, len = 0;
  while (r.next(off, len)) {
    const float* g = dy + off;
    const float* p = x + off;
    i64 i = 0;
    for (; i + 8 <= len; i += 8) {
      const v4d g0 = _mm256_cvtps_pd(_mm_loadu_ps(g + i)), g1 = _mm256_cvtps_pd(_mm_loadu_ps(g + i + 4));
      s0 += g0;
      s1 += g1;
      q0 += g0 * (_mm256_cvtps_pd(_mm_loadu_ps(p + i)) - mm);
      q1 += g1 * (_mm256_cvtps_pd(_mm_loadu_ps(p + i + 4)) - mm);
    }
    for (; i < len; ++i) {
      const double d = static_cast<double>(g[i]);
      st += d;
      qt += d * (static_cast<double>(p[i]) - mean);
    }
  }
  sdy = hsum4(s0 + s1) + st;
  sdyx = hsum4(q0 + q1) + qt;
}

#endif

// One block's partial sums (noinline: the fused and the split schedules call the very same code, so
// their sums are bit-identical).
[[gnu::noinline]] double block_sum(const BnShape& s, const float* x, i64 c, i64 b) {
#ifdef ANVIL_BN_AVX2
  if (use_avx2()) return block_sum_avx2(s, x, c, b);
#endif
  SumAcc acc;
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(x + off, len); });
  return acc.total();
}

[[gnu::noinline]] double block_sq(const BnShape& s, const float* x, i64 c, i64 b, double mean) {
#ifdef ANVIL_BN_AVX2
  if (use_avx2()) return block_sq_avx2(s, x, c, b, mean);
#endif
  SqAcc acc(mean);
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(x + off, len); });
  return acc.total();
}

[[gnu::noinline]] void block_bwd(const BnShape& s, const float* dy, const float* x, i64 c, i64 b, double mean,
                                 double& sdy, double& sdyx) {
#ifdef ANVIL_BN_AVX2
  if (use_avx2()) return block_bwd_avx2(s, dy, x, c, b, mean, sdy, sdyx);
#endif
  BwdAcc acc(mean);
  for_runs(s, c, b, [&](i64 off, i64 len) { acc.add(dy + off, x + off, len); });
  sdy = acc.sum_dy();
  sdyx = acc.sum_dyx();
}

// A double split into two floats, hi + lo, so that (v - hi) - lo keeps the double's precision when
// v is close to it (v - hi is then exact): x minus the double batch mean without rounding the mean.
struct Split {
  float hi, lo;
};
Split split(double v) {
  const float hi = static_cast<float>(v);
  return {hi, static_cast<float>(v - static_cast<double>(hi))};
}
inline float minus(float v, Split s) { return (v - s.hi) - s.lo; }

// y = (x - mu) * a + bt
struct NormCoef {
  Split mu;
  float a, bt;
};
NormCoef norm_coef(double mean, double var, double gamma, double beta, double eps) {
  const double inv = 1.0 / std::sqrt(var + eps);
  return {split(mean), static_cast<float>(gamma * inv), static_cast<float>(beta)};
}

void norm_run(const float* __restrict x, float* __restrict y, i64 len, NormCoef k) {
  for (i64 i = 0; i < len; ++i) y[i] = minus(x[i], k.mu) * k.a + k.bt;
}

void block_norm(const BnShape& s, const float* x, float* y, i64 c, i64 b, NormCoef k) {
  for_runs(s, c, b, [&](i64 off, i64 len) { norm_run(x + off, y + off, len, k); });
}

// dx = p * (dy - mean(dy)) + q * (x - mu): the reference's gamma * inv * (dy - mean(dy) - xhat * mean(dy
// xhat)) with both centred differences taken before scaling (no cancellation of large scaled terms).
struct DxCoef {
  Split mu, mdy;
  float p, q;
};
DxCoef dx_coef(const BnShape& s, double mean, double var, double gamma, double eps, double sdy, double sdyx) {
  const double m = static_cast<double>(s.n * s.hw);
  const double inv = 1.0 / std::sqrt(var + eps);
  const double k = gamma * inv;
  const double mean_dy = sdy / m, mean_dyxhat = sdyx * inv / m;
  return {split(mean), split(mean_dy), static_cast<float>(k), static_cast<float>(-k * inv * mean_dyxhat)};
}

inline float dx_value(float dy, float x, const DxCoef& k) { return k.p * minus(dy, k.mdy) + k.q * minus(x, k.mu); }

void dx_run(const float* __restrict dy, const float* __restrict x, float* __restrict dx, i64 len, DxCoef k) {
  for (i64 i = 0; i < len; ++i) dx[i] = dx_value(dy[i], x[i], k);
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
        for (i64 j = 0; j < w; ++j) out[j] = minus(row[j], k[j].mu) * k[j].a + k[j].bt;
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
        for (i64 j = 0; j < w; ++j) out[j] = minus(row[j], k[j].mu) * k[j].a + k[j].bt;
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
        for (i64 j = 0; j < w; ++j) out[j] = dx_value(g[j], row[j], k[j]);
      }
    }
  });
}

}  // namespace

const char* bn_loops_isa() {
#if defined(ANVIL_BN_AVX2)
  if (use_avx2()) return "avx2";
#endif
#if defined(__SSE2__)
  return "sse2";
#else
  return "scalar";
#endif
}

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
