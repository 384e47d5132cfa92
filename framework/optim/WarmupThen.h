// WarmupThen: a linear warm-up chained in front of another schedule.
//
//   step <  warmup_steps:  lr(step) = after(0) * step / warmup_steps      (WarmUpLR's ramp towards after(0))
//   step >= warmup_steps:  lr(step) = after(step - warmup_steps)
// The wrapped schedule therefore starts at its own step 0 once the ramp ends (its clock is shifted by
// warmup_steps), and the rate is continuous at the hand-over. E.g. 100 warm-up steps into a cosine
// decay over the remaining 900:
//   std::make_shared<WarmupThen>(100, std::make_shared<CosineDecayLR>(0.0, 0.1, 900))
#pragma once

#include <cstdint>
#include <memory>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class WarmupThen : public LearningRateSchedule {
 public:
  /// Preconditions: warmup_steps > 0; `after` is non-null. Violations throw anvil::Error.
  WarmupThen(std::int64_t warmup_steps, std::shared_ptr<const LearningRateSchedule> after);

  /// The rate defined above. Throws for step < 0 (and whatever `after` throws).
  double operator()(std::int64_t step) const override;

  std::int64_t warmup_steps() const { return warmup_steps_; }
  const std::shared_ptr<const LearningRateSchedule>& after() const { return after_; }

 private:
  std::int64_t warmup_steps_;
  std::shared_ptr<const LearningRateSchedule> after_;
};

}  // namespace anvil
