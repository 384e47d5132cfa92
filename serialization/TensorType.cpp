#include "serialization/TensorType.h"

#include <bit>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {

static_assert(std::endian::native == std::endian::little,
              "checkpoint content is little-endian; big-endian hosts need byte swapping");

std::string_view ms_tensor_type(DType dtype) {
  switch (dtype) {
    case DType::kBool: return "Bool";
    case DType::kI8: return "Int8";
    case DType::kI16: return "Int16";
    case DType::kI32: return "Int32";
    case DType::kI64: return "Int64";
    case DType::kU8: return "UInt8";
    case DType::kU16: return "UInt16";
    case DType::kU32: return "UInt32";
    case DType::kU64: return "UInt64";
    case DType::kF16: return "Float16";
    case DType::kBF16: return "BFloat16";
    case DType::kF32: return "Float32";
    case DType::kF64: return "Float64";
    case DType::kComplex64: return "Complex64";
    case DType::kComplex128: return "Complex128";
  }
  ANVIL_THROW("unknown dtype code {}", static_cast<int>(dtype));
}

std::optional<DType> parse_ms_tensor_type(std::string_view s) {
  static constexpr std::pair<std::string_view, DType> kTable[] = {
      {"Float32", DType::kF32},   {"Float16", DType::kF16},   {"Float64", DType::kF64},
      {"BFloat16", DType::kBF16}, {"Int8", DType::kI8},       {"Int16", DType::kI16},
      {"Int32", DType::kI32},     {"Int64", DType::kI64},     {"UInt8", DType::kU8},
      {"UInt16", DType::kU16},    {"UInt32", DType::kU32},    {"UInt64", DType::kU64},
      {"Uint8", DType::kU8},      {"Uint16", DType::kU16},    {"Uint32", DType::kU32},
      {"Uint64", DType::kU64},    {"Bool", DType::kBool},     {"Complex64", DType::kComplex64},
      {"Complex128", DType::kComplex128},
  };
  for (const auto& [name, dt] : kTable)
    if (name == s) return dt;
  return std::nullopt;
}

bool is_integer_dtype(DType t) {
  switch (t) {
    case DType::kI8: case DType::kI16: case DType::kI32: case DType::kI64:
    case DType::kU8: case DType::kU16: case DType::kU32: case DType::kU64:
      return true;
    default:
      return false;
  }
}

bool is_convertible_dtype(DType from, DType to) {
  if (from == to) return true;
  return (is_floating(from) && is_floating(to)) || (is_integer_dtype(from) && is_integer_dtype(to));
}

namespace {

// IEEE binary16 <-> binary32, bit-exact (subnormals, infinities, NaN payloads kept where representable).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t man = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      bits = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

std::uint16_t float_to_half(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t exp = (x >> 23) & 0xffu;
  std::uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) {  // Inf / NaN (keep a quiet NaN bit)
    return static_cast<std::uint16_t>(sign | 0x7c00u | (man ? (0x200u | (man >> 13)) : 0u));
  }
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow -> Inf
  if (e <= 0) {                                                       // subnormal or zero
    if (e < -10) return sign;
    man |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t h = man >> shift;
    const std::uint32_t rem = man & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = (static_cast<std::uint32_t>(e) << 10) | (man >> 13);
  const std::uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: still correct
  return static_cast<std::uint16_t>(sign | h);
}

float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

std::uint16_t float_to_bf16(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);  // round to nearest even
  return static_cast<std::uint16_t>(x >> 16);
}

// Reads element i of a float type as double (exact for every float type).
double load_float(const void* p, DType t, std::size_t i) {
  switch (t) {
    case DType::kF16: return half_to_float(static_cast<const std::uint16_t*>(p)[i]);
    case DType::kBF16: return bf16_to_float(static_cast<const std::uint16_t*>(p)[i]);
    case DType::kF32: return static_cast<const float*>(p)[i];
    case DType::kF64: return static_cast<const double*>(p)[i];
    default: break;
  }
  ANVIL_THROW("not a float dtype: {}", dtype_name(t));
}

