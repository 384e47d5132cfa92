// LossMonitor: prints the training loss and stops training on a NaN/Inf loss (MindSpore LossMonitor).
#pragma once

#include <cstdint>
#include <iosfwd>

#include "framework/train/Callback.h"

namespace anvil {

/// At every training step end: loss = mean of net_outputs (the step's loss tensor), in double.
///   - NaN or Inf loss: throws anvil::Error("epoch: E step: S. Invalid loss, terminating training.")
///     (E = cur_epoch_num, S = step_in_epoch); the train loop then runs on_exception and on_train_end
///     and propagates it.
///   - every `per_print_times` global steps (cur_step_num - last printed step >= per_print_times;
///     0 = never) prints "epoch: E step: S, loss is L" (L in shortest round-trip form, as Python prints
///     a float).
/// At every training epoch end, when original_args().metrics is non-empty (Model::fit after an
/// evaluation pass), prints "Eval result: epoch E, metrics: {'accuracy': 0.9, 'loss': 0.3}".
/// Lines end with std::endl (flushed). Training hooks only (does not take part in evaluation).
class LossMonitor : public Callback {
 public:
  /// Preconditions: per_print_times >= 0 (throws anvil::Error naming the value otherwise).
  /// `out` must outlive the callback.
  explicit LossMonitor(int per_print_times = 1, std::ostream& out = default_stream());

  void on_train_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;

  int per_print_times() const { return per_print_times_; }

  /// std::cout.
  static std::ostream& default_stream();

 private:
  int per_print_times_;
  std::ostream* out_;
  std::int64_t last_print_step_ = 0;
};

}  // namespace anvil
