// MindSpore tensor_type strings, element conversion between storage dtypes, and the UTF-32LE
// encoding of MindSpore string ("str") entries (specs/mindspore-ckpt.md §3, §5).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "framework/core/DType.h"

namespace anvil {

/// The tensor_type string MindSpore writes for `dtype`: "Float32", "Int64", "UInt8", "Bool",
/// "BFloat16", "Complex64", ... Every DType has one.
std::string_view ms_tensor_type(DType dtype);

/// Parses a tensor_type string: every string ms_tensor_type() gives, plus the MindSpore <= 1.5 reader's
/// "Uint8".."Uint64". Returns nullopt for anything else, including "str" and "Int4" (callers report those).
std::optional<DType> parse_ms_tensor_type(std::string_view tensor_type);

/// True for the integer types (signed and unsigned; not bool).
bool is_integer_dtype(DType dtype);

/// True when load_param_into_net may convert `from` into `to` (non-strict mode): float <-> float
/// (float16, bfloat16, float32, float64) or integer <-> integer. Equal types are trivially convertible.
bool is_convertible_dtype(DType from, DType to);

/// Converts n elements from `src` (type `from`) into `dst` (type `to`), as a C cast would (floats round
/// to nearest even, NaN stays NaN; integers wrap). Precondition: is_convertible_dtype(from, to) or
/// from == to (a byte copy). Throws anvil::Error for any other pair.
void convert_elements(const void* src, DType from, void* dst, DType to, std::size_t n);

/// Encodes UTF-8 text as MindSpore's "str" content: UTF-32LE code points, no BOM, no terminator; an
/// empty string becomes one U+0000 (as numpy writes it). Throws anvil::Error for invalid UTF-8.
std::string encode_utf32le(std::string_view utf8);

/// Decodes "str" content into UTF-8, dropping trailing U+0000 (as numpy does). Returns nullopt and sets
/// `error` when the length is not a multiple of 4 or a code point is a surrogate or above U+10FFFF.
std::optional<std::string> decode_utf32le(const void* data, std::size_t n, std::string* error);

/// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace anvil
