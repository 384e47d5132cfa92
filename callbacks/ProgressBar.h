// ProgressBar: a terminal progress bar for train and eval (spec callbacks-and-checkpointing.md §2).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "framework/train/Callback.h"

namespace anvil {

/// On a TTY, redraws one line in place ("\r") at most every `refresh_s` seconds during an epoch, and
/// always at its last step:
///   "epoch e/E [=======>      ] s/B loss L  R step/s  ETA Ts"
/// then ends the line at epoch end, adding the eval_results of Model::fit ("eval_loss: v ...").
/// Not a TTY (any stream other than a terminal std::cout/std::cerr, unless `tty` forces it): one plain
/// line per epoch and nothing per step:
///   "epoch e/E: step B/B, loss L, <eval key>: v, ..., R step/s, T s"
/// Standalone eval(): at eval end "eval: N steps, <metric>: v, ..., T s".
/// Output errors (a failed or throwing stream) are swallowed and the stream state cleared: they never
/// stop training.
class ProgressBar : public Callback {
 public:
  /// `stream` must outlive the callback; `refresh_s` >= 0 (0 redraws every step); `tty` overrides the
  /// terminal detection (isatty on std::cout / std::cerr; false for other streams).
  explicit ProgressBar(std::ostream& stream = default_stream(), double refresh_s = 0.1,
                       std::optional<bool> tty = std::nullopt);

  void on_train_begin(RunContext& ctx) override;
  void on_train_epoch_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_eval_begin(RunContext& ctx) override;
  void on_eval_epoch_begin(RunContext& ctx) override;
  void on_eval_step_begin(RunContext& ctx) override;
  void on_eval_step_end(RunContext& ctx) override;
  void on_eval_epoch_end(RunContext& ctx) override;
  void on_eval_end(RunContext& ctx) override;

  /// True when drawing in place.
  bool is_tty() const { return tty_; }

  /// std::cerr.
  static std::ostream& default_stream();

 private:
  using Clock = std::chrono::steady_clock;
  void emit(const std::string& text);
  std::string bar_line(const RunContext& ctx) const;

  std::ostream* out_;
  double refresh_s_;
  bool tty_;
  Clock::time_point epoch_start_{};
  Clock::time_point last_draw_{};
  std::int64_t total_epochs_ = 0;
  std::int64_t eval_steps_ = 0;
  double last_loss_ = 0.0;
  bool have_loss_ = false;
};

}  // namespace anvil
