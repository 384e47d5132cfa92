// OnRequestExit: saves and stops cleanly when the process is asked to exit (MindSpore OnRequestExit,
// spec callbacks-and-checkpointing.md §2, §8).
#pragma once

#include <csignal>
#include <string>
#include <vector>

#include "framework/train/Callback.h"

namespace anvil {

/// OnRequestExit's settings (MindSpore's names and defaults; `signals` replaces the single `sig`).
struct OnRequestExitOptions {
  bool save_ckpt = true;
  std::string file_name = "Net";
  std::string directory = "./";
  /// Polled at every step end: a file containing {"GracefulExit": 1} requests the exit ("" = none).
  std::string config_file = "";
  /// Signals that request the exit (through SignalRegistry; SIGKILL/SIGSTOP are rejected).
  std::vector<int> signals = {SIGTERM};
};

/// Train/eval begin: acquires the signals in SignalRegistry (the handler only sets an atomic flag);
/// train begin also reloads `<directory>/rank_0/<file_name>_train.ckpt` into the network and optimizer
/// (non-strict) when that file exists. At every train (eval) step end, when one of the signals arrived
/// or config_file requests it: with save_ckpt, saves the network, the optimizer state (train only) and
/// Int64 "epoch_num", "step_num" (global step) and "batch_num" (step in epoch) to
/// `<directory>/rank_0/<file_name>_train.ckpt` (`_eval.ckpt` in eval; atomic, durable), then
/// request_stop() (end hooks run normally). Train/eval end releases the signals (the previous
/// dispositions come back with the last release). Single device: rank 0.
class OnRequestExit : public Callback {
 public:
  using Options = OnRequestExitOptions;

  /// Errors: anvil::Error for SIGKILL/SIGSTOP/out-of-range signals or an empty file_name.
  explicit OnRequestExit(Options options = {});

  void on_train_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_train_end(RunContext& ctx) override;
  void on_eval_begin(RunContext& ctx) override;
  void on_eval_step_end(RunContext& ctx) override;
  void on_eval_end(RunContext& ctx) override;

  /// `<directory>/rank_0/<file_name>_train.ckpt` (train) or `..._eval.ckpt`.
  std::string checkpoint_file(bool train) const;
  /// True once this callback stopped a loop on request.
  bool exit_requested() const { return requested_; }

 private:
  bool request_arrived();
  void save_and_stop(RunContext& ctx, bool train);
  void acquire_signals();
  void release_signals();

  Options options_;
  int acquired_ = 0;  // nesting of begin/end pairs holding the signals
  bool requested_ = false;
};

}  // namespace anvil
