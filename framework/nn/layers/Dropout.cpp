#include "framework/nn/layers/Dropout.h"

#include "framework/ops/Dropout.h"

namespace anvil::nn {

Dropout::Dropout(double p, std::int64_t seed)
    : p_(p), gen_(seed >= 0 ? static_cast<std::uint64_t>(seed) : default_generator().next_u64()) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "p must be in [0, 1), got {}", p);
}

Tensor Dropout::forward(const Tensor& x) { return ops::dropout(x, p_, gen_, training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", p_); }

}  // namespace anvil::nn
