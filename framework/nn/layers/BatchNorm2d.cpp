#include "framework/nn/layers/BatchNorm2d.h"

#include "framework/ops/BatchNorm.h"

namespace anvil::nn {

BatchNorm2d::BatchNorm2d(std::int64_t num_features, const BatchNormOptions& o) : c_(num_features), o_(o) {
  ANVIL_CHECK(c_ > 0, "num_features must be positive, got {}", c_);
  ANVIL_CHECK(o.eps > 0, "eps must be positive, got {}", o.eps);
  ANVIL_CHECK(o.momentum >= 0 && o.momentum <= 1, "momentum must be in [0, 1], got {}", o.momentum);
  gamma_ = register_parameter("gamma", Tensor::ones(Shape{c_}), o.affine);
  beta_ = register_parameter("beta", Tensor::zeros(Shape{c_}), o.affine);
  moving_mean_ = register_buffer("moving_mean", Tensor::zeros(Shape{c_}));
  moving_var_ = register_buffer("moving_variance", Tensor::ones(Shape{c_}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  ANVIL_CHECK((x.rank() == 4 || x.rank() == 2) && x.dim(1) == c_,
              "BatchNorm2d({}): input {} does not have {} channels in dimension 1", c_, x.shape().str(), c_);
  return ops::batch_norm(x, gamma_, beta_, moving_mean_, moving_var_, training(), o_.momentum, o_.eps);
}

std::string BatchNorm2d::extra_repr() const {
  return fmt::format("num_features={}, eps={}, momentum={}", c_, o_.eps, o_.momentum);
}

}  // namespace anvil::nn
