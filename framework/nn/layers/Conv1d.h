// Conv1d: 1-D convolution over [N, C, L] input (MindSpore nn.Conv1d, PyTorch nn.Conv1d), computed as
// a 2-D convolution of the [N, C, 1, L] view with a [K, C/group, 1, k] kernel.
#pragma once

#include <memory>
#include <string>

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/nn/Initializer.h"

namespace anvil::nn {

struct Conv1dOptions {
  std::int64_t stride = 1;
  /// "same" (MindSpore's default; output = ceil(L/stride), the extra padding at the end), "valid", "pad".
  std::string pad_mode = "same";
  /// Used with pad_mode "pad": zeros added at both ends.
  std::int64_t padding = 0;
  std::int64_t dilation = 1;
  std::int64_t group = 1;
  bool has_bias = false;  // MindSpore's default
  /// Default (null): HeUniform(negative_slope = √5), as MindSpore 2.x (fan_in = in_channels/group * kernel_size).
  std::shared_ptr<Initializer> weight_init = nullptr;
  /// Default (null): U(±1/√fan_in).
  std::shared_ptr<Initializer> bias_init = nullptr;
  Generator* generator = nullptr;
};

class Conv1d : public Cell {
 public:
  /// Parameters "weight" [out_channels, in_channels/group, 1, kernel_size] and, with has_bias, "bias"
  /// [out_channels]. The 4-D weight is the Parameter MindSpore's nn.Conv1d stores (it too runs a 2-D
  /// convolution on an [N, C, 1, L] view; its docs describe the kernel as (C_out, C_in/group,
  /// kernel_size)), so its checkpoints load unchanged; a PyTorch Conv1d weight [out, in/group, k]
  /// needs a reshape to this shape before load_param_into_net accepts it.
  /// Throws when a size is not positive, channels are not divisible by group, or pad_mode is unknown.
  Conv1d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         const Conv1dOptions& options = {});
  /// x [N, in_channels, L] -> [N, out_channels, L_out] with
  /// L_out = floor((L + pad_before + pad_after - dilation*(kernel_size-1) - 1) / stride) + 1.
  /// Throws naming the layer and the shapes on a mismatch.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv1d"; }
  std::string extra_repr() const override;
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }
  const Conv1dOptions& options() const { return o_; }

 private:
  std::int64_t in_, out_, k_;
  Conv1dOptions o_;
  Tensor weight_, bias_;
};

}  // namespace anvil::nn
