// Conv2d: 2-D convolution over NCHW input with OIHW weights (MindSpore nn.Conv2d).
#pragma once

#include <memory>
#include <string>

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/nn/Initializer.h"

namespace anvil::nn {

struct Conv2dOptions {
  std::int64_t stride = 1;
  /// "same" (MindSpore's default; output = ceil(in/stride), extra padding at bottom/right), "valid", "pad".
  std::string pad_mode = "same";
  /// Used with pad_mode "pad": zeros added on every side.
  std::int64_t padding = 0;
  std::int64_t dilation = 1;
  std::int64_t group = 1;
  bool has_bias = false;  // MindSpore's default
  /// Default (null): HeUniform(negative_slope = √5), as MindSpore 2.x.
  std::shared_ptr<Initializer> weight_init = nullptr;
  /// Default (null): U(±1/√fan_in).
  std::shared_ptr<Initializer> bias_init = nullptr;
  Generator* generator = nullptr;
};

class Conv2d : public Cell {
 public:
  /// "weight" [out_channels, in_channels/group, kernel_size, kernel_size] (+ "bias" [out_channels]).
  /// Throws when channels are not divisible by group or a size is not positive, or pad_mode is unknown.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         const Conv2dOptions& options = {});
  /// x [N, in_channels, H, W] -> [N, out_channels, P, Q]; throws naming the shapes on mismatch.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }
  const Conv2dOptions& options() const { return o_; }

 private:
  std::int64_t in_, out_, k_;
  Conv2dOptions o_;
  Tensor weight_, bias_;
};

}  // namespace anvil::nn
