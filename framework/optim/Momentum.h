// Momentum: MindSpore nn.Momentum (SGD with momentum, optionally Nesterov).
//
// For each parameter p with gradient g and its moment buffer m (Backend::momentum_update):
//   g' = g + weight_decay * p                 (only for parameters the decay filter accepts)
//   m  = momentum * m + g'
//   p  = p - lr * (g' + momentum * m)         when nesterov
//   p  = p - lr * m                           otherwise
// Unlike PyTorch's SGD, there is no dampening and the first step does not copy g into m (m starts at 0,
// so the first step is p -= lr * g' without Nesterov).
// State: "global_step", "learning_rate", "momentum" (float32 0-d), "moments.<param>".
#pragma once

#include <utility>

#include "framework/optim/Optimizer.h"

namespace anvil {

/// Optional arguments of Momentum: MomentumOptions{.weight_decay = 1e-4, .nesterov = true}.
struct MomentumOptions {
  double weight_decay = 0.0;  // L2 penalty added to the gradient; >= 0
  bool nesterov = false;      // MindSpore's use_nesterov
  ParamFilter decay_filter = {};  // which parameters decay; empty = mindspore_decay_filter
};

class Momentum : public Optimizer {
 public:
  /// As MindSpore, `momentum` is required (positional); the rest is in `options`.
  /// Preconditions: momentum finite and >= 0 (throws anvil::Error naming the value), plus Optimizer's.
  Momentum(OptimizerParams params, LearningRate learning_rate, double momentum, MomentumOptions options = {});
  /// A plain parameter list (kept as its own overload so that braced lists {{"w", w}} still work).
  Momentum(NamedTensors params, LearningRate learning_rate, double momentum, MomentumOptions options = {})
      : Momentum(OptimizerParams(std::move(params)), std::move(learning_rate), momentum, std::move(options)) {}

  std::string name() const override { return "Momentum"; }
  /// The momentum in use (a loaded "momentum" entry replaces it; see Optimizer on exact resume).
  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

 private:
  void update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                        double weight_decay) override;
  void append_scalar_state(NamedTensors& out) const override;
  void check_scalar_state(const std::string& name, double value) const override;
  void set_scalar_state(const std::string& name, const Tensor& value) override;

  double momentum_;
  bool nesterov_;
  std::size_t moments_;
};

}  // namespace anvil
