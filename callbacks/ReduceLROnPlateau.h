// ReduceLROnPlateau: lowers the learning rate when a monitored value stops improving (MindSpore
// ReduceLROnPlateau, spec §2).
#pragma once

#include <iosfwd>
#include <string>

#include "framework/train/Callback.h"

namespace anvil {

/// ReduceLROnPlateau's settings (MindSpore's names and defaults).
struct ReduceLROnPlateauOptions {
  std::string monitor = "eval_loss";
  double factor = 0.1;
  int patience = 10;
  bool verbose = false;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0.0;
};

/// At every training epoch end reads `monitor` (as EarlyStopping: "loss" = last train output, else
/// eval_results / metrics; missing -> warning, nothing done). In order:
///   in cooldown (cooldown_counter > 0) -> cooldown_counter -= 1, wait = 0;
///   improved (value < best - |min_delta| for min, > best + |min_delta| for max) -> best = value, wait = 0;
///   else, when not in cooldown -> wait += 1; at wait >= patience and lr > min_lr:
///        lr = max(lr * factor, min_lr) (Optimizer::set_learning_rate), cooldown_counter = cooldown,
///        wait = 0; verbose prints "Epoch E: ReduceLROnPlateau reducing learning rate to LR." to `out`.
/// Errors: anvil::Error at construction for factor outside (0, 1), negative patience/cooldown/min_lr or
/// an unknown mode; at train begin when the optimizer runs on a learning-rate schedule (dynamic LR).
/// State for resume (state_key "ReduceLROnPlateau"): wait, best, cooldown_counter; on_train_begin resets
/// them unless load_state() ran since the last train.
class ReduceLROnPlateau : public Callback {
 public:
  using Options = ReduceLROnPlateauOptions;

  /// `out` (for verbose) must outlive the callback.
  explicit ReduceLROnPlateau(Options options = {}, std::ostream& out = default_stream());

  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;

  std::string state_key() const override { return "ReduceLROnPlateau"; }
  /// "wait best cooldown_counter".
  std::string state() const override;
  /// Restores state(). Errors: anvil::Error for malformed text.
  void load_state(const std::string& state) override;

  int wait() const { return wait_; }
  double best() const { return best_; }
  int cooldown_counter() const { return cooldown_counter_; }

  /// std::cout.
  static std::ostream& default_stream();

 private:
  void reset();

  Options options_;
  std::ostream* out_;
  bool minimize_;
  int wait_ = 0;
  double best_ = 0.0;
  int cooldown_counter_ = 0;
  bool restored_ = false;
};

}  // namespace anvil
