// tensor_type strings and element conversions between storage dtypes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "framework/core/Error.h"
#include "serialization/TensorType.h"

namespace anvil {
namespace {

TEST(CkptTensorType, StringsRoundTripAndLegacySpellings) {
  for (int i = 0; i <= static_cast<int>(DType::kComplex128); ++i) {
    const auto dt = static_cast<DType>(i);
    EXPECT_EQ(parse_ms_tensor_type(ms_tensor_type(dt)), dt) << dtype_name(dt);
  }
  EXPECT_EQ(parse_ms_tensor_type("Uint8"), DType::kU8);
  EXPECT_EQ(parse_ms_tensor_type("Uint64"), DType::kU64);
  EXPECT_FALSE(parse_ms_tensor_type("str"));
  EXPECT_FALSE(parse_ms_tensor_type("Int4"));
  EXPECT_FALSE(parse_ms_tensor_type("float32"));  // numpy spelling: map tensors only
}

std::uint16_t to_half(float f) {
  std::uint16_t h;
  convert_elements(&f, DType::kF32, &h, DType::kF16, 1);
  return h;
}
float from_half(std::uint16_t h) {
  float f;
  convert_elements(&h, DType::kF16, &f, DType::kF32, 1);
  return f;
}

TEST(CkptTensorType, HalfAndBFloat16Conversions) {
  EXPECT_EQ(to_half(1.0f), 0x3C00);
  EXPECT_EQ(to_half(-2.5f), 0xC100);
  EXPECT_EQ(to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(to_half(65520.0f), 0x7C00);                     // rounds to +inf
  EXPECT_EQ(to_half(std::ldexp(1.0f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(to_half(std::ldexp(1.0f, -25)), 0x0000);        // halfway to 0: ties to even
  EXPECT_EQ(to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_TRUE(std::isnan(from_half(to_half(std::numeric_limits<float>::quiet_NaN()))));
  // Every half value survives half -> float -> half.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue;  // NaN payloads
    EXPECT_EQ(to_half(from_half(static_cast<std::uint16_t>(h))), h);
  }
  float f = 1.0f + std::ldexp(1.0f, -8);  // bf16 tie -> even (down)
  std::uint16_t b;
  convert_elements(&f, DType::kF32, &b, DType::kBF16, 1);
  EXPECT_EQ(b, 0x3F80);
  // float64 -> float16 rounds once (no double rounding through float32).
  const double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);  // just above the tie
  std::uint16_t h;
  convert_elements(&d, DType::kF64, &h, DType::kF16, 1);
  EXPECT_EQ(h, 0x3C01);
}

TEST(CkptTensorType, ConvertibilityRules) {
  EXPECT_TRUE(is_convertible_dtype(DType::kF16, DType::kF32));
  EXPECT_TRUE(is_convertible_dtype(DType::kI64, DType::kU8));
  EXPECT_FALSE(is_convertible_dtype(DType::kI32, DType::kF32));
  EXPECT_FALSE(is_convertible_dtype(DType::kBool, DType::kI32));
  EXPECT_FALSE(is_convertible_dtype(DType::kComplex64, DType::kF32));
  std::int64_t v[] = {-1, 300};
  std::uint8_t u[2];
  convert_elements(v, DType::kI64, u, DType::kU8, 2);
  EXPECT_EQ(u[0], 255);
  EXPECT_EQ(u[1], 44);
  EXPECT_THROW(convert_elements(v, DType::kI64, u, DType::kF32, 1), Error);
}

TEST(CkptTensorType, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("ü ✓ 𝄞"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x9c"));          // cut
}

}  // namespace
}  // namespace anvil
