#include "framework/nn/layers/Activations.h"

#include "framework/ops/Activation.h"
#include "framework/ops/ShapeOps.h"

namespace anvil::nn {

Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return ops::leaky_relu(x, alpha_); }
Tensor Sigmoid::forward(const Tensor& x) { return ops::sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return ops::tanh(x); }
Tensor GELU::forward(const Tensor& x) { return ops::gelu(x); }
Tensor Flatten::forward(const Tensor& x) { return ops::flatten(x); }

}  // namespace anvil::nn
