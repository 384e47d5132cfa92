// Shape: the dimensions of a row-major tensor. Rank 0 is a scalar with one element.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace anvil {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<std::int64_t> dims) : dims_(std::move(dims)) {}

  /// Number of dimensions.
  std::size_t rank() const { return dims_.size(); }
  /// Dimension i; negative i counts from the end. Throws anvil::Error when out of range.
  std::int64_t operator[](std::int64_t i) const;
  std::int64_t& operator[](std::int64_t i);
  /// Product of the dimensions (1 for rank 0). Throws if a dimension is negative.
  std::int64_t numel() const;
  const std::vector<std::int64_t>& dims() const { return dims_; }
  std::vector<std::int64_t>& dims() { return dims_; }
  /// "[6,1,5,5]" — the spelling every error message uses.
  std::string str() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

 private:
  std::vector<std::int64_t> dims_;
};

/// Row-major (C order) strides in elements.
std::vector<std::int64_t> contiguous_strides(const Shape& s);

/// Numpy broadcasting of two shapes; throws anvil::Error naming both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b);

}  // namespace anvil
