#include "callbacks/EarlyStopping.h"

#include <cmath>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/nn/Cell.h"

namespace anvil {

std::ostream& EarlyStopping::default_stream() { return std::cout; }

EarlyStopping::EarlyStopping(Options options, std::ostream& out) : options_(std::move(options)), out_(&out) {
  if (options_.patience < 0) throw Error(fmt::format("EarlyStopping: patience must be >= 0, got {}", options_.patience));
  if (options_.monitor.empty()) throw Error("EarlyStopping: monitor must not be empty");
  minimize_ = cbutil::mode_is_min("EarlyStopping", options_.mode, options_.monitor);
  reset();
}

void EarlyStopping::reset() {
  wait_ = 0;
  stopped_epoch_ = 0;
  best_ = options_.baseline ? *options_.baseline : (minimize_ ? INFINITY : -INFINITY);
  best_weights_.clear();
}

void EarlyStopping::on_train_begin(RunContext&) {
  if (!restored_) reset();
  restored_ = false;
}

void EarlyStopping::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  const std::optional<double> value = cbutil::monitored_value(ctx, options_.monitor);
  if (!value) {
    log(LogLevel::kWarning, fmt::format("EarlyStopping: monitor '{}' has no value at epoch {}; nothing done",
                                        options_.monitor, p.cur_epoch_num));
    return;
  }
  const double delta = std::fabs(options_.min_delta);
  const bool improved = minimize_ ? *value < best_ - delta : *value > best_ + delta;
  if (improved) {
    best_ = *value;
    wait_ = 0;
    if (options_.restore_best_weights && p.network != nullptr) {
      best_weights_.clear();
      for (const auto& [name, t] : p.network->state_dict()) best_weights_.emplace_back(name, t.clone());
    }
    return;
  }
  ++wait_;
  if (wait_ >= options_.patience) {
    stopped_epoch_ = p.cur_epoch_num;
    ctx.request_stop();
    if (options_.restore_best_weights && !best_weights_.empty() && p.network != nullptr) {
      NamedTensors current = p.network->state_dict();
      for (std::size_t i = 0; i < current.size() && i < best_weights_.size(); ++i)
        current[i].second.copy_from(best_weights_[i].second);
    }
    if (options_.verbose) *out_ << fmt::format("Epoch {}: early stopping.", stopped_epoch_) << std::endl;
  }
}

void EarlyStopping::on_train_end(RunContext&) { best_weights_.clear(); }

std::string EarlyStopping::state() const {
  return fmt::format("{} {} {}", wait_, cbutil::format_double(best_), stopped_epoch_);
}

void EarlyStopping::load_state(const std::string& state) {
  std::istringstream in(state);
  std::string w, b, s;
  if (!(in >> w >> b >> s)) throw Error(fmt::format("EarlyStopping: malformed state '{}'", state));
  try {
    wait_ = std::stoi(w);
    stopped_epoch_ = std::stoll(s);
  } catch (const std::exception&) {
    throw Error(fmt::format("EarlyStopping: malformed state '{}'", state));
  }
  best_ = cbutil::parse_double("EarlyStopping", b);
  best_weights_.clear();
  restored_ = true;
}

}  // namespace anvil
