// Dense: fully connected layer, y = x · weightᵀ + bias (MindSpore nn.Dense).
#pragma once

#include <memory>

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/nn/Initializer.h"

namespace anvil::nn {

struct DenseOptions {
  bool has_bias = true;
  /// Default (null): HeUniform(negative_slope = √5), i.e. U(±1/√in_channels), as MindSpore 2.x.
  std::shared_ptr<Initializer> weight_init = nullptr;
  /// Default (null): U(±1/√in_channels), as MindSpore 2.x.
  std::shared_ptr<Initializer> bias_init = nullptr;
  /// Generator for initialization; null uses default_generator().
  Generator* generator = nullptr;
};

class Dense : public Cell {
 public:
  /// Parameters "weight" [out_channels, in_channels] and, with has_bias, "bias" [out_channels].
  /// Throws when a channel count is not positive.
  Dense(std::int64_t in_channels, std::int64_t out_channels, const DenseOptions& options = {});
  /// x [N, in_channels] -> [N, out_channels]; throws naming both shapes on mismatch.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dense"; }
  std::string extra_repr() const override;
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }

 private:
  std::int64_t in_, out_;
  Tensor weight_, bias_;
};

}  // namespace anvil::nn
