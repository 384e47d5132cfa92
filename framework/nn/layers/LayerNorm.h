// LayerNorm: normalization over the trailing dims of each sample (MindSpore nn.LayerNorm, PyTorch
// nn.LayerNorm).
#pragma once

#include <cstdint>
#include <vector>

#include "framework/nn/Cell.h"

namespace anvil::nn {

struct LayerNormOptions {
  /// Added to the variance. MindSpore's default is 1e-7 (PyTorch's 1e-5).
  double epsilon = 1e-7;
};

class LayerNorm : public Cell {
 public:
  /// y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with mean and the biased variance over the
  /// last normalized_shape.size() dims of x. Parameters "gamma" (ones) and "beta" (zeros) of shape
  /// normalized_shape, MindSpore's names (PyTorch: weight, bias). This is MindSpore's
  /// begin_norm_axis = begin_params_axis = -normalized_shape.size() (PyTorch's semantics).
  /// Throws when normalized_shape is empty or has a non-positive size, or epsilon <= 0.
  explicit LayerNorm(std::vector<std::int64_t> normalized_shape, const LayerNormOptions& options = {});
  /// x [..., normalized_shape...] -> same shape. Throws naming the layer and both shapes when x does
  /// not end with normalized_shape.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  Tensor gamma() const { return gamma_; }
  Tensor beta() const { return beta_; }

 private:
  Shape shape_;
  LayerNormOptions o_;
  Tensor gamma_, beta_;
};

}  // namespace anvil::nn