// double -> float rounding to odd: truncate toward zero, then set the last bit when inexact. A second
// rounding (to nearest even) to a format with at least 2 fewer significand bits is then correctly
// rounded, so double -> float16/bfloat16 goes through float without double-rounding errors.
float round_to_odd_float(double v) {
  float f = static_cast<float>(v);
  if (!std::isfinite(f) || static_cast<double>(f) == v) return f;
  if (std::fabs(static_cast<double>(f)) > std::fabs(v)) f = std::nextafter(f, 0.0f);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(f) | 1u);
}

void store_float(void* p, DType t, std::size_t i, double v) {
  switch (t) {
    case DType::kF16: static_cast<std::uint16_t*>(p)[i] = float_to_half(round_to_odd_float(v)); return;
    case DType::kBF16: static_cast<std::uint16_t*>(p)[i] = float_to_bf16(round_to_odd_float(v)); return;
    case DType::kF32: static_cast<float*>(p)[i] = static_cast<float>(v); return;
    case DType::kF64: static_cast<double*>(p)[i] = v; return;
    default: break;
  }
  ANVIL_THROW("not a float dtype: {}", dtype_name(t));
}

template <typename F>
void visit_integer(DType t, F&& f) {
  switch (t) {
    case DType::kI8: f(std::int8_t{}); return;
    case DType::kI16: f(std::int16_t{}); return;
    case DType::kI32: f(std::int32_t{}); return;
    case DType::kI64: f(std::int64_t{}); return;
    case DType::kU8: f(std::uint8_t{}); return;
    case DType::kU16: f(std::uint16_t{}); return;
    case DType::kU32: f(std::uint32_t{}); return;
    case DType::kU64: f(std::uint64_t{}); return;
    default: break;
  }
  ANVIL_THROW("not an integer dtype: {}", dtype_name(t));
}

}  // namespace

void convert_elements(const void* src, DType from, void* dst, DType to, std::size_t n) {
  if (from == to) {
    if (n) std::memmove(dst, src, n * dtype_size(from));
    return;
  }
  if (is_floating(from) && is_floating(to)) {
    for (std::size_t i = 0; i < n; ++i) store_float(dst, to, i, load_float(src, from, i));
    return;
  }
  if (is_integer_dtype(from) && is_integer_dtype(to)) {
    visit_integer(from, [&](auto zs) {
      using S = decltype(zs);
      const S* s = static_cast<const S*>(src);
      visit_integer(to, [&](auto zd) {
        using D = decltype(zd);
        D* d = static_cast<D*>(dst);
        for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<D>(s[i]);
      });
    });
    return;
  }
  ANVIL_THROW("cannot convert {} to {} (only float <-> float and integer <-> integer)", dtype_name(from),
              dtype_name(to));
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

std::string encode_utf32le(std::string_view utf8) {
  ANVIL_CHECK(is_valid_utf8(utf8), "string entry is not valid UTF-8 ({} bytes)", utf8.size());
  std::string out;
  out.reserve(utf8.size() * 4 + 4);
  auto put = [&](std::uint32_t cp) {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((cp >> (8 * k)) & 0xff));
  };
  std::size_t i = 0;
  while (i < utf8.size()) {
    const auto c = static_cast<unsigned char>(utf8[i]);
    std::size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
    std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3f);
    put(cp);
    i += len;
  }
  if (out.empty()) put(0);
  return out;
}

std::optional<std::string> decode_utf32le(const void* data, std::size_t n, std::string* error) {
  if (n % 4 != 0) {
    if (error) *error = fmt::format("{} bytes is not a multiple of 4 (UTF-32LE)", n);
    return std::nullopt;
  }
  const auto* p = static_cast<const unsigned char*>(data);
  std::size_t count = n / 4;
  auto cp_at = [&](std::size_t i) {
    return static_cast<std::uint32_t>(p[4 * i]) | (static_cast<std::uint32_t>(p[4 * i + 1]) << 8) |
           (static_cast<std::uint32_t>(p[4 * i + 2]) << 16) | (static_cast<std::uint32_t>(p[4 * i + 3]) << 24);
  };
  while (count > 0 && cp_at(count - 1) == 0) --count;  // numpy strips trailing NULs
  std::string out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint32_t cp = cp_at(i);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      if (error) *error = fmt::format("invalid code point U+{:X} at character {}", cp, i);
      return std::nullopt;
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  return out;
}

}  // namespace anvil
