#include "framework/nn/layers/Conv1d.h"

#include <cmath>

#include "framework/ops/Conv.h"
#include "framework/ops/ShapeOps.h"

namespace anvil::nn {

Conv1d::Conv1d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, const Conv1dOptions& o)
    : in_(in_channels), out_(out_channels), k_(kernel_size), o_(o) {
  ANVIL_CHECK(in_ > 0 && out_ > 0 && k_ > 0 && o.stride > 0 && o.dilation > 0 && o.group > 0,
              "Conv1d: channels ({}, {}), kernel_size {}, stride {}, dilation {} and group {} must be positive", in_,
              out_, k_, o.stride, o.dilation, o.group);
  ANVIL_CHECK(in_ % o.group == 0 && out_ % o.group == 0,
              "Conv1d: in_channels {} and out_channels {} must be divisible by group {}", in_, out_, o.group);
  ANVIL_CHECK(o.pad_mode == "same" || o.pad_mode == "valid" || o.pad_mode == "pad",
              "Conv1d: unknown pad_mode '{}' (expected \"same\", \"valid\" or \"pad\")", o.pad_mode);
  ANVIL_CHECK(o.padding >= 0 && (o.pad_mode == "pad" || o.padding == 0),
              "Conv1d: padding {} needs pad_mode \"pad\" and must be >= 0, got pad_mode \"{}\"", o.padding,
              o.pad_mode);
  Generator& gen = o.generator ? *o.generator : default_generator();
  const HeUniform default_w(std::sqrt(5.0));
  weight_ = register_parameter(
      "weight", initialized(Shape{out_, in_ / o.group, 1, k_},
                            o.weight_init ? *o.weight_init : static_cast<const Initializer&>(default_w), gen));
  if (o.has_bias) {
    const Uniform default_b(1.0 / std::sqrt(static_cast<double>(in_ / o.group * k_)));
    bias_ = register_parameter(
        "bias", initialized(Shape{out_}, o.bias_init ? *o.bias_init : static_cast<const Initializer&>(default_b), gen));
  }
}

Tensor Conv1d::forward(const Tensor& x) {
  ANVIL_CHECK(x.defined() && x.rank() == 3 && x.dim(1) == in_,
              "Conv1d({} -> {}, kernel {}): input {} does not match weight {} (expected [N,{},L])", in_, out_, k_,
              x.defined() ? x.shape().str() : "undefined", weight_.shape().str(), in_);
  Conv2dParams p;
  p.stride_w = o_.stride;
  p.dilation_w = o_.dilation;
  p.groups = o_.group;
  ops::resolve_padding(o_.pad_mode, x.dim(2), k_, o_.stride, o_.dilation, o_.padding, p.pad_left, p.pad_right);
  const std::int64_t span = x.dim(2) + p.pad_left + p.pad_right;
  ANVIL_CHECK(span >= o_.dilation * (k_ - 1) + 1,
              "Conv1d({} -> {}, kernel {}): input length {} (padded {}) is shorter than the dilated kernel {}", in_,
              out_, k_, x.dim(2), span, o_.dilation * (k_ - 1) + 1);
  // [N, C, L] -> [N, C, 1, L] -> conv2d -> [N, K, 1, L_out] -> [N, K, L_out]
  const Tensor y = ops::conv2d(ops::reshape(x, Shape{x.dim(0), in_, 1, x.dim(2)}), weight_, bias_, p);
  return ops::reshape(y, Shape{y.dim(0), y.dim(1), y.dim(3)});
}

std::string Conv1d::extra_repr() const {
  return fmt::format("in_channels={}, out_channels={}, kernel_size={}, stride={}, pad_mode={}, padding={}, "
                     "dilation={}, group={}, has_bias={}",
                     in_, out_, k_, o_.stride, o_.pad_mode, o_.padding, o_.dilation, o_.group, o_.has_bias);
}

}  // namespace anvil::nn
