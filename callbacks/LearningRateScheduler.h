// LearningRateScheduler: sets the learning rate from a function at every step (MindSpore
// LearningRateScheduler, spec §2).
#pragma once

#include <cstdint>
#include <functional>

#include "framework/train/Callback.h"

namespace anvil {

/// At every training step end calls fn(lr, cur_step_num) with the optimizer's current (fixed) learning
/// rate and assigns the result with Optimizer::set_learning_rate when it differs (per step, as MindSpore).
/// Errors: anvil::Error at train begin when the loop has no optimizer or the optimizer runs on a
/// learning-rate schedule; set_learning_rate's errors (negative / non-finite result) at step end.
class LearningRateScheduler : public Callback {
 public:
  using Fn = std::function<double(double lr, std::int64_t cur_step_num)>;

  /// Errors: anvil::Error when `fn` is empty.
  explicit LearningRateScheduler(Fn fn);

  void on_train_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;

 private:
  Fn fn_;
};

}  // namespace anvil
