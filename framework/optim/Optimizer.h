// Optimizer: the base of every optimizer (SGD, Momentum, Adam, AdamW).
//
// An optimizer owns handles to a fixed, ordered list of named parameters (as Cell::trainable_params()
// or parameters_and_names() gives them: leaf tensors with requires_grad, names like "conv1.weight"),
// a learning rate (fixed, or a LearningRateSchedule of the global step), a weight decay and its own
// state (moments, step counter, ...). step() applies one update, in place, through the Backend
// optimizer kernels of each parameter's device (backend_for(param.device())).
//
// State is a set of named tensors with MindSpore's names, keyed by parameter NAME (never by address
// or position), so one checkpoint holds network and optimizer, and MindSpore's optimizer state
// loads too. Every optimizer's state_dict() holds, in this order:
//   "global_step"    int32 [1]  steps taken so far (MindSpore's spelling; kept as int64 internally)
//   "learning_rate"  float32 0-d  the rate the NEXT step() will use (current_learning_rate())
//   <optimizer-specific scalars>  e.g. Momentum "momentum", Adam "beta1_power", "beta2_power"
//   <slot>.<param>   per-parameter buffers, slot-major (all "moment1.*" then all "moment2.*"),
//                    each with its parameter's shape and dtype.
// State tensors are plain tensors (requires_grad false).
//
// Parameter groups (OptimizerParams / ParamGroup, see ParamGroup.h): an optimizer built from groups
// has per-group learning rates and weight decays. Its state names groups by their 0-based position
// in the list given at construction: when any group has its own `lr` (MindSpore's is_group_lr), the
// single "learning_rate" entry is replaced by one float32 0-d entry per group,
//   "learning_rate_group_0", "learning_rate_group_1", ...   (MindSpore's names)
// holding the rate each group's next step uses; otherwise "learning_rate" stays. Per-parameter slot
// entries stay keyed by parameter name, so they do not depend on grouping. Frozen parameters
// (requires_grad false) dropped from groups have no state entry.
//
// Weight decay: as in MindSpore (non-grouped parameters), weight decay applies only to parameters
// accepted by the decay filter; the default filter (mindspore_decay_filter) accepts every name that
// contains neither "beta" nor "gamma" (so BatchNorm/LayerNorm affine parameters are not decayed).
// Pass a filter returning true for every name to decay all parameters.
//
// Exact resume: the learning rate and other hyper-parameters are checkpointed as float32 (as MindSpore
// does) while the optimizer computes with the double it was given. load_state_dict() keeps the exact
// double when the loaded float32 equals float32(current value) — so an optimizer built with the same
// arguments and loaded from a checkpoint continues bit-identically — and otherwise adopts the loaded
// value. Quantities that evolve (Adam's beta powers) are kept in float32 and updated in float32, so
// their checkpointed value is exactly the value in use.
//
// Not thread-safe; one optimizer is driven by one training loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/optim/LearningRate.h"
#include "framework/optim/LearningRateSchedule.h"
#include "framework/optim/ParamGroup.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

class Backend;

/// Chooses parameters by name (true = selected). An empty ParamFilter means "use the default".
using ParamFilter = std::function<bool(const std::string& name)>;

