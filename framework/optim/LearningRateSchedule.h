// LearningRateSchedule: the learning rate as a function of the optimizer's global step.
//
// The step is 0-based: an optimizer's step() number t (counting from 0) uses schedule(t), the value
// it reads before it advances its global step, exactly as MindSpore's Optimizer evaluates a
// LearningRateSchedule cell with `global_step` and then increments it. Schedules are immutable values
// (no hidden position), so resuming a run needs nothing but the restored global step.
//
// Concrete schedules (one per file): ConstantLR, PiecewiseConstantLR, ExponentialDecayLR, CosineDecayLR,
// WarmUpLR and WarmupThen (linear warm-up in front of any other schedule).
#pragma once

#include <cstdint>

namespace anvil {

class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;

  /// The learning rate for global step `step`.
  /// Precondition: step >= 0 (throws anvil::Error otherwise). Never returns a negative value for
  /// schedules built from valid arguments. Thread-safe (const, no state).
  virtual double operator()(std::int64_t step) const = 0;
};

namespace detail {
/// Throws anvil::Error("<who>: step must be >= 0, got <step>") when step < 0.
void check_schedule_step(const char* who, std::int64_t step);
}  // namespace detail

}  // namespace anvil
