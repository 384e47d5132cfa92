#include "callbacks/ProgressBar.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "framework/core/Error.h"

namespace anvil {
namespace {

std::string metrics_text(const std::map<std::string, double>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += fmt::format(", {}: {:.6g}", k, v);
  return s;
}

}  // namespace

std::ostream& ProgressBar::default_stream() { return std::cerr; }

ProgressBar::ProgressBar(std::ostream& stream, double refresh_s, std::optional<bool> tty)
    : out_(&stream), refresh_s_(refresh_s) {
  if (!(refresh_s >= 0.0)) throw Error(fmt::format("ProgressBar: refresh_s must be >= 0, got {}", refresh_s));
  if (tty) {
    tty_ = *tty;
  } else if (&stream == &std::cerr || &stream == &std::clog) {
    tty_ = isatty(STDERR_FILENO) != 0;
  } else if (&stream == &std::cout) {
    tty_ = isatty(STDOUT_FILENO) != 0;
  } else {
    tty_ = false;
  }
}

void ProgressBar::emit(const std::string& text) {
  try {
    *out_ << text;
    out_->flush();
    if (!*out_) out_->clear();
  } catch (...) {
    try {
      out_->clear();
    } catch (...) {
    }
  }
}

void ProgressBar::on_train_begin(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  total_epochs_ = p.initial_epoch + p.epoch_num;
}

void ProgressBar::on_train_epoch_begin(RunContext&) {
  epoch_start_ = Clock::now();
  last_draw_ = Clock::time_point{};
  have_loss_ = false;
}

std::string ProgressBar::bar_line(const RunContext& ctx) const {
  const CallbackParams& p = ctx.original_args();
  const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  const std::int64_t s = p.step_in_epoch, b = std::max<std::int64_t>(p.batch_num, 1);
  const double rate = elapsed > 0 ? static_cast<double>(s) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(b - std::min(s, b)) / rate : 0.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * std::min(s, b) / b);
  std::string bar(static_cast<std::size_t>(kWidth), ' ');
  for (int i = 0; i < filled; ++i) bar[static_cast<std::size_t>(i)] = '=';
  if (filled < kWidth) bar[static_cast<std::size_t>(filled)] = '>';
  std::string loss = have_loss_ ? fmt::format(" loss {:.6g}", last_loss_) : "";
  return fmt::format("\repoch {}/{} [{}] {}/{}{}  {:.1f} step/s  ETA {:.0f}s", p.cur_epoch_num, total_epochs_, bar, s,
                     p.batch_num, loss, rate, eta);
}

void ProgressBar::on_train_step_end(RunContext& ctx) {
  if (auto loss = cbutil::train_loss(ctx)) {
    last_loss_ = *loss;
    have_loss_ = true;
  }
  if (!tty_) return;
  const CallbackParams& p = ctx.original_args();
  const auto now = Clock::now();
  const bool last = p.step_in_epoch >= p.batch_num;
  if (!last && std::chrono::duration<double>(now - last_draw_).count() < refresh_s_) return;
  last_draw_ = now;
  emit(bar_line(ctx));
}

void ProgressBar::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  if (tty_) {
    emit(bar_line(ctx) + metrics_text(p.eval_results) + "\n");
    return;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(p.step_in_epoch) / elapsed : 0.0;
  std::string loss = have_loss_ ? fmt::format(", loss {:.6g}", last_loss_) : "";
  emit(fmt::format("epoch {}/{}: step {}/{}{}{}, {:.1f} step/s, {:.2f} s\n", p.cur_epoch_num, total_epochs_,
                   p.step_in_epoch, p.batch_num, loss, metrics_text(p.eval_results), rate, elapsed));
}

void ProgressBar::on_eval_begin(RunContext&) {
  epoch_start_ = Clock::now();
  last_draw_ = Clock::time_point{};
  eval_steps_ = 0;
}
void ProgressBar::on_eval_epoch_begin(RunContext&) {}
void ProgressBar::on_eval_step_begin(RunContext&) {}

void ProgressBar::on_eval_step_end(RunContext& ctx) {
  ++eval_steps_;
  if (!tty_) return;
  const CallbackParams& p = ctx.original_args();
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() < refresh_s_ && eval_steps_ < p.batch_num) return;
  last_draw_ = now;
  emit(fmt::format("\reval {}/{}", eval_steps_, p.batch_num));
}

void ProgressBar::on_eval_epoch_end(RunContext&) {}

void ProgressBar::on_eval_end(RunContext& ctx) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start_).count();
  emit(fmt::format("{}eval: {} steps{}, {:.2f} s\n", tty_ ? "\r" : "", eval_steps_,
                   metrics_text(ctx.original_args().metrics), elapsed));
}

}  // namespace anvil
