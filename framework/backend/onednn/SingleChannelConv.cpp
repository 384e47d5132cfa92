#include "framework/backend/onednn/SingleChannelConv.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "framework/backend/onednn/Parallel.h"

namespace anvil::onednn_detail {
namespace {

// The kernels are compiled for AVX-512F only (the rest of the library targets baseline x86-64) and
// run only after single_channel_conv_applies() checked the CPU. Sixteen-lane GCC vectors; no helper
// takes or returns one (that would cross the default-target ABI), hence the macros below.
#define ANVIL_AVX512 __attribute__((target("avx512f")))
typedef float v16f __attribute__((vector_size(64)));

// Lanes t .. t+15 of the 32-float concatenation (lo, hi): x shifted left by t columns.
#define ANVIL_SHIFT(lo, hi, t)                                                                              \
  __builtin_shufflevector(lo, hi, t, t + 1, t + 2, t + 3, t + 4, t + 5, t + 6, t + 7, t + 8, t + 9, t + 10, \
                          t + 11, t + 12, t + 13, t + 14, t + 15)

constexpr std::int64_t kLanes = 16;
constexpr std::int64_t kChunkImages = 8;  // backward-weights work unit: fixed, for reproducible sums

bool cpu_has_avx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

// ---- forward: one image, output channels [k0, k0 + KB) ----
// y[k, i, j..j+15] = bias[k] + Σ_{r,s} w[k, r, s] · x[i + r, j + s .. j + s + 15]; the KB accumulators
// stay in registers over the whole r × s window.
template <int KB>
ANVIL_AVX512 void forward_block(const SingleChannelConvShape& g, const float* __restrict x, const float* __restrict w,
                                const float* bias, float* __restrict y) {
  const std::int64_t oh = g.oh(), ow = g.ow(), plane = oh * ow, rs = g.r * g.s;
  float b[KB];
  for (int a = 0; a < KB; ++a) b[a] = bias ? bias[a] : 0.f;
  for (std::int64_t i = 0; i < oh; ++i) {
    for (std::int64_t o = 0; o < ow; o += kLanes) {
      const std::int64_t j = o + kLanes <= ow ? o : ow - kLanes;  // last segment overlaps: same values
      v16f acc[KB];
      for (int a = 0; a < KB; ++a) acc[a] = v16f{} + b[a];
      for (std::int64_t r = 0; r < g.r; ++r) {
        const float* xr = x + (i + r) * g.w + j;
        const float* wr = w + r * g.s;
        for (std::int64_t s = 0; s < g.s; ++s) {
          v16f xv;
          std::memcpy(&xv, xr + s, sizeof xv);
          for (int a = 0; a < KB; ++a) acc[a] += wr[a * rs + s] * xv;
        }
      }
      for (int a = 0; a < KB; ++a) std::memcpy(y + a * plane + i * ow + j, &acc[a], sizeof acc[a]);
    }
  }
}

template <int KB>
void forward_kblock(int kb, const SingleChannelConvShape& g, const float* x, const float* w, const float* bias,
                    float* y) {
  if constexpr (KB > 0) {
    if (kb == KB) return forward_block<KB>(g, x, w, bias, y);
    forward_kblock<KB - 1>(kb, g, x, w, bias, y);
  }
}

// ---- backward weights: images [0, images) of a chunk, kernel row r, output channels [k0, k0 + KB) ----
// dw[k, r, s] += Σ_{n,i,j} dy[n, k, i, j] · x[n, i + r, j + s]. One x row segment is loaded once and
// shifted in registers for every s, then reused by KB output channels: KB × S accumulators.
template <int S, int KB>
ANVIL_AVX512 void backward_block(const SingleChannelConvShape& g, const float* const* x,
                                 const float* __restrict dy, std::int64_t images, std::int64_t k0, std::int64_t r,
                                 float* __restrict dw) {
  const std::int64_t oh = g.oh(), ow = g.ow(), plane = oh * ow;
  const std::int64_t full = ow / kLanes * kLanes, tail_start = ow - kLanes;
  const std::int64_t width = g.w, channels = g.k;  // locals: no reloads through g in the loop
  float mask_lanes[kLanes];  // the overlapping last segment counts only columns the full segments missed
  for (int l = 0; l < kLanes; ++l) mask_lanes[l] = tail_start + l >= full ? 1.f : 0.f;
  v16f tail_mask;
  std::memcpy(&tail_mask, mask_lanes, sizeof tail_mask);
  v16f acc[KB][S];
  for (int a = 0; a < KB; ++a)
    for (int s = 0; s < S; ++s) acc[a][s] = v16f{};
  for (std::int64_t n = 0; n < images; ++n) {
    for (std::int64_t i = 0; i < oh; ++i) {
      const float* xr = x[n] + (i + r) * width;
      const float* gr = dy + ((n * channels + k0) * oh + i) * ow;
      for (std::int64_t o = 0; o < ow; o += kLanes) {
        const bool tail = o + kLanes > ow;
        const std::int64_t j = tail ? tail_start : o;
        // Only columns j+16 .. j+16+S-2 of hi are used, and they exist (j + 15 + S - 1 <= w - 1); the
        // full load may run past the row end, into the next row or the padding of the last image (see
        // single_channel_conv_backward_weights). Any branch or masked load here makes GCC spill the
        // accumulators on every iteration (1.8x slower), hence the padding.
        v16f lo, hi;
        std::memcpy(&lo, xr + j, sizeof lo);
        std::memcpy(&hi, xr + j + kLanes, sizeof hi);
        v16f xs[S];
        xs[0] = lo;
        if constexpr (S > 1) xs[1] = ANVIL_SHIFT(lo, hi, 1);
        if constexpr (S > 2) xs[2] = ANVIL_SHIFT(lo, hi, 2);
        if constexpr (S > 3) xs[3] = ANVIL_SHIFT(lo, hi, 3);
        if constexpr (S > 4) xs[4] = ANVIL_SHIFT(lo, hi, 4);
        if constexpr (S > 5) xs[5] = ANVIL_SHIFT(lo, hi, 5);
        if constexpr (S > 6) xs[6] = ANVIL_SHIFT(lo, hi, 6);
        for (int a = 0; a < KB; ++a) {
          v16f gv;
          std::memcpy(&gv, gr + a * plane + j, sizeof gv);
          if (tail) gv *= tail_mask;
          for (int s = 0; s < S; ++s) acc[a][s] += gv * xs[s];
        }
      }
    }
  }
  for (int a = 0; a < KB; ++a) {
    for (int s = 0; s < S; ++s) {
      float t = 0.f;
      for (int l = 0; l < kLanes; ++l) t += acc[a][s][l];
      dw[((k0 + a) * g.r + r) * S + s] = t;
    }
  }
}

template <int S, int KB>
void backward_kblock(int kb, const SingleChannelConvShape& g, const float* const* x, const float* dy, std::int64_t images,
                     std::int64_t k0, std::int64_t r, float* dw) {
  if constexpr (KB > 0) {
    if (kb == KB) return backward_block<S, KB>(g, x, dy, images, k0, r, dw);
    backward_kblock<S, KB - 1>(kb, g, x, dy, images, k0, r, dw);
  }
}

// Output channels per pass: KB × S accumulators plus S shifted rows must fit 32 vector registers.
template <int S>
constexpr int kMaxKBlock = S == 3 ? 6 : S == 5 ? 4 : 3;

template <int S>
void backward_chunk(const SingleChannelConvShape& g, const float* const* x, const float* dy, std::int64_t images,
                    float* dw) {
  // Balanced channel blocks (6 channels with at most 4 per pass: 3 + 3, not 4 + 2).
  const std::int64_t passes = (g.k + kMaxKBlock<S> - 1) / kMaxKBlock<S>;
  for (std::int64_t r = 0; r < g.r; ++r) {
    std::int64_t k0 = 0;
    for (std::int64_t b = 0; b < passes; ++b) {
      const int kb = static_cast<int>(g.k / passes + (b < g.k % passes ? 1 : 0));
      backward_kblock<S, kMaxKBlock<S>>(kb, g, x, dy, images, k0, r, dw);
      k0 += kb;
    }
  }
}

// Σ of n floats in eight interleaved partial sums (vectorizable without reassociation flags; the
// fixed order keeps the result reproducible).
float plane_sum(const float* q, std::int64_t n) {
  float part[8] = {};
  std::int64_t e = 0;
  for (; e + 8 <= n; e += 8)
    for (int l = 0; l < 8; ++l) part[l] += q[e + l];
  float t = 0.f;
  for (; e < n; ++e) t += q[e];
  for (int l = 0; l < 8; ++l) t += part[l];
  return t;
}

}  // namespace

bool single_channel_conv_applies(const Shape& x, const Shape& w, const Conv2dParams& p) {
  if (x.rank() != 4 || w.rank() != 4 || x[1] != 1 || w[1] != 1 || p.groups != 1) return false;
  if (p.stride_h != 1 || p.stride_w != 1 || p.dilation_h != 1 || p.dilation_w != 1) return false;
  if (p.pad_top != 0 || p.pad_bottom != 0 || p.pad_left != 0 || p.pad_right != 0) return false;
  if (w[3] != 3 && w[3] != 5 && w[3] != 7) return false;
  if (x[2] < w[2] || x[3] - w[3] + 1 < kLanes) return false;
  return cpu_has_avx512f();
}

void single_channel_conv_forward(const SingleChannelConvShape& g, const float* x, const float* weights,
                                 const float* bias, float* y) {
  const std::int64_t plane = g.oh() * g.ow();
  parallel_for(g.n, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t n = begin; n < end; ++n) {
      for (std::int64_t k0 = 0; k0 < g.k; k0 += 8) {
        const int kb = static_cast<int>(std::min<std::int64_t>(8, g.k - k0));
        forward_kblock<8>(kb, g, x + n * g.h * g.w, weights + k0 * g.r * g.s, bias ? bias + k0 : nullptr,
                          y + (n * g.k + k0) * plane);
      }
    }
  });
}

