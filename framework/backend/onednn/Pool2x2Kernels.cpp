#include "framework/backend/onednn/Pool2x2Kernels.h"

#include <algorithm>
#include <cstring>

#include "framework/backend/onednn/Parallel.h"

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

// Output columns are processed 4 at a time; the last group is moved back to end at ow (recomputing a
// few columns), so every step is a full vector. Needs ow >= 4.
inline std::int64_t vector_column(std::int64_t o, std::int64_t ow) { return o + 4 <= ow ? o : ow - 4; }

// One output row of each kernel. The row pointers are __restrict locals on purpose: the argmax
// bytes are a char type that may alias anything, and without the qualifier the compiler reloads
// every pointer after each byte store (1.7x slower).
void max_forward_row(const float* __restrict r0, const float* __restrict r1, float* __restrict y,
                     std::uint8_t* __restrict arg, std::int64_t ow) {
  if (ow < 4) {
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
      y[j] = m;
      arg[j] = a;
    }
    return;
  }
  for (std::int64_t o = 0; o < ow; o += 4) {
    const std::int64_t j = vector_column(o, ow);
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
    store4(y + j, m);
    for (int k = 0; k < 4; ++k) arg[j + k] = static_cast<std::uint8_t>(idx[k]);
  }
}

void max_backward_row(const float* __restrict g, const std::uint8_t* __restrict arg, float* __restrict r0,
                      float* __restrict r1, std::int64_t ow) {
  if (ow < 4) {
    for (std::int64_t j = 0; j < ow; ++j) {
      r0[2 * j] = arg[j] == 0 ? g[j] : 0.f;
      r0[2 * j + 1] = arg[j] == 1 ? g[j] : 0.f;
      r1[2 * j] = arg[j] == 2 ? g[j] : 0.f;
      r1[2 * j + 1] = arg[j] == 3 ? g[j] : 0.f;
    }
    return;
  }
  const v4f zero = {0.f, 0.f, 0.f, 0.f};
  for (std::int64_t o = 0; o < ow; o += 4) {
    const std::int64_t j = vector_column(o, ow);
    const v4f gv = load4(g + j);
    const v4i idx = {arg[j], arg[j + 1], arg[j + 2], arg[j + 3]};
    scatter(r0, r1, j, idx == 0 ? gv : zero, idx == 1 ? gv : zero, idx == 2 ? gv : zero, idx == 3 ? gv : zero);
  }
}

void avg_forward_row(const float* __restrict r0, const float* __restrict r1, float* __restrict y, std::int64_t ow) {
  if (ow < 4) {
    for (std::int64_t j = 0; j < ow; ++j) y[j] = (((r0[2 * j] + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) * 0.25f;
    return;
  }
  for (std::int64_t o = 0; o < ow; o += 4) {
    const std::int64_t j = vector_column(o, ow);
    const Corners c = corners(r0, r1, j);
    store4(y + j, (((c.a + c.b) + c.c) + c.d) * 0.25f);
  }
}

void avg_backward_row(const float* __restrict g, float* __restrict r0, float* __restrict r1, std::int64_t ow) {
  if (ow < 4) {
    for (std::int64_t j = 0; j < ow; ++j) r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = g[j] * 0.25f;
    return;
  }
  for (std::int64_t o = 0; o < ow; o += 4) {
    const std::int64_t j = vector_column(o, ow);
    const v4f q = load4(g + j) * 0.25f;
    scatter(r0, r1, j, q, q, q, q);
  }
}

// Zeroes what no window covers: the last column of an odd width and the last row of an odd height.
void zero_uncovered(const Pool2x2Shape& s, float* dxp) {
  if (s.w % 2)
    for (std::int64_t r = 0; r < 2 * s.oh(); ++r) dxp[r * s.w + s.w - 1] = 0.f;
  if (s.h % 2) std::memset(dxp + (s.h - 1) * s.w, 0, sizeof(float) * static_cast<std::size_t>(s.w));
}

// Runs body(p) for every plane on oneDNN's threads, in chunks of at least ~16K input elements.
template <typename F>
void for_planes(const Pool2x2Shape& s, F&& body) {
  const std::int64_t min_chunk = std::max<std::int64_t>(1, (std::int64_t{1} << 14) / std::max<std::int64_t>(1, s.h * s.w));
  parallel_for(s.planes, min_chunk, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t p = begin; p < end; ++p) body(p);
  });
}

}  // namespace

void max_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y, std::uint8_t* argmax) {
  const std::int64_t h = s.h, w = s.w, oh = s.oh(), ow = s.ow();
  for_planes(s, [=](std::int64_t p) {
    for (std::int64_t i = 0; i < oh; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      max_forward_row(r0, r0 + w, y + (p * oh + i) * ow, argmax + (p * oh + i) * ow, ow);
    }
  });
}

void max_pool2x2_backward(const Pool2x2Shape& s, const float* dy, const std::uint8_t* argmax, float* dx) {
  const std::int64_t h = s.h, w = s.w, oh = s.oh(), ow = s.ow();
  for_planes(s, [=](std::int64_t p) {
    float* dxp = dx + p * h * w;
    for (std::int64_t i = 0; i < oh; ++i) {
      float* r0 = dxp + 2 * i * w;
      max_backward_row(dy + (p * oh + i) * ow, argmax + (p * oh + i) * ow, r0, r0 + w, ow);
    }
    zero_uncovered(s, dxp);
  });
}

void avg_pool2x2_forward(const Pool2x2Shape& s, const float* x, float* y) {
  const std::int64_t h = s.h, w = s.w, oh = s.oh(), ow = s.ow();
  for_planes(s, [=](std::int64_t p) {
    for (std::int64_t i = 0; i < oh; ++i) {
      const float* r0 = x + (p * h + 2 * i) * w;
      avg_forward_row(r0, r0 + w, y + (p * oh + i) * ow, ow);
    }
  });
}

void avg_pool2x2_backward(const Pool2x2Shape& s, const float* dy, float* dx) {
  const std::int64_t h = s.h, w = s.w, oh = s.oh(), ow = s.ow();
  for_planes(s, [=](std::int64_t p) {
    float* dxp = dx + p * h * w;
    for (std::int64_t i = 0; i < oh; ++i) {
      float* r0 = dxp + 2 * i * w;
      avg_backward_row(dy + (p * oh + i) * ow, r0, r0 + w, ow);
    }
    zero_uncovered(s, dxp);
  });
}

}  // namespace anvil::onednn_detail
