#include "framework/optim/WarmupThen.h"

#include "framework/core/Error.h"

namespace anvil {

WarmupThen::WarmupThen(std::int64_t warmup_steps, std::shared_ptr<const LearningRateSchedule> after)
    : warmup_steps_(warmup_steps), after_(std::move(after)) {
  ANVIL_CHECK(warmup_steps > 0, "warmup_steps must be > 0, got {}", warmup_steps);
  ANVIL_CHECK(after_ != nullptr, "the schedule to continue with after the warm-up is null");
}

double WarmupThen::operator()(std::int64_t step) const {
  detail::check_schedule_step("WarmupThen", step);
  if (step >= warmup_steps_) return (*after_)(step - warmup_steps_);
  return (*after_)(0) * static_cast<double>(step) / static_cast<double>(warmup_steps_);
}

}  // namespace anvil
