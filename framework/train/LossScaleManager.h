// Loss scaling (MindSpore mindspore.amp.FixedLossScaleManager / DynamicLossScaleManager, with the
// update rule of nn.DynamicLossScaleUpdateCell and the skip rule of nn.TrainOneStepWithLossScaleCell).
//
//   Model model(net, loss, opt, {}, ModelOptions{.loss_scale_manager =
//                                                std::make_shared<DynamicLossScaleManager>()});
//
// What Model::train_step does with a manager (see Model.h): backward of loss * scale; at the
// optimizer step the gradients are checked for inf/NaN (overflow) and unscaled (divided by scale);
// update(overflow) is called; when overflow and drop_overflow_update() the optimizer step is SKIPPED
// (parameters, optimizer state and global_step unchanged) and the gradients are dropped.
//
// Dynamic rule (MindSpore DynamicLossScaleUpdateCell; counters start at cur_iter = 1, last = 0):
//   should_inc = (cur_iter - last_overflow_iter >= scale_window)
//   on overflow:  scale = max(scale / scale_factor, 1)
//   if overflow or should_inc: last_overflow_iter = cur_iter
//   if should_inc and not overflow: scale *= scale_factor
//   cur_iter += 1
// so the scale halves (factor 2) on every overflow and doubles after scale_window steps without one.
//
// Checkpoint state (state_dict(), MindSpore's parameter names, specs/mindspore-ckpt.md §7):
//   "scale_sense"                  Float32 0-d   the current scale (both managers)
//   "current_iterator_step"        Int32 0-d     dynamic only: cur_iter
//   "last_overflow_iterator_step"  Int32 0-d     dynamic only: last_overflow_iter
// The scale is kept in float32 internally, so the checkpointed value is exactly the one in use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "framework/tensor/Tensor.h"

namespace anvil {

class LossScaleManager {
 public:
  virtual ~LossScaleManager() = default;
  /// "FixedLossScaleManager" / "DynamicLossScaleManager".
  virtual std::string name() const = 0;
  /// The scale the next step multiplies the loss by.
  virtual float get_loss_scale() const = 0;
  /// Whether an overflowed step is skipped (MindSpore get_drop_overflow_update()).
  virtual bool get_drop_overflow_update() const = 0;
  /// Updates the scale after a step whose gradients did (overflow = true) or did not overflow.
  virtual void update_loss_scale(bool overflow) = 0;
  /// The named state (file comment). Fresh tensors.
  virtual NamedTensors state_dict() const = 0;
  /// Replaces the state from entries named as state_dict() gives them (extra names are errors; all
  /// must be present; 0-d or [1]; any float/int dtype). Errors: anvil::Error naming the entry (nothing
  /// changed), also for a scale that is not finite and >= 1 or negative counters.
  virtual void load_state_dict(const NamedTensors& state) = 0;
};

/// A constant scale. drop_overflow_update true (MindSpore's default): overflowed steps are skipped.
/// false: every step is applied (no overflow check), as MindSpore does.
class FixedLossScaleManager : public LossScaleManager {
 public:
  /// Precondition: loss_scale finite and >= 1 (anvil::Error otherwise).
  explicit FixedLossScaleManager(double loss_scale = 128.0, bool drop_overflow_update = true);
  std::string name() const override { return "FixedLossScaleManager"; }
  float get_loss_scale() const override { return scale_; }
  bool get_drop_overflow_update() const override { return drop_; }
  void update_loss_scale(bool) override {}
  NamedTensors state_dict() const override;
  void load_state_dict(const NamedTensors& state) override;

 private:
  float scale_;
  bool drop_;
};

/// A scale that halves on overflow and grows after scale_window good steps (file comment).
class DynamicLossScaleManager : public LossScaleManager {
 public:
  /// Preconditions: init_loss_scale finite and >= 1; scale_factor finite and > 1; scale_window >= 1
  /// (anvil::Error otherwise).
  explicit DynamicLossScaleManager(double init_loss_scale = 16777216.0, double scale_factor = 2.0,
                                   std::int64_t scale_window = 2000);
  std::string name() const override { return "DynamicLossScaleManager"; }
  float get_loss_scale() const override { return scale_; }
  bool get_drop_overflow_update() const override { return true; }
  void update_loss_scale(bool overflow) override;
  NamedTensors state_dict() const override;
  void load_state_dict(const NamedTensors& state) override;

  double scale_factor() const { return factor_; }
  std::int64_t scale_window() const { return window_; }
  /// MindSpore's cur_iter (starts at 1) and last_overflow_iter (starts at 0).
  std::int64_t current_iterator_step() const { return cur_iter_; }
  std::int64_t last_overflow_iterator_step() const { return last_overflow_iter_; }

 private:
  float scale_;
  double factor_;
  std::int64_t window_;
  std::int64_t cur_iter_ = 1;
  std::int64_t last_overflow_iter_ = 0;
};

}  // namespace anvil
