#include "framework/core/Shape.h"

#include <algorithm>

#include "framework/core/Error.h"

namespace anvil {

std::int64_t Shape::operator[](std::int64_t i) const {
  const auto r = static_cast<std::int64_t>(dims_.size());
  ANVIL_CHECK(i >= -r && i < r, "dimension index {} out of range for shape {}", i, str());
  return dims_[static_cast<std::size_t>(i < 0 ? i + r : i)];
}

std::int64_t& Shape::operator[](std::int64_t i) {
  const auto r = static_cast<std::int64_t>(dims_.size());
  ANVIL_CHECK(i >= -r && i < r, "dimension index {} out of range for shape {}", i, str());
  return dims_[static_cast<std::size_t>(i < 0 ? i + r : i)];
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (auto d : dims_) {
    ANVIL_CHECK(d >= 0, "negative dimension in shape {}", str());
    n *= d;
  }
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (std::size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

std::vector<std::int64_t> contiguous_strides(const Shape& s) {
  std::vector<std::int64_t> st(s.rank(), 1);
  for (std::int64_t i = static_cast<std::int64_t>(s.rank()) - 2; i >= 0; --i)
    st[static_cast<std::size_t>(i)] = st[static_cast<std::size_t>(i + 1)] * s.dims()[static_cast<std::size_t>(i + 1)];
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.rank(), b.rank());
  std::vector<std::int64_t> out(r, 1);
  for (std::size_t i = 0; i < r; ++i) {
    const std::int64_t da = i < r - a.rank() ? 1 : a.dims()[i - (r - a.rank())];
    const std::int64_t db = i < r - b.rank() ? 1 : b.dims()[i - (r - b.rank())];
    ANVIL_CHECK(da == db || da == 1 || db == 1, "shapes {} and {} cannot be broadcast together", a.str(),
                b.str());
    out[i] = da == 1 ? db : da;
  }
  return Shape(std::move(out));
}

}  // namespace anvil
