#include "framework/nn/layers/Dropout2d.h"

#include "framework/ops/Dropout.h"

namespace anvil::nn {

Dropout2d::Dropout2d(double p, std::int64_t seed)
    : p_(p), gen_(seed >= 0 ? static_cast<std::uint64_t>(seed) : default_generator().next_u64()) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "Dropout2d: p must be in [0, 1), got {}", p);
}

Tensor Dropout2d::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.rank() == 4, "Dropout2d(p={}): input must be [N,C,H,W], got {}", p_,
              x.defined() ? x.desc() : "undefined");
  return ops::dropout2d(x, p_, gen_, training());
}

std::string Dropout2d::extra_repr() const { return fmt::format("p={}", p_); }

}  // namespace anvil::nn
