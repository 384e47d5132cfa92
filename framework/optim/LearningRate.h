// LearningRate: what an optimizer is given as its learning rate — a fixed value or a schedule.
//
// Implicitly constructible from a number and from a shared_ptr to any LearningRateSchedule, so that
// optimizers take one argument for both:
//   Momentum(params, 0.01, 0.9);
//   Momentum(params, std::make_shared<CosineDecayLR>(0.0, 0.1, 1000), 0.9);
// Validation (fixed value finite and >= 0, schedule non-null) is done by the optimizer that receives
// it, so that the error names the optimizer.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class LearningRate {
 public:
  /// A fixed learning rate.
  LearningRate(double value) : value_(value) {}  // NOLINT(google-explicit-constructor): intended
  /// A schedule evaluated at the optimizer's 0-based global step.
  template <typename S>
    requires std::derived_from<std::remove_const_t<S>, LearningRateSchedule>
  LearningRate(std::shared_ptr<S> schedule)  // NOLINT(google-explicit-constructor): intended
      : schedule_(std::move(schedule)), is_schedule_(true) {}

  /// True when constructed from a schedule (even a null one, which optimizers reject).
  bool is_schedule() const { return is_schedule_; }
  /// The fixed value (meaningful when !is_schedule()).
  double value() const { return value_; }
  /// The schedule (meaningful when is_schedule()).
  const std::shared_ptr<const LearningRateSchedule>& schedule() const { return schedule_; }

 private:
  double value_ = 0.0;
  std::shared_ptr<const LearningRateSchedule> schedule_;
  bool is_schedule_ = false;
};

}  // namespace anvil
