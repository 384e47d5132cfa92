#include "framework/optim/AdamW.h"

#include "framework/backend/Backend.h"
#include "framework/optim/Adam.h"

namespace anvil {

AdamW::AdamW(OptimizerParams params, LearningRate learning_rate, AdamWOptions options)
    : Optimizer("AdamW", std::move(params), std::move(learning_rate), options.weight_decay, options.decay_filter),
      beta1_(options.beta1),
      beta2_(options.beta2),
      eps_(options.eps) {
  detail::check_adam_hyper_parameters("AdamW", beta1_, beta2_, eps_);
  adam_m_ = add_slot("adam_m");
  adam_v_ = add_slot("adam_v");
}

void AdamW::update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                             double weight_decay) {
  // The decoupled kernel does no bias correction; the beta powers are unused (0 keeps 1 - power = 1).
  backend.adam_update(param, grad, slot(adam_m_, index), slot(adam_v_, index), lr, beta1_, beta2_, eps_,
                      weight_decay, /*beta1_power=*/0.0, /*beta2_power=*/0.0, /*decoupled=*/true);
}

}  // namespace anvil
