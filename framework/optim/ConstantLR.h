// ConstantLR: the same learning rate at every step.
#pragma once

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class ConstantLR : public LearningRateSchedule {
 public:
  /// Precondition: lr is finite and >= 0; throws anvil::Error naming the value otherwise.
  explicit ConstantLR(double lr);

  /// Returns lr for every step >= 0 (throws for step < 0).
  double operator()(std::int64_t step) const override;

  double lr() const { return lr_; }

 private:
  double lr_;
};

}  // namespace anvil
