#include "callbacks/ReduceLROnPlateau.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include "callbacks/MonitorUtil.h"
#include "framework/core/Error.h"
#include "framework/core/Log.h"
#include "framework/optim/Optimizer.h"

namespace anvil {

std::ostream& ReduceLROnPlateau::default_stream() { return std::cout; }

ReduceLROnPlateau::ReduceLROnPlateau(Options options, std::ostream& out) : options_(std::move(options)), out_(&out) {
  if (!(options_.factor > 0.0 && options_.factor < 1.0))
    throw Error(fmt::format("ReduceLROnPlateau: factor must be in (0, 1), got {}", options_.factor));
  if (options_.patience < 0) throw Error(fmt::format("ReduceLROnPlateau: patience must be >= 0, got {}", options_.patience));
  if (options_.cooldown < 0) throw Error(fmt::format("ReduceLROnPlateau: cooldown must be >= 0, got {}", options_.cooldown));
  if (!(options_.min_lr >= 0.0)) throw Error(fmt::format("ReduceLROnPlateau: min_lr must be >= 0, got {}", options_.min_lr));
  minimize_ = cbutil::mode_is_min("ReduceLROnPlateau", options_.mode, options_.monitor);
  reset();
}

void ReduceLROnPlateau::reset() {
  wait_ = 0;
  cooldown_counter_ = 0;
  best_ = minimize_ ? INFINITY : -INFINITY;
}

void ReduceLROnPlateau::on_train_begin(RunContext& ctx) {
  Optimizer* opt = ctx.original_args().optimizer;
  if (opt == nullptr) throw Error("ReduceLROnPlateau: the training loop has no optimizer");
  if (opt->learning_rate_schedule())
    throw Error("ReduceLROnPlateau: the optimizer uses a dynamic learning-rate schedule; use a fixed rate");
  if (!restored_) reset();
  restored_ = false;
}

void ReduceLROnPlateau::on_train_epoch_end(RunContext& ctx) {
  const CallbackParams& p = ctx.original_args();
  const std::optional<double> value = cbutil::monitored_value(ctx, options_.monitor);
  if (!value) {
    log(LogLevel::kWarning, fmt::format("ReduceLROnPlateau: monitor '{}' has no value at epoch {}; nothing done",
                                        options_.monitor, p.cur_epoch_num));
    return;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const double delta = std::fabs(options_.min_delta);
  const bool improved = minimize_ ? *value < best_ - delta : *value > best_ + delta;
  if (improved) {
    best_ = *value;
    wait_ = 0;
    return;
  }
  if (cooldown_counter_ > 0) return;
  ++wait_;
  if (wait_ < options_.patience || p.optimizer == nullptr) return;
  const double lr = p.optimizer->current_learning_rate();
  if (lr > options_.min_lr) {
    const double new_lr = std::max(lr * options_.factor, options_.min_lr);
    p.optimizer->set_learning_rate(new_lr);
    if (options_.verbose)
      *out_ << fmt::format("Epoch {}: ReduceLROnPlateau reducing learning rate to {}.", p.cur_epoch_num, new_lr)
            << std::endl;
    cooldown_counter_ = options_.cooldown;
    wait_ = 0;
  }
}

std::string ReduceLROnPlateau::state() const {
  return fmt::format("{} {} {}", wait_, cbutil::format_double(best_), cooldown_counter_);
}

void ReduceLROnPlateau::load_state(const std::string& state) {
  std::istringstream in(state);
  std::string w, b, c;
  if (!(in >> w >> b >> c)) throw Error(fmt::format("ReduceLROnPlateau: malformed state '{}'", state));
  try {
    wait_ = std::stoi(w);
    cooldown_counter_ = std::stoi(c);
  } catch (const std::exception&) {
    throw Error(fmt::format("ReduceLROnPlateau: malformed state '{}'", state));
  }
  best_ = cbutil::parse_double("ReduceLROnPlateau", b);
  restored_ = true;
}

}  // namespace anvil
