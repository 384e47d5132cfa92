#include "callbacks/LossMonitor.h"

#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

// Mean of every element (MindSpore: np.mean of the first output).
double mean_of(const Tensor& t) {
  if (t.numel() == 1) return t.item();
  const std::vector<double> v = t.to_vector<double>();
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? std::nan("") : s / static_cast<double>(v.size());
}

// A double as Python's repr prints it (MindSpore prints Python floats): shortest round-trip digits, and
// ".0" for integral values ("2.0", not "2").
std::string py_float(double v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // 'n': inf / nan stay as they are
  return s;
}

}  // namespace

std::ostream& LossMonitor::default_stream() { return std::cout; }

LossMonitor::LossMonitor(int per_print_times, std::ostream& out) : per_print_times_(per_print_times), out_(&out) {
  if (per_print_times < 0)
    throw Error(fmt::format("LossMonitor: per_print_times must be >= 0, got {}", per_print_times));
}

void LossMonitor::on_train_begin(RunContext&) { last_print_step_ = 0; }

void LossMonitor::on_train_step_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  if (!p.net_outputs.defined()) return;
  const double loss = mean_of(p.net_outputs);
  if (!std::isfinite(loss))
    throw Error(fmt::format("epoch: {} step: {}. Invalid loss, terminating training.", p.cur_epoch_num,
                            p.step_in_epoch));
  if (per_print_times_ != 0 && p.cur_step_num - last_print_step_ >= per_print_times_) {
    last_print_step_ = p.cur_step_num;
    *out_ << fmt::format("epoch: {} step: {}, loss is {}", p.cur_epoch_num, p.step_in_epoch, py_float(loss)) << std::endl;
  }
}

void LossMonitor::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  if (p.metrics.empty()) return;
  std::string dict;
  for (const auto& [name, value] : p.metrics) dict += fmt::format("{}'{}': {}", dict.empty() ? "" : ", ", name, py_float(value));
  *out_ << fmt::format("Eval result: epoch {}, metrics: {{{}}}", p.cur_epoch_num, dict) << std::endl;
}

}  // namespace anvil
