#include "framework/optim/LearningRateSchedule.h"

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil::detail {

void check_schedule_step(const char* who, std::int64_t step) {
  if (step < 0) throw Error(fmt::format("{}: step must be >= 0, got {}", who, step));
}

}  // namespace anvil::detail
