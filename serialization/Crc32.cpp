#include "serialization/Crc32.h"

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define ANVIL_CRC_PCLMUL 1
#endif

namespace anvil {
namespace {

std::uint32_t crc32_zlib(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  // zlib takes uInt lengths; feed it in pieces below 4 GiB.
  while (n > 0) {
    const std::size_t k = n > (1u << 30) ? (1u << 30) : n;
    crc = static_cast<std::uint32_t>(::crc32(crc, p, static_cast<uInt>(k)));
    p += k;
    n -= k;
  }
  return crc;
}

#ifdef ANVIL_CRC_PCLMUL
// Folding with carry-less multiplication, after V. Gopal, E. Ozturk et al., "Fast CRC Computation for
// Generic Polynomials Using PCLMULQDQ Instruction" (Intel, 2009). 128-bit lanes of the message are
// multiplied forward by x^(D±32) mod P (D = fold distance in bits) and xored into the data D bits
// later; at the end one lane is reduced to 64 bits and Barrett-reduced to 32. Constants are
// reflect32(x^e mod P) << 1 for the zlib polynomial P = 0x104C11DB7 (bit-reflected domain):
//   D = 2048: 0x11542778a / 0x1322d1430   (AVX-512: four 512-bit accumulators, 256 bytes per round)
//   D =  512: 0x154442bd4 / 0x1c6e41596   (SSE: four 128-bit accumulators, 64 bytes per round)
//   D =  128: 0x1751997d0 / 0x0ccaa009e   (one lane, 16 bytes per round)
// The running `crc` is the pre-inverted value (zlib's internal form).
#define ANVIL_CRC_SSE_TARGET __attribute__((target("pclmul,sse4.1")))
#define ANVIL_CRC_AVX512_TARGET __attribute__((target("pclmul,sse4.1,avx512f,avx512vl,vpclmulqdq")))

alignas(16) const std::uint64_t kFold512[] = {0x0154442bd4, 0x01c6e41596};
alignas(16) const std::uint64_t kFold128[] = {0x01751997d0, 0x00ccaa009e};
alignas(16) const std::uint64_t kFold64[] = {0x0163cd6124, 0x0000000000};
alignas(16) const std::uint64_t kBarrett[] = {0x01db710641, 0x01f7011641};

// One 128-bit fold: x * k (lo by lo, hi by hi) xor next.
ANVIL_CRC_SSE_TARGET inline __m128i fold128(__m128i x, __m128i k, __m128i next) {
  const __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  const __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

// Folds the remaining 16-byte blocks (n % 16 == 0) into x1 and reduces it to the 32-bit CRC.
ANVIL_CRC_SSE_TARGET inline std::uint32_t finish128(__m128i x1, const unsigned char* buf, std::size_t n) {
  __m128i x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold128));
  while (n >= 16) {
    x1 = fold128(x1, x0, _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf)));
    buf += 16;
    n -= 16;
  }
  // 128 -> 64 bits.
  __m128i x2 = _mm_clmulepi64_si128(x1, x0, 0x10);
  const __m128i x3 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_srli_si128(x1, 8);
  x1 = _mm_xor_si128(x1, x2);
  x0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kFold64));
  x2 = _mm_srli_si128(x1, 4);
  x1 = _mm_and_si128(x1, x3);
  x1 = _mm_clmulepi64_si128(x1, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  // Barrett reduction to 32 bits.
  x0 = _mm_load_si128(reinterpret_cast<const __m128i*>(kBarrett));
  x2 = _mm_and_si128(x1, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x10);
  x2 = _mm_and_si128(x2, x3);
  x2 = _mm_clmulepi64_si128(x2, x0, 0x00);
  x1 = _mm_xor_si128(x1, x2);
  return static_cast<std::uint32_t>(_mm_extract_epi32(x1, 1));
}

