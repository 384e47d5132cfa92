#include "framework/backend/onednn/Pool2x2Kernels.h"

#include <cstring>

namespace anvil::onednn_detail {
namespace {

// Four-lane vectors (GCC/Clang vector extensions: SSE on x86-64, NEON on arm64, scalar elsewhere).
// Branch-free selects matter here: on random data the branchy scalar max mispredicts half the time.
typedef float v4f __attribute__((vector_size(16)));
typedef std::int32_t v4i __attribute__((vector_size(16)));

inline v4f load4(const float* p) {
  v4f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, v4f v) { std::memcpy(p, &v, sizeof v); }

// The four corners of 4 consecutive windows starting at output column `ow` of row pair (r0, r1).
struct Corners {
  v4f a, b, c, d;  // top-left, top-right, bottom-left, bottom-right
};
inline Corners corners(const float* r0, const float* r1, std::int64_t ow) {
  const v4f l0 = load4(r0 + 2 * ow), h0 = load4(r0 + 2 * ow + 4);
  const v4f l1 = load4(r1 + 2 * ow), h1 = load4(r1 + 2 * ow + 4);
  return {__builtin_shufflevector(l0, h0, 0, 2, 4, 6), __builtin_shufflevector(l0, h0, 1, 3, 5, 7),
          __builtin_shufflevector(l1, h1, 0, 2, 4, 6), __builtin_shufflevector(l1, h1, 1, 3, 5, 7)};
}

// Writes the 4 windows' values (v00 top-left ... v11 bottom-right) back in place.
inline void scatter(float* r0, float* r1, std::int64_t ow, v4f v00, v4f v01, v4f v10, v4f v11) {
  store4(r0 + 2 * ow, __builtin_shufflevector(v00, v01, 0, 4, 1, 5));
  store4(r0 + 2 * ow + 4, __builtin_shufflevector(v00, v01, 2, 6, 3, 7));
  store4(r1 + 2 * ow, __builtin_shufflevector(v10, v11, 0, 4, 1, 5));
  store4(r1 + 2 * ow + 4, __builtin_shufflevector(v10, v11, 2, 6, 3, 7));
}

// Calls body(ow) for groups of 4 output columns covering [0, ow_count); the last group is moved
// back to end at ow_count (recomputing a few columns), so every call is a full vector. ow_count >= 4.
template <typename F>
inline void for_vector_columns(std::int64_t ow_count, F&& body) {
  for (std::int64_t o = 0; o < ow_count; o += 4) body(o + 4 <= ow_count ? o : ow_count - 4);
}

// Zeroes what no window covers: the last column of an odd width and the last row of an odd height.
void zero_uncovered(const Pool2x2Shape& s, float* dxp) {
  if (s.w % 2)
    for (std::int64_t r = 0; r < 2 * s.oh(); ++r) dxp[r * s.w + s.w - 1] = 0.f;
  if (s.h % 2) std::memset(dxp + (s.h - 1) * s.w, 0, sizeof(float) * static_cast<std::size_t>(s.w));
}

}  // namespace

void max_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y, std::uint8_t* argmax) {
  const std::int64_t oh = s.oh(), ow = s.ow();
  for (std::int64_t p = 0; p < s.planes; ++p) {
    for (std::int64_t i = 0; i < oh; ++i) {
      const float* r0 = x + (p * s.h + 2 * i) * s.w;
      const float* r1 = r0 + s.w;
      float* yr = y + (p * oh + i) * ow;
      std::uint8_t* ar = argmax + (p * oh + i) * ow;
      if (ow >= 4) {
        for_vector_columns(ow, [&](std::int64_t j) {
          const Corners c = corners(r0, r1, j);
          // Strictly greater replaces: the first maximum in row-major window order wins.
          v4f m = c.a;
          v4i idx = {0, 0, 0, 0};
          v4i gt = c.b > m;
          m = gt ? c.b : m;
          idx = gt ? 1 : idx;
          gt = c.c > m;
          m = gt ? c.c : m;
          idx = gt ? 2 : idx;
          gt = c.d > m;
          m = gt ? c.d : m;
          idx = gt ? 3 : idx;
          store4(yr + j, m);
          for (int k = 0; k < 4; ++k) ar[j + k] = static_cast<std::uint8_t>(idx[k]);
        });
      } else {
        for (std::int64_t j = 0; j < ow; ++j) {
          const float v[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
          float m = v[0];
          std::uint8_t a = 0;
          for (std::uint8_t k = 1; k < 4; ++k) {
            if (v[k] > m) {
              m = v[k];
              a = k;
            }
          }
          yr[j] = m;
          ar[j] = a;
        }
      }
    }
  }
}

void max_pool2x2_backward(const Pool2x2Shape& s, const float* dy, const std::uint8_t* argmax, float* dx) {
  const std::int64_t oh = s.oh(), ow = s.ow();
  for (std::int64_t p = 0; p < s.planes; ++p) {
    float* dxp = dx + p * s.h * s.w;
    for (std::int64_t i = 0; i < oh; ++i) {
      float* r0 = dxp + 2 * i * s.w;
      float* r1 = r0 + s.w;
      const float* g = dy + (p * oh + i) * ow;
      const std::uint8_t* ar = argmax + (p * oh + i) * ow;
      if (ow >= 4) {
        for_vector_columns(ow, [&](std::int64_t j) {
          const v4f gv = load4(g + j);
          const v4i idx = {ar[j], ar[j + 1], ar[j + 2], ar[j + 3]};
          const v4f zero = {0.f, 0.f, 0.f, 0.f};
          scatter(r0, r1, j, idx == 0 ? gv : zero, idx == 1 ? gv : zero, idx == 2 ? gv : zero, idx == 3 ? gv : zero);
        });
      } else {
        for (std::int64_t j = 0; j < ow; ++j) {
          r0[2 * j] = ar[j] == 0 ? g[j] : 0.f;
          r0[2 * j + 1] = ar[j] == 1 ? g[j] : 0.f;
          r1[2 * j] = ar[j] == 2 ? g[j] : 0.f;
          r1[2 * j + 1] = ar[j] == 3 ? g[j] : 0.f;
        }
      }
    }
    zero_uncovered(s, dxp);
  }
}

void avg_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y) {
  const std::int64_t oh = s.oh(), ow = s.ow();
  for (std::int64_t p = 0; p < s.planes; ++p) {
    for (std::int64_t i = 0; i < oh; ++i) {
      const float* r0 = x + (p * s.h + 2 * i) * s.w;
      const float* r1 = r0 + s.w;
      float* yr = y + (p * oh + i) * ow;
      if (ow >= 4) {
        for_vector_columns(ow, [&](std::int64_t j) {
          const Corners c = corners(r0, r1, j);
          store4(yr + j, (((c.a + c.b) + c.c) + c.d) * 0.25f);
        });
      } else {
        for (std::int64_t j = 0; j < ow; ++j)
          yr[j] = (((r0[2 * j] + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) * 0.25f;
      }
    }
  }
}

void avg_pool2x2_backward(const Pool2x2Shape& s, const float* dy, float* dx) {
  const std::int64_t oh = s.oh(), ow = s.ow();
  for (std::int64_t p = 0; p < s.planes; ++p) {
    float* dxp = dx + p * s.h * s.w;
    for (std::int64_t i = 0; i < oh; ++i) {
      float* r0 = dxp + 2 * i * s.w;
      float* r1 = r0 + s.w;
      const float* g = dy + (p * oh + i) * ow;
      if (ow >= 4) {
        for_vector_columns(ow, [&](std::int64_t j) {
          const v4f q = load4(g + j) * 0.25f;
          scatter(r0, r1, j, q, q, q, q);
        });
      } else {
        for (std::int64_t j = 0; j < ow; ++j) r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = g[j] * 0.25f;
      }
    }
    zero_uncovered(s, dxp);
  }
}

}  // namespace anvil::onednn_detail
