// ParamGroup / OptimizerParams: what an optimizer is given as its parameters — one plain list, or
// MindSpore-style parameter groups with their own learning rate and weight decay.
//
//   // one list (every parameter uses the optimizer's learning rate, weight decay and decay filter):
//   Momentum opt(net->trainable_params(), 0.01, 0.9);
//
//   // groups (MindSpore group_params = [{'params': ..., 'lr': ..., 'weight_decay': ...}, ...,
//   //                                   {'order_params': net.trainable_params()}]):
//   Momentum opt(OptimizerParams({ParamGroup{.params = weights, .weight_decay = 1e-4},
//                                 ParamGroup{.params = biases_and_bn, .lr = 0.02, .weight_decay = 0.0}},
//                                net->trainable_params()),   // order_params (optional)
//                0.01, 0.9, MomentumOptions{.weight_decay = 5e-4});
//
// Group semantics (as MindSpore's Optimizer with group_params):
//   * A group's `lr` (fixed or schedule) replaces the optimizer's learning rate for its parameters;
//     without one the group uses the optimizer-level rate. A group's `weight_decay` applies to EVERY
//     parameter of the group (the decay filter is not used with groups); without one the group uses
//     the optimizer-level weight decay, again for every parameter of the group.
//   * Parameters whose requires_grad is false (frozen) are dropped from the groups and from
//     order_params: they get no optimizer state and are never updated. (A plain list must contain
//     only trainable parameters, as before; pass Cell::trainable_params().)
//   * order_params, when given, fixes the parameter order of the optimizer (and of its state entries);
//     it must contain exactly the (trainable) parameters of the groups. Without it the order is the
//     groups' order.
//   * A parameter may belong to one group only.
// Groups are numbered by their position in the list given (0-based); that index names the group in
// state entries ("learning_rate_group_<i>", see Optimizer.h), in Optimizer::current_learning_rates()
// and in logs ("lr_group<i>"). Groups may be empty (e.g. all frozen); they keep their index.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "framework/optim/LearningRate.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

/// One parameter group: designated initializers, e.g. ParamGroup{.params = p, .lr = 0.1}.
struct ParamGroup {
  NamedTensors params{};
  /// The group's learning rate (fixed or schedule); empty = the optimizer's.
  std::optional<LearningRate> lr{};
  /// The group's weight decay (>= 0, applied to every parameter of the group); empty = the optimizer's.
  std::optional<double> weight_decay{};
};

class OptimizerParams {
 public:
  /// One plain list: a single group using the optimizer's learning rate, weight decay and decay filter.
  OptimizerParams(NamedTensors params)  // NOLINT(google-explicit-constructor): intended
      : params_(std::move(params)) {}
  /// Parameter groups, optionally with MindSpore's order_params (see the file comment).
  OptimizerParams(std::vector<ParamGroup> groups, NamedTensors order_params = {})  // NOLINT: intended
      : groups_(std::move(groups)), order_params_(std::move(order_params)), grouped_(true) {}

  /// True when built from groups (even a single one).
  bool grouped() const { return grouped_; }
  /// The plain list (meaningful when !grouped()).
  const NamedTensors& params() const { return params_; }
  /// The groups (meaningful when grouped()).
  const std::vector<ParamGroup>& groups() const { return groups_; }
  /// MindSpore's order_params (may be empty).
  const NamedTensors& order_params() const { return order_params_; }

 private:
  NamedTensors params_;
  std::vector<ParamGroup> groups_;
  NamedTensors order_params_;
  bool grouped_ = false;
};

}  // namespace anvil