// Precondition: n >= 64 and n % 16 == 0.
ANVIL_CRC_SSE_TARGET std::uint32_t crc32_fold_sse(std::uint32_t crc, const unsigned char* buf, std::size_t n) {
  auto load = [](const unsigned char* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  __m128i x1 = _mm_xor_si128(load(buf), _mm_cvtsi32_si128(static_cast<int>(crc)));
  __m128i x2 = load(buf + 16), x3 = load(buf + 32), x4 = load(buf + 48);
  buf += 64;
  n -= 64;
  const __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold512));
  while (n >= 64) {
    x1 = fold128(x1, k, load(buf));
    x2 = fold128(x2, k, load(buf + 16));
    x3 = fold128(x3, k, load(buf + 32));
    x4 = fold128(x4, k, load(buf + 48));
    buf += 64;
    n -= 64;
  }
  const __m128i k1 = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold128));
  x1 = fold128(x1, k1, x2);
  x1 = fold128(x1, k1, x3);
  x1 = fold128(x1, k1, x4);
  return finish128(x1, buf, n);
}

// Four 128-bit folds at once.
ANVIL_CRC_AVX512_TARGET inline __m512i fold(__m512i x, __m512i k, __m512i next) {
  const __m512i lo = _mm512_clmulepi64_epi128(x, k, 0x00);
  const __m512i hi = _mm512_clmulepi64_epi128(x, k, 0x11);
  return _mm512_ternarylogic_epi64(lo, hi, next, 0x96);  // lo ^ hi ^ next
}

// Precondition: n >= 256 and n % 16 == 0.
ANVIL_CRC_AVX512_TARGET std::uint32_t crc32_fold_avx512(std::uint32_t crc, const unsigned char* buf,
                                                         std::size_t n) {
  __m512i a0 = _mm512_loadu_si512(buf);
  __m512i a1 = _mm512_loadu_si512(buf + 64);
  __m512i a2 = _mm512_loadu_si512(buf + 128);
  __m512i a3 = _mm512_loadu_si512(buf + 192);
  a0 = _mm512_xor_si512(a0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(crc))));
  buf += 256;
  n -= 256;
  const __m512i k2048 = _mm512_set_epi64(0x1322d1430, 0x11542778a, 0x1322d1430, 0x11542778a, 0x1322d1430,
                                         0x11542778a, 0x1322d1430, 0x11542778a);
  while (n >= 256) {
    a0 = fold(a0, k2048, _mm512_loadu_si512(buf));
    a1 = fold(a1, k2048, _mm512_loadu_si512(buf + 64));
    a2 = fold(a2, k2048, _mm512_loadu_si512(buf + 128));
    a3 = fold(a3, k2048, _mm512_loadu_si512(buf + 192));
    buf += 256;
    n -= 256;
  }
  const __m512i k512 = _mm512_set_epi64(0x1c6e41596, 0x154442bd4, 0x1c6e41596, 0x154442bd4, 0x1c6e41596,
                                        0x154442bd4, 0x1c6e41596, 0x154442bd4);
  a1 = fold(a0, k512, a1);
  a2 = fold(a1, k512, a2);
  a3 = fold(a2, k512, a3);
  const __m128i k128 = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold128));
  alignas(64) __m128i lanes[4];
  _mm512_store_si512(lanes, a3);
  __m128i x1 = lanes[0];
  x1 = fold128(x1, k128, lanes[1]);
  x1 = fold128(x1, k128, lanes[2]);
  x1 = fold128(x1, k128, lanes[3]);
  return finish128(x1, buf, n);
}

enum class CrcImpl { kZlib, kSse, kAvx512 };

CrcImpl crc_impl() {
  static const CrcImpl impl = [] {
    if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1")) return CrcImpl::kZlib;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("vpclmulqdq"))
      return CrcImpl::kAvx512;
    return CrcImpl::kSse;
  }();
  return impl;
}
#endif

}  // namespace

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
#ifdef ANVIL_CRC_PCLMUL
  const CrcImpl impl = crc_impl();
  if (n >= 64 && impl != CrcImpl::kZlib) {
    const std::size_t body = n & ~std::size_t{15};
    crc = ~(impl == CrcImpl::kAvx512 && body >= 256 ? crc32_fold_avx512(~crc, p, body) : crc32_fold_sse(~crc, p, body));
    p += body;
    n -= body;
  }
#endif
  return crc32_zlib(crc, p, n);
}

}  // namespace anvil
