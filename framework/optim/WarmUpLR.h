// WarmUpLR: MindSpore nn.WarmUpLR, a linear ramp that then stays at the target rate.
//
//   lr(step) = learning_rate * min(step, warmup_steps) / warmup_steps
// Note that, as in MindSpore, step 0 gets a rate of 0. To continue with another schedule after the
// ramp, use WarmupThen.
#pragma once

#include <cstdint>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class WarmUpLR : public LearningRateSchedule {
 public:
  /// Preconditions (as MindSpore; violations throw anvil::Error naming the argument):
  ///   learning_rate > 0 and finite; warmup_steps > 0.
  WarmUpLR(double learning_rate, std::int64_t warmup_steps);

  /// The ramped rate (formula above). Throws for step < 0.
  double operator()(std::int64_t step) const override;

 private:
  double learning_rate_;
  std::int64_t warmup_steps_;
};

}  // namespace anvil
