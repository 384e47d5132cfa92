#include "callbacks/TimeMonitor.h"

#include <iostream>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

std::ostream& TimeMonitor::default_stream() { return std::cout; }

TimeMonitor::TimeMonitor(std::int64_t data_size, bool data_time, std::ostream& out)
    : data_size_(data_size), data_time_(data_time), out_(&out) {
  if (data_size < 0) throw Error(fmt::format("TimeMonitor: data_size must be >= 0, got {}", data_size));
}

void TimeMonitor::on_train_epoch_begin(RunContext&) {
  train_epoch_start_ = Clock::now();
  data_start_ = train_epoch_start_;
  data_ms_ = 0.0;
}

void TimeMonitor::on_train_step_begin(RunContext&) {
  if (data_time_) data_ms_ += ms_between(data_start_, Clock::now());
}

void TimeMonitor::on_train_step_end(RunContext&) {
  if (data_time_) data_start_ = Clock::now();
}

void TimeMonitor::on_train_epoch_end(RunContext& ctx) { report(ctx, "Train", train_epoch_start_, data_time_); }

void TimeMonitor::on_eval_epoch_begin(RunContext&) { eval_epoch_start_ = Clock::now(); }

void TimeMonitor::on_eval_epoch_end(RunContext& ctx) { report(ctx, "Eval", eval_epoch_start_, false); }

void TimeMonitor::report(const RunContext& ctx, const char* mode, Clock::time_point start, bool with_data_time) {
  const double epoch_ms = ms_between(start, Clock::now());
  const std::int64_t batch_num = ctx.original_args().batch_num;
  const std::int64_t steps = batch_num > 0 ? batch_num : data_size_;
  if (steps <= 0)
    throw Error(fmt::format("TimeMonitor: cannot compute the per step time: batch_num is {} and data_size is {} "
                            "(give a positive data_size)",
                            batch_num, data_size_));
  std::string line =
      fmt::format("{} epoch time: {:5.3f} ms, per step time: {:5.3f} ms", mode, epoch_ms, epoch_ms / steps);
  if (with_data_time) line += fmt::format(" (data time: {:5.3f} ms)", data_ms_ / steps);
  *out_ << line << std::endl;
}

}  // namespace anvil
