// EarlyStopping: stops training when a monitored value stops improving (MindSpore EarlyStopping, spec
// callbacks-and-checkpointing.md §2), without MindSpore's two bugs (see the class comment).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "framework/tensor/Tensor.h"
#include "framework/train/Callback.h"

namespace anvil {

/// EarlyStopping's settings (MindSpore's names and defaults).
struct EarlyStoppingOptions {
  std::string monitor = "eval_loss";
  double min_delta = 0.0;
  int patience = 0;
  bool verbose = false;
  std::string mode = "auto";
  std::optional<double> baseline = std::nullopt;
  bool restore_best_weights = false;
};

/// At every training epoch end, reads `monitor` ("loss" = the last train step's output; any other name
/// from eval_results / metrics, i.e. Model::fit's evaluation pass). A missing value logs a warning and
/// changes nothing; 0.0 is a valid value.
///   improved  = value < best - |min_delta| (min mode) or value > best + |min_delta| (max mode);
///   best starts at `baseline` when given, else +inf (min) / -inf (max).
///   improved  -> best = value, wait = 0, and (restore_best_weights) a copy of the network's state_dict
///                is kept;
///   otherwise -> wait += 1; when wait >= patience: request_stop(), stopped_epoch() = this epoch, and
///                (restore_best_weights, when a best copy exists) the network's weights are set back to it.
/// Fixes of MindSpore's bugs: the patience check runs only for an epoch that did NOT improve (MindSpore
/// stops after epoch 1 when patience=0), and `baseline` is the baseline (MindSpore takes it from
/// min_delta). Verbose prints "Epoch E: early stopping." to `out` when stopping.
/// State for resume (state_key "EarlyStopping"): wait, best and stopped_epoch (not the best weights).
/// on_train_begin resets wait/best unless load_state() ran since the last train.
class EarlyStopping : public Callback {
 public:
  using Options = EarlyStoppingOptions;

  /// Errors: anvil::Error for patience < 0, an unknown mode, or an empty monitor.
  /// `out` (for verbose) must outlive the callback.
  explicit EarlyStopping(Options options = {}, std::ostream& out = default_stream());

  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_train_end(RunContext& ctx) override;

  std::string state_key() const override { return "EarlyStopping"; }
  /// "wait best stopped_epoch" (numbers as text).
  std::string state() const override;
  /// Restores state(). Errors: anvil::Error for malformed text.
  void load_state(const std::string& state) override;

  /// Non-improving epochs since the last improvement.
  int wait() const { return wait_; }
  /// The best value so far (the baseline or ±inf before any improvement).
  double best() const { return best_; }
  /// The epoch at which training was stopped; 0 when it was not.
  std::int64_t stopped_epoch() const { return stopped_epoch_; }
  const Options& options() const { return options_; }

  /// std::cout.
  static std::ostream& default_stream();

 private:
  void reset();

  Options options_;
  std::ostream* out_;
  bool minimize_;
  int wait_ = 0;
  double best_ = 0.0;
  std::int64_t stopped_epoch_ = 0;
  bool restored_ = false;
  NamedTensors best_weights_;
};

}  // namespace anvil
