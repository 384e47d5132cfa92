// ExponentialDecayLR: MindSpore nn.ExponentialDecayLR.
//
//   p  = step / decay_steps            (smooth), or floor(step / decay_steps) when is_stair
//   lr(step) = learning_rate * decay_rate^p
#pragma once

#include <cstdint>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class ExponentialDecayLR : public LearningRateSchedule {
 public:
  /// Preconditions (as MindSpore; each violation throws anvil::Error naming the argument):
  ///   learning_rate > 0 and finite; decay_rate > 0 and finite; decay_steps > 0.
  ExponentialDecayLR(double learning_rate, double decay_rate, std::int64_t decay_steps, bool is_stair = false);

  /// The decayed rate (formula above). Throws for step < 0.
  double operator()(std::int64_t step) const override;

 private:
  double learning_rate_;
  double decay_rate_;
  std::int64_t decay_steps_;
  bool is_stair_;
};

}  // namespace anvil
