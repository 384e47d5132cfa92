// TerminateOnNaN: stops training cleanly on a NaN/Inf loss (spec callbacks-and-checkpointing.md §2).
#pragma once

#include <iosfwd>

#include "framework/train/Callback.h"

namespace anvil {

/// At every training step end, when the step's loss (mean of net_outputs) is NaN or Inf: prints
/// "Batch N: Invalid loss, terminating training" (N = global step cur_step_num) to `out` and calls
/// request_stop() — no exception, so the epoch-end and end hooks run normally. Training hooks only.
class TerminateOnNaN : public Callback {
 public:
  /// `out` must outlive the callback.
  explicit TerminateOnNaN(std::ostream& out = default_stream()) : out_(&out) {}

  void on_train_step_end(RunContext& ctx) override;

  /// True once this callback stopped a loop.
  bool triggered() const { return triggered_; }

  /// std::cout.
  static std::ostream& default_stream();

 private:
  std::ostream* out_;
  bool triggered_ = false;
};

}  // namespace anvil
