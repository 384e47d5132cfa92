#include "framework/optim/CosineDecayLR.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "framework/core/Error.h"

namespace anvil {

CosineDecayLR::CosineDecayLR(double min_lr, double max_lr, std::int64_t decay_steps)
    : min_lr_(min_lr), max_lr_(max_lr), decay_steps_(decay_steps) {
  ANVIL_CHECK(std::isfinite(min_lr) && min_lr >= 0.0, "min_lr must be finite and >= 0, got {}", min_lr);
  ANVIL_CHECK(std::isfinite(max_lr) && max_lr > 0.0, "max_lr must be finite and > 0, got {}", max_lr);
  ANVIL_CHECK(min_lr < max_lr, "max_lr ({}) must be greater than min_lr ({})", max_lr, min_lr);
  ANVIL_CHECK(decay_steps > 0, "decay_steps must be > 0, got {}", decay_steps);
}

double CosineDecayLR::operator()(std::int64_t step) const {
  detail::check_schedule_step("CosineDecayLR", step);
  const double p = static_cast<double>(std::min(step, decay_steps_)) / static_cast<double>(decay_steps_);
  return min_lr_ + 0.5 * (max_lr_ - min_lr_) * (1.0 + std::cos(std::numbers::pi * p));
}

}  // namespace anvil
