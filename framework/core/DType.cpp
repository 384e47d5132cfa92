#include "framework/core/DType.h"

#include "framework/core/Error.h"

namespace anvil {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kBool: return 1;
    case DType::kI8: return 1;
    case DType::kI16: return 2;
    case DType::kU16: return 2;
    case DType::kU32: return 4;
    case DType::kU64: return 8;
    case DType::kF16: return 2;
    case DType::kBF16: return 2;
    case DType::kComplex64: return 8;
    case DType::kComplex128: return 16;
  }
  ANVIL_THROW("unknown dtype code {}", static_cast<int>(t));
}

std::string dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF64: return "float64";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kBool: return "bool";
    case DType::kI8: return "int8";
    case DType::kI16: return "int16";
    case DType::kU16: return "uint16";
    case DType::kU32: return "uint32";
    case DType::kU64: return "uint64";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kComplex64: return "complex64";
    case DType::kComplex128: return "complex128";
  }
  return "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

bool is_compute_type(DType t) { return t == DType::kF32 || t == DType::kF64; }

bool is_floating(DType t) {
  return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16;
}

}  // namespace anvil
