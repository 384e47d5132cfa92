#include "framework/optim/PiecewiseConstantLR.h"

#include <algorithm>
#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

PiecewiseConstantLR::PiecewiseConstantLR(std::vector<std::int64_t> milestones, std::vector<double> values)
    : milestones_(std::move(milestones)), values_(std::move(values)) {
  ANVIL_CHECK(!milestones_.empty(), "milestones must not be empty");
  ANVIL_CHECK(milestones_.size() == values_.size(), "{} milestones but {} values; they must have the same length",
              milestones_.size(), values_.size());
  for (std::size_t i = 0; i < milestones_.size(); ++i) {
    ANVIL_CHECK(milestones_[i] > 0, "milestones[{}] must be > 0, got {}", i, milestones_[i]);
    ANVIL_CHECK(i == 0 || milestones_[i] >= milestones_[i - 1],
                "milestones must be non-decreasing, but milestones[{}] = {} < milestones[{}] = {}", i,
                milestones_[i], i - 1, i == 0 ? 0 : milestones_[i - 1]);
    ANVIL_CHECK(std::isfinite(values_[i]) && values_[i] >= 0.0, "values[{}] must be finite and >= 0, got {}", i,
                values_[i]);
  }
}

double PiecewiseConstantLR::operator()(std::int64_t step) const {
  detail::check_schedule_step("PiecewiseConstantLR", step);
  // First milestone strictly greater than step: its value applies; none -> hold the last value.
  const auto it = std::upper_bound(milestones_.begin(), milestones_.end(), step);
  if (it == milestones_.end()) return values_.back();
  return values_[static_cast<std::size_t>(it - milestones_.begin())];
}

}  // namespace anvil
