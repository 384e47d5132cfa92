// Argument checks and shape geometry shared by the backends (reference, oneDNN through the reference,
// CUDA), so that every backend rejects bad input with the same anvil::Error text. Internal: not part of
// the public API. Each message names the op through `fn` (detail::throw_error).
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "framework/core/Error.h"
#include "framework/tensor/Tensor.h"

namespace anvil::backend_detail {

/// Calls f(T{}) with T = float or double according to `dtype` (already checked to be a compute type).
template <typename F>
decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == DType::kF64) return f(double{});
  return f(float{});
}

inline void require_defined(const char* fn, const char* what, const Tensor& t) {
  if (!t.defined()) detail::throw_error(fn, fmt::format("{} is undefined", what));
}

inline void require_shape(const char* fn, const char* what, const Tensor& t, const Shape& want) {
  if (t.shape() != want)
    detail::throw_error(fn, fmt::format("{} {} does not have the expected shape {}", what, t.desc(), want.str()));
}

inline void require_same_shape(const char* fn, const char* what, const Tensor& t, const char* ref_what,
                               const Tensor& ref) {
  if (t.shape() != ref.shape())
    detail::throw_error(fn, fmt::format("shape mismatch: {} {} vs {} {}", what, t.desc(), ref_what, ref.desc()));
}

/// Labels of a batch of n: int32/int64 [n].
inline void require_labels(const char* fn, const Tensor& labels, std::int64_t n) {
  require_defined(fn, "labels", labels);
  if (labels.dtype() != DType::kI32 && labels.dtype() != DType::kI64)
    detail::throw_error(fn, fmt::format("labels must be int32 or int64, got {}", labels.desc()));
  if (labels.shape() != Shape{n})
    detail::throw_error(fn, fmt::format("labels {} do not match the batch size {} (expected [{}])", labels.desc(), n, n));
}

/// Softmax geometry: x as [outer, len, inner] around `axis` (0 <= axis < rank).
struct AxisGeom {
  std::int64_t outer, len, inner;
};
inline AxisGeom axis_geom(const char* fn, const Tensor& x, std::int64_t axis) {
  const auto r = static_cast<std::int64_t>(x.rank());
  if (axis < 0 || axis >= r)
    detail::throw_error(fn, fmt::format("axis {} out of range for {} (expected 0 <= axis < {})", axis, x.desc(), r));
  const auto& d = x.shape().dims();
  AxisGeom g{1, d[static_cast<std::size_t>(axis)], 1};
  for (std::int64_t i = 0; i < axis; ++i) g.outer *= d[static_cast<std::size_t>(i)];
  for (std::int64_t i = axis + 1; i < r; ++i) g.inner *= d[static_cast<std::size_t>(i)];
  return g;
}

/// Batch norm geometry: x [N, C, H, W] or [N, C].
struct BnGeom {
  std::int64_t n, c, hw;
};
inline BnGeom bn_geom(const char* fn, const Tensor& x) {
  if (x.rank() != 4 && x.rank() != 2)
    detail::throw_error(fn, fmt::format("input must be [N,C,H,W] or [N,C], got {}", x.desc()));
  return {x.dim(0), x.dim(1), x.rank() == 4 ? x.dim(2) * x.dim(3) : 1};
}

/// Embedding: int32/int64 indices, and a [vocab_size, embedding_size] table shape with positive sizes.
inline void require_indices(const char* fn, const Tensor& indices) {
  if (!indices.defined()) detail::throw_error(fn, "indices are undefined");
  if (indices.dtype() != DType::kI32 && indices.dtype() != DType::kI64)
    detail::throw_error(fn, fmt::format("indices must be int32 or int64, got {}", indices.desc()));
}
inline void require_table_shape(const char* fn, const Shape& table) {
  if (table.rank() != 2 || table[0] <= 0 || table[1] <= 0)
    detail::throw_error(fn, fmt::format("table must be [vocab_size, embedding_size] with positive sizes, got {}",
                                        table.str()));
}

}  // namespace anvil::backend_detail
