#include "framework/nn/layers/LayerNorm.h"

#include "framework/ops/LayerNorm.h"

namespace anvil::nn {

LayerNorm::LayerNorm(std::vector<std::int64_t> normalized_shape, const LayerNormOptions& o)
    : shape_(normalized_shape), o_(o) {
  bool ok = !normalized_shape.empty();
  for (auto d : normalized_shape) ok = ok && d > 0;
  ANVIL_CHECK(ok, "LayerNorm: normalized_shape {} must be non-empty with positive sizes", shape_.str());
  ANVIL_CHECK(o.epsilon > 0, "LayerNorm: epsilon must be positive, got {}", o.epsilon);
  gamma_ = register_parameter("gamma", Tensor::ones(shape_));
  beta_ = register_parameter("beta", Tensor::zeros(shape_));
}

Tensor LayerNorm::forward(const Tensor& x) {
  const std::size_t k = shape_.rank();
  bool ok = x.defined() && x.rank() >= k;
  for (std::size_t i = 0; ok && i < k; ++i) ok = x.shape()[x.rank() - k + i] == shape_[i];
  ANVIL_CHECK(ok, "LayerNorm({}): input {} does not end with the normalized shape {}", shape_.str(),
              x.defined() ? x.shape().str() : "undefined", shape_.str());
  return ops::layer_norm(x, gamma_, beta_, o_.epsilon);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("normalized_shape={}, epsilon={}", shape_.str(), o_.epsilon);
}

}  // namespace anvil::nn