void single_channel_conv_backward_weights(const SingleChannelConvShape& g, const float* x, const float* dy,
                                          float* dw, float* db) {
  const std::int64_t plane = g.oh() * g.ow(), wsize = g.k * g.r * g.s;
  const std::int64_t chunks = (g.n + kChunkImages - 1) / kChunkImages;
  std::vector<float> partial(static_cast<std::size_t>(chunks * (wsize + g.k)));
  // The kernel reads up to 16 floats past a row's segment: a copy of the last image with room after it.
  std::vector<float> last_image(static_cast<std::size_t>(g.h * g.w + 2 * kLanes), 0.f);
  std::copy(x + (g.n - 1) * g.h * g.w, x + g.n * g.h * g.w, last_image.begin());
  parallel_for(chunks, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t c = begin; c < end; ++c) {
      const std::int64_t n0 = c * kChunkImages, images = std::min(kChunkImages, g.n - n0);
      const float* xc[kChunkImages];
      for (std::int64_t n = 0; n < images; ++n)
        xc[n] = n0 + n == g.n - 1 ? last_image.data() : x + (n0 + n) * g.h * g.w;
      const float* dyc = dy + n0 * g.k * plane;
      float* pw = partial.data() + c * (wsize + g.k);
      switch (g.s) {
        case 3: backward_chunk<3>(g, xc, dyc, images, pw); break;
        case 5: backward_chunk<5>(g, xc, dyc, images, pw); break;
        default: backward_chunk<7>(g, xc, dyc, images, pw); break;
      }
      if (db) {
        float* pb = pw + wsize;
        for (std::int64_t k = 0; k < g.k; ++k) {
          float t = 0.f;
          for (std::int64_t n = 0; n < images; ++n) t += plane_sum(dyc + (n * g.k + k) * plane, plane);
          pb[k] = t;
        }
      }
    }
  });
  // Chunk partials are summed in chunk order: the result does not depend on the thread count.
  std::fill(dw, dw + wsize, 0.f);
  if (db) std::fill(db, db + g.k, 0.f);
  for (std::int64_t c = 0; c < chunks; ++c) {
    const float* pw = partial.data() + c * (wsize + g.k);
    for (std::int64_t e = 0; e < wsize; ++e) dw[e] += pw[e];
    if (db)
      for (std::int64_t k = 0; k < g.k; ++k) db[k] += pw[wsize + k];
  }
}

}  // namespace anvil::onednn_detail
