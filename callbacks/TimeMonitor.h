// TimeMonitor: prints the time of each training and evaluation epoch (MindSpore TimeMonitor).
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>

#include "framework/train/Callback.h"

namespace anvil {

/// At every epoch end (train, and eval — including fit's evaluation pass, in which it takes part):
///   "Train epoch time: X ms, per step time: Y ms"      ("Eval epoch time: ..." in evaluation)
/// with X the wall time from epoch begin to epoch end and Y = X / batch_num, falling back to data_size
/// when batch_num is not positive; both with 3 decimals ("{:5.3f}"). With data_time, the time spent
/// between steps (fetching data on the host: from epoch begin / a step's end to the next step's begin)
/// is appended per step: " (data time: Z ms)" (training only). Lines end with std::endl.
/// Train and eval epochs are timed separately, so fit's evaluation pass does not disturb the train time.
class TimeMonitor : public Callback {
 public:
  /// Preconditions: data_size >= 0 (0 = none: rely on batch_num). `out` must outlive the callback.
  /// Errors: anvil::Error naming the value for a negative data_size.
  explicit TimeMonitor(std::int64_t data_size = 0, bool data_time = false, std::ostream& out = default_stream());

  void on_train_epoch_begin(RunContext& ctx) override;
  void on_train_epoch_end(RunContext& ctx) override;
  void on_train_step_begin(RunContext& ctx) override;
  void on_train_step_end(RunContext& ctx) override;
  void on_eval_epoch_begin(RunContext& ctx) override;
  void on_eval_epoch_end(RunContext& ctx) override;

  /// True: TimeMonitor also times fit's evaluation passes.
  bool runs_in_fit_eval() const override { return true; }

  /// std::cout.
  static std::ostream& default_stream();

 private:
  using Clock = std::chrono::steady_clock;
  // Prints the line for an epoch that began at `start`. Errors: anvil::Error when neither batch_num nor
  // data_size is positive (there is no per-step time to report).
  void report(const RunContext& ctx, const char* mode, Clock::time_point start, bool with_data_time);

  std::int64_t data_size_;
  bool data_time_;
  std::ostream* out_;
  Clock::time_point train_epoch_start_{};
  Clock::time_point eval_epoch_start_{};
  Clock::time_point data_start_{};
  double data_ms_ = 0.0;
};

}  // namespace anvil
