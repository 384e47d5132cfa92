// Adam: MindSpore nn.Adam (L2 weight decay added to the gradient, bias-corrected step).
//
// Every step first advances the beta powers, in float32 as MindSpore does:
//   beta1_power = float32(beta1_power * float32(beta1)),  same for beta2   (both start at 1)
// then, for each parameter p with gradient g (Backend::adam_update, decoupled = false):
//   g' = g + weight_decay * p                  (only for parameters the decay filter accepts)
//   m  = beta1 * m + (1 - beta1) * g'
//   v  = beta2 * v + (1 - beta2) * g'^2
//   p  = p - lr * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps)
// The beta powers live in float32 (not double) so that the checkpointed values are exactly the ones
// in use: a run resumed from a checkpoint continues bit-identically. Bias correction uses the beta
// powers, not global_step (MindSpore leaves global_step at 0 with a fixed learning rate).
// State: "global_step", "learning_rate", "beta1_power", "beta2_power" (float32 0-d),
//        "moment1.<param>", "moment2.<param>".
#pragma once

#include <utility>

#include "framework/optim/Optimizer.h"

namespace anvil {

/// Optional arguments of Adam: AdamOptions{.beta2 = 0.98, .eps = 1e-9}.
struct AdamOptions {
  double beta1 = 0.9;         // in [0, 1)
  double beta2 = 0.999;       // in [0, 1)
  double eps = 1e-8;          // > 0
  double weight_decay = 0.0;  // L2 penalty added to the gradient; >= 0
  ParamFilter decay_filter = {};  // which parameters decay; empty = mindspore_decay_filter
};

class Adam : public Optimizer {
 public:
  /// Preconditions: beta1, beta2 in [0, 1); eps finite and > 0; plus Optimizer's. Violations throw
  /// anvil::Error naming the argument and value.
  explicit Adam(OptimizerParams params, LearningRate learning_rate = 1e-3, AdamOptions options = {});
  /// A plain parameter list (kept as its own overload so that braced lists {{"w", w}} still work).
  explicit Adam(NamedTensors params, LearningRate learning_rate = 1e-3, AdamOptions options = {})
      : Adam(OptimizerParams(std::move(params)), std::move(learning_rate), std::move(options)) {}

  std::string name() const override { return "Adam"; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  /// beta1^t and beta2^t after t steps (float32; 1 before the first step).
  float beta1_power() const { return beta1_power_; }
  float beta2_power() const { return beta2_power_; }

 private:
  void begin_step() override;
  void update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                        double weight_decay) override;
  void append_scalar_state(NamedTensors& out) const override;
  void check_scalar_state(const std::string& name, double value) const override;
  void set_scalar_state(const std::string& name, const Tensor& value) override;

  double beta1_, beta2_, eps_;
  float beta1_power_ = 1.0f;
  float beta2_power_ = 1.0f;
  std::size_t moment1_, moment2_;
};

namespace detail {
/// Validates beta1, beta2 in [0, 1) and eps finite > 0; throws anvil::Error("<who>: ...").
void check_adam_hyper_parameters(const std::string& who, double beta1, double beta2, double eps);
}  // namespace detail

}  // namespace anvil
