#include "framework/optim/WarmUpLR.h"

#include <algorithm>
#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

WarmUpLR::WarmUpLR(double learning_rate, std::int64_t warmup_steps)
    : learning_rate_(learning_rate), warmup_steps_(warmup_steps) {
  ANVIL_CHECK(std::isfinite(learning_rate) && learning_rate > 0.0, "learning_rate must be finite and > 0, got {}",
              learning_rate);
  ANVIL_CHECK(warmup_steps > 0, "warmup_steps must be > 0, got {}", warmup_steps);
}

double WarmUpLR::operator()(std::int64_t step) const {
  detail::check_schedule_step("WarmUpLR", step);
  return learning_rate_ * static_cast<double>(std::min(step, warmup_steps_)) / static_cast<double>(warmup_steps_);
}

}  // namespace anvil
