#include "framework/ops/Dropout.h"

#include "framework/ops/Arithmetic.h"

namespace anvil::ops {

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "drop probability must be in [0, 1), got {}", p);
  if (!training || p == 0.0) return x;
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double keep_scale = 1.0 / (1.0 - p);
  const auto n = static_cast<std::size_t>(x.numel());
  auto fill = [&](auto z) {
    using T = decltype(z);
    T* m = mask.data<T>();
    for (std::size_t i = 0; i < n; ++i) m[i] = gen.uniform() < p ? T(0) : static_cast<T>(keep_scale);
  };
  if (x.dtype() == DType::kF64) fill(double{});
  else fill(float{});
  return mul(x, mask);
}

}  // namespace anvil::ops
