// AdamW: MindSpore nn.AdamWeightDecay — Adam with decoupled weight decay and NO bias correction.
//
// For each parameter p with gradient g (Backend::adam_update, decoupled = true):
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - lr * (m / (sqrt(v) + eps) + weight_decay * p)    (decay only for parameters the filter accepts)
// Note: unlike PyTorch's AdamW (and Adam above), m and v are NOT bias-corrected, exactly as in
// MindSpore's AdamWeightDecay; early steps are therefore smaller than PyTorch's. Defaults follow
// MindSpore: eps = 1e-6, weight_decay = 0.
// State: "global_step", "learning_rate", "adam_m.<param>", "adam_v.<param>".
#pragma once

#include <utility>

#include "framework/optim/Optimizer.h"

namespace anvil {

/// Optional arguments of AdamW: AdamWOptions{.weight_decay = 0.01}.
struct AdamWOptions {
  double beta1 = 0.9;         // in [0, 1)
  double beta2 = 0.999;       // in [0, 1)
  double eps = 1e-6;          // > 0
  double weight_decay = 0.0;  // decoupled decay; >= 0
  ParamFilter decay_filter = {};  // which parameters decay; empty = mindspore_decay_filter
};

class AdamW : public Optimizer {
 public:
  /// Preconditions: beta1, beta2 in [0, 1); eps finite and > 0; plus Optimizer's. Violations throw
  /// anvil::Error naming the argument and value.
  explicit AdamW(OptimizerParams params, LearningRate learning_rate = 1e-3, AdamWOptions options = {});
  /// A plain parameter list (kept as its own overload so that braced lists {{"w", w}} still work).
  explicit AdamW(NamedTensors params, LearningRate learning_rate = 1e-3, AdamWOptions options = {})
      : AdamW(OptimizerParams(std::move(params)), std::move(learning_rate), std::move(options)) {}

  std::string name() const override { return "AdamW"; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }

 private:
  void update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                        double weight_decay) override;

  double beta1_, beta2_, eps_;
  std::size_t adam_m_, adam_v_;
};

}  // namespace anvil
