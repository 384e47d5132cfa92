#include "framework/optim/ExponentialDecayLR.h"

#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

ExponentialDecayLR::ExponentialDecayLR(double learning_rate, double decay_rate, std::int64_t decay_steps,
                                       bool is_stair)
    : learning_rate_(learning_rate), decay_rate_(decay_rate), decay_steps_(decay_steps), is_stair_(is_stair) {
  ANVIL_CHECK(std::isfinite(learning_rate) && learning_rate > 0.0, "learning_rate must be finite and > 0, got {}",
              learning_rate);
  ANVIL_CHECK(std::isfinite(decay_rate) && decay_rate > 0.0, "decay_rate must be finite and > 0, got {}", decay_rate);
  ANVIL_CHECK(decay_steps > 0, "decay_steps must be > 0, got {}", decay_steps);
}

double ExponentialDecayLR::operator()(std::int64_t step) const {
  detail::check_schedule_step("ExponentialDecayLR", step);
  const double p = is_stair_ ? static_cast<double>(step / decay_steps_)
                             : static_cast<double>(step) / static_cast<double>(decay_steps_);
  return learning_rate_ * std::pow(decay_rate_, p);
}

}  // namespace anvil
