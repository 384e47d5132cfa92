// SGD: plain stochastic gradient descent (no momentum; for momentum use Momentum).
//
// For each parameter p with gradient g (Backend::sgd_update):
//   g' = g + weight_decay * p        (only for parameters the decay filter accepts)
//   p  = p - lr * g'
// State: "global_step", "learning_rate" (see Optimizer).
#pragma once

#include <utility>

#include "framework/optim/Optimizer.h"

namespace anvil {

/// Optional arguments of SGD, for designated initializers: SGDOptions{.weight_decay = 1e-4}.
struct SGDOptions {
  double weight_decay = 0.0;  // L2 penalty added to the gradient; >= 0
  ParamFilter decay_filter = {};  // which parameters decay; empty = mindspore_decay_filter
};

class SGD : public Optimizer {
 public:
  /// params: trainable named parameters or parameter groups (ParamGroup.h); learning_rate: fixed (>= 0) or a schedule.
  /// Errors: as Optimizer's constructor (empty/duplicate/frozen parameters, bad rate or weight decay).
  SGD(OptimizerParams params, LearningRate learning_rate, SGDOptions options = {});
  /// A plain parameter list (kept as its own overload so that braced lists {{"w", w}} still work).
  SGD(NamedTensors params, LearningRate learning_rate, SGDOptions options = {})
      : SGD(OptimizerParams(std::move(params)), std::move(learning_rate), std::move(options)) {}

  std::string name() const override { return "SGD"; }

 private:
  void update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                        double weight_decay) override;
};

}  // namespace anvil
