#include "framework/optim/Momentum.h"

#include <cmath>

#include <fmt/format.h>

#include "framework/backend/Backend.h"
#include "framework/core/Error.h"

namespace anvil {

Momentum::Momentum(OptimizerParams params, LearningRate learning_rate, double momentum, MomentumOptions options)
    : Optimizer("Momentum", std::move(params), std::move(learning_rate), options.weight_decay, options.decay_filter),
      momentum_(momentum),
      nesterov_(options.nesterov) {
  if (!std::isfinite(momentum) || momentum < 0.0)
    throw Error(fmt::format("Momentum: momentum must be finite and >= 0, got {}", momentum));
  moments_ = add_slot("moments");
}

void Momentum::update_parameter(Backend& backend, std::size_t index, Tensor& param, const Tensor& grad, double lr,
                                double weight_decay) {
  backend.momentum_update(param, grad, slot(moments_, index), lr, momentum_, weight_decay, nesterov_);
}

void Momentum::append_scalar_state(NamedTensors& out) const {
  out.emplace_back("momentum", Tensor::scalar(momentum_, DType::kF32));
}

void Momentum::check_scalar_state(const std::string& name, double value) const {
  if (name != "momentum") Optimizer::check_scalar_state(name, value);
  if (!std::isfinite(value) || value < 0.0)
    throw Error(fmt::format("Momentum.load_state_dict: entry 'momentum' must be finite and >= 0, got {}", value));
}

void Momentum::set_scalar_state(const std::string& name, const Tensor& value) {
  if (name != "momentum") return Optimizer::set_scalar_state(name, value);
  momentum_ = keep_exact_if_same(momentum_, value);
}

}  // namespace anvil
