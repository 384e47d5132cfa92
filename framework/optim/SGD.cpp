#include "framework/optim/SGD.h"

#include "framework/backend/Backend.h"

namespace anvil {

SGD::SGD(OptimizerParams params, LearningRate learning_rate, SGDOptions options)
    : Optimizer("SGD", std::move(params), std::move(learning_rate), options.weight_decay, options.decay_filter) {}

void SGD::update_parameter(Backend& backend, std::size_t, Tensor& param, const Tensor& grad, double lr,
                           double weight_decay) {
  backend.sgd_update(param, grad, lr, weight_decay);
}

}  // namespace anvil
