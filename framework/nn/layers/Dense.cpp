#include "framework/nn/layers/Dense.h"

#include <cmath>

#include "framework/ops/Linear.h"

namespace anvil::nn {

Dense::Dense(std::int64_t in_channels, std::int64_t out_channels, const DenseOptions& o)
    : in_(in_channels), out_(out_channels) {
  ANVIL_CHECK(in_channels > 0 && out_channels > 0, "in_channels ({}) and out_channels ({}) must be positive",
              in_channels, out_channels);
  Generator& gen = o.generator ? *o.generator : default_generator();
  const HeUniform default_w(std::sqrt(5.0));
  weight_ = register_parameter("weight", initialized(Shape{out_, in_}, o.weight_init ? *o.weight_init : static_cast<const Initializer&>(default_w), gen));
  if (o.has_bias) {
    const Uniform default_b(1.0 / std::sqrt(static_cast<double>(in_)));
    bias_ = register_parameter("bias", initialized(Shape{out_}, o.bias_init ? *o.bias_init : static_cast<const Initializer&>(default_b), gen));
  }
}

Tensor Dense::forward(const Tensor& x) {
  ANVIL_CHECK(x.rank() == 2 && x.dim(1) == in_, "Dense({} -> {}): input {} does not match weight {} (expected [N,{}])",
              in_, out_, x.shape().str(), weight_.shape().str(), in_);
  return ops::linear(x, weight_, bias_);
}

std::string Dense::extra_repr() const {
  return fmt::format("in_channels={}, out_channels={}, has_bias={}", in_, out_, bias_.defined());
}

}  // namespace anvil::nn
