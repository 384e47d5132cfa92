// CosineDecayLR: MindSpore nn.CosineDecayLR.
//
//   p = min(step, decay_steps) / decay_steps
//   lr(step) = min_lr + 0.5 * (max_lr - min_lr) * (1 + cos(pi * p))
// so lr(0) = max_lr, lr(decay_steps / 2) = (max_lr + min_lr) / 2, and lr(step) = min_lr for every
// step >= decay_steps.
#pragma once

#include <cstdint>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class CosineDecayLR : public LearningRateSchedule {
 public:
  /// Preconditions (as MindSpore; each violation throws anvil::Error naming the values):
  ///   min_lr >= 0, max_lr > 0, both finite, min_lr < max_lr; decay_steps > 0.
  CosineDecayLR(double min_lr, double max_lr, std::int64_t decay_steps);

  /// The decayed rate (formula above). Throws for step < 0.
  double operator()(std::int64_t step) const override;

 private:
  double min_lr_;
  double max_lr_;
  std::int64_t decay_steps_;
};

}  // namespace anvil
