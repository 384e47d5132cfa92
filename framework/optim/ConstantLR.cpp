#include "framework/optim/ConstantLR.h"

#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

ConstantLR::ConstantLR(double lr) : lr_(lr) {
  ANVIL_CHECK(std::isfinite(lr) && lr >= 0.0, "learning rate must be finite and >= 0, got {}", lr);
}

double ConstantLR::operator()(std::int64_t step) const {
  detail::check_schedule_step("ConstantLR", step);
  return lr_;
}

}  // namespace anvil
