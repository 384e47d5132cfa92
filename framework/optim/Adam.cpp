#include "framework/optim/Adam.h"

#include <cmath>

#include <fmt/format.h>

#include "framework/backend/Backend.h"
#include "framework/core/Error.h"

namespace anvil {

namespace detail {
void check_adam_hyper_parameters(const std::string& who, double beta1, double beta2, double eps) {
  if (!(beta1 >= 0.0 && beta1 < 1.0)) throw Error(fmt::format("{}: beta1 must be in [0, 1), got {}", who, beta1));
  if (!(beta2 >= 0.0 && beta2 < 1.0)) throw Error(fmt::format("{}: beta2 must be in [0, 1), got {}", who, beta2));
  if (!std::isfinite(eps) || eps <= 0.0) throw Error(fmt::format("{}: eps must be finite and > 0, got {}", who, eps));
}
}  // namespace detail

Adam::Adam(OptimizerParams params, LearningRate learning_rate, AdamOptions options)
    : Optimizer("Adam", std::move(params), std::move(learning_rate), options.weight_decay, options.decay_filter),
      beta1_(options.beta1),
      beta2_(options.beta2),
      eps_(options.eps) {
  detail::check_adam_hyper_parameters("Adam", beta1_, beta2_, eps_);
  moment1_ = add_slot("moment1");
  moment2_ = add_slot("moment2");
}

void Adam::begin_step() {
  // float32 arithmetic on purpose: the checkpointed float32 value is then exactly the value in use.
  beta1_power_ = beta1_power_ * static_cast<float>(beta1_);
  beta2_power_ = beta2_power_ * static_cast<float>(beta2_);
}

void Adam::update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                            double weight_decay) {
  backend.adam_update(param, grad, slot(moment1_, index), slot(moment2_, index), lr, beta1_, beta2_, eps_,
                      weight_decay, beta1_power_, beta2_power_, /*decoupled=*/false);
}

void Adam::append_scalar_state(NamedTensors& out) const {
  out.emplace_back("beta1_power", Tensor::scalar(beta1_power_, DType::kF32));
  out.emplace_back("beta2_power", Tensor::scalar(beta2_power_, DType::kF32));
}

void Adam::check_scalar_state(const std::string& name, double value) const {
  if (name != "beta1_power" && name != "beta2_power") Optimizer::check_scalar_state(name, value);
  if (!(value >= 0.0 && value <= 1.0))
    throw Error(fmt::format("Adam.load_state_dict: entry '{}' must be in [0, 1], got {}", name, value));
}

void Adam::set_scalar_state(const std::string& name, const Tensor& value) {
  const auto v = static_cast<float>(value.item());
  if (name == "beta1_power")
    beta1_power_ = v;
  else if (name == "beta2_power")
    beta2_power_ = v;
  else
    Optimizer::set_scalar_state(name, value);
}

}  // namespace anvil