/// MindSpore's default weight-decay filter: true when `name` contains neither "beta" nor "gamma".
bool mindspore_decay_filter(const std::string& name);

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// "SGD", "Momentum", "Adam", "AdamW" (used in error messages).
  virtual std::string name() const = 0;

  /// Applies one update to every parameter whose grad() is defined (parameters without a gradient are
  /// left alone, and so is their state), using the learning rate current_learning_rate() (for a
  /// schedule: schedule(global_step())), then advances global_step() by one. Optimizer-wide state
  /// (e.g. Adam's beta powers) advances on every step.
  /// Errors (thrown before anything is changed): a gradient whose dtype or shape differs from its
  /// parameter's; a schedule value that is negative or not finite. Kernel errors propagate.
  void step();

  /// Drops every parameter's gradient (param.zero_grad()).
  void zero_grad();

  /// The optimizer-level learning rate the next step() uses: the fixed rate, or
  /// schedule(global_step()). With parameter groups this is the rate of the groups without their own
  /// `lr` (see current_learning_rates() for every group's).
  double current_learning_rate() const;

  /// Number of parameter groups (1 for a plain parameter list).
  std::size_t num_groups() const { return groups_.size(); }
  /// The rate the next step() uses for each group, in group order (one entry for a plain list).
  std::vector<double> current_learning_rates() const;
  /// The weight decay of group `group` (the optimizer's for a plain list). Throws when out of range.
  double group_weight_decay(std::size_t group) const;
  /// The group of parameter `index` (0 for a plain list). Throws when out of range.
  std::size_t param_group(std::size_t index) const;
  /// True when some group has its own learning rate (state then uses "learning_rate_group_<i>").
  bool is_group_lr() const { return group_lr_; }
  /// Replaces group `group`'s learning rate by a fixed `lr` (finite, >= 0); the group then has its own
  /// rate. Throws for a bad index or rate, or when the optimizer is not grouped-lr (use
  /// set_learning_rate; a plain optimizer's state layout never changes after construction).
  void set_group_learning_rate(std::size_t group, double lr);

  /// Replaces the fixed optimizer-level learning rate (with groups: the rate of groups without their
  /// own `lr`). Precondition: lr finite and >= 0.
  /// Throws anvil::Error when the optimizer runs on a schedule (replace the schedule instead, with
  /// set_learning_rate_schedule, e.g. std::make_shared<ConstantLR>(lr)).
  void set_learning_rate(double lr);

  /// Replaces the learning rate (fixed or schedule) by `schedule`. Throws when it is null.
  void set_learning_rate_schedule(std::shared_ptr<const LearningRateSchedule> schedule);

  /// The schedule in use; null when the learning rate is fixed.
  const std::shared_ptr<const LearningRateSchedule>& learning_rate_schedule() const { return schedule_; }

  /// Number of step() calls so far (plus whatever a loaded state said).
  std::int64_t global_step() const { return global_step_; }

  /// Sets the step counter (e.g. to resume a schedule from a training-loop position).
  /// Precondition: step >= 0.
  void set_global_step(std::int64_t step);

  /// The parameters, in the order and with the names given at construction.
  const NamedTensors& parameters() const { return params_; }

  /// The weight decay given at construction.
  double weight_decay() const { return weight_decay_; }

  /// True when weight decay applies to parameter `index` (the decay filter accepted its name; with
  /// groups: always true, the group's weight decay, possibly 0, is used). Throws for an index out of range.
  bool decays_weight(std::size_t index) const;

  /// The named state (layout in the file comment). Scalar entries are fresh tensors; per-parameter
  /// entries are the optimizer's LIVE buffers (no copy: clone() them to keep a snapshot that later
  /// steps do not change). Throws when global_step() does not fit MindSpore's int32.
  NamedTensors state_dict() const;

  /// Replaces the whole state with `state` (names as state_dict() gives them). Loading never adds
  /// entries: values are copied into the existing buffers (float32 <-> float64 and int32 <-> int64 are
  /// converted). "global_step" may be absent (MindSpore Momentum checkpoints have none): the counter
  /// is then reset to 0. When the learning rate is a schedule, "learning_rate" is checked but its value
  /// is not used (the schedule and the restored global step determine the rate).
  /// Errors (anvil::Error; nothing is changed when one is thrown):
  ///   - names that are not part of this optimizer's state (all listed);
  ///   - a name given twice; an undefined tensor;
  ///   - missing entries (all listed);
  ///   - shape mismatch, naming the entry, the given and the expected shapes (scalars accept 0-d or [1]);
  ///   - dtype of the wrong kind (float vs integer), naming the entry;
  ///   - invalid values (negative learning rate or global_step, beta power outside [0, 1], ...).
  void load_state_dict(const NamedTensors& state);

 protected:
  /// Validates and stores the common parts. `who` is the subclass name used in messages.
  /// Errors (anvil::Error, message starts with `who`): empty parameter list (with groups: no trainable
  /// parameter in any group); an empty or duplicate name; the same tensor under two names or in two
  /// groups; an undefined or non-leaf tensor; a tensor that does not require grad (plain list only);
  /// a fixed learning rate (optimizer's or a group's) that is negative or not finite; a null schedule;
  /// a negative or non-finite weight decay; order_params not matching the groups' parameters.
  /// An empty decay_filter means mindspore_decay_filter (plain list only).
  Optimizer(std::string who, OptimizerParams params, LearningRate learning_rate, double weight_decay,
            const ParamFilter& decay_filter);

  /// Adds a per-parameter state buffer set named "<prefix>.<param name>", zero-filled with each
  /// parameter's shape and dtype. Returns the slot index for slot(). Call from the constructor only.
  std::size_t add_slot(const std::string& prefix);
  /// The buffer of slot `slot_index` for parameter `param_index`.
  Tensor& slot(std::size_t slot_index, std::size_t param_index);

  /// Called once per step(), after validation and before the per-parameter updates.
  virtual void begin_step() {}
  /// Updates parameter `index` in place with its gradient. `weight_decay` is 0 for parameters the
  /// decay filter rejected.
  virtual void update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad,
                                double lr, double weight_decay) = 0;

  /// Appends the optimizer-specific scalar state entries (between "learning_rate" and the slots).
  virtual void append_scalar_state(NamedTensors& out) const;
  /// Throws anvil::Error (naming the entry) when `value` is not acceptable for scalar entry `name`
  /// (one of those append_scalar_state gives). Called for every entry before any is set.
  virtual void check_scalar_state(const std::string& name, double value) const;
  /// Sets scalar entry `name` from a checked loaded tensor (one element, float or integer).
  virtual void set_scalar_state(const std::string& name, const Tensor& value);

  /// For float32-checkpointed hyper-parameters: returns `current` when the loaded value equals it
  /// (exactly, or after rounding both to float32 when the loaded tensor is float32), else the loaded
  /// value. Keeps resumed runs bit-identical to uninterrupted ones.
  static double keep_exact_if_same(double current, const Tensor& loaded);

  const std::string& who() const { return who_; }

 private:
  struct Slot {
    std::string prefix;
    std::vector<Tensor> buffers;  // one per parameter, same order as params_
  };

  struct Group {
    bool own_lr = false;                                    // false: uses the optimizer-level rate
    double lr = 0.0;                                        // own fixed rate
    std::shared_ptr<const LearningRateSchedule> schedule;   // own schedule (null: fixed)
    double weight_decay = 0.0;
  };
  double group_rate(std::size_t g) const;

  std::string who_;
  NamedTensors params_;
  std::vector<bool> decays_;
  std::vector<Group> groups_;
  std::vector<std::size_t> param_group_;  // group of each parameter
  bool group_lr_ = false;
  double lr_ = 0.0;                                      // fixed rate (when schedule_ is null)
  std::shared_ptr<const LearningRateSchedule> schedule_;  // null for a fixed rate
  double weight_decay_ = 0.0;
  std::int64_t global_step_ = 0;
  std::vector<Slot> slots_;
};

}  // namespace anvil
