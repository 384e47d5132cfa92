// Element types. Compute happens in kF32 (and kF64 for gradient checks on the reference backend);
// integer types hold labels and counters; the remaining types are storage-only (checkpoints).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace anvil {

enum class DType : std::uint8_t {
  kF32,
  kF64,
  kI32,
  kI64,
  kU8,
  // Storage-only types (checkpoint round-trips; no arithmetic).
  kBool,
  kI8,
  kI16,
  kU16,
  kU32,
  kU64,
  kF16,
  kBF16,
  kComplex64,
  kComplex128,
};

/// Size of one element in bytes.
std::size_t dtype_size(DType t);
/// Lower-case name: "float32", "float64", "int32", ... (used in every error message).
std::string dtype_name(DType t);
/// True for kF32 and kF64: the types the backends compute in.
bool is_compute_type(DType t);
/// True for kF16, kBF16, kF32, kF64.
bool is_floating(DType t);

/// Maps a C++ element type to its DType (float, double, int32_t, int64_t, uint8_t).
template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::kU8; }

}  // namespace anvil
