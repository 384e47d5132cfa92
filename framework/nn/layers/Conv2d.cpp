#include "framework/nn/layers/Conv2d.h"

#include <cmath>

#include "framework/ops/Conv.h"

namespace anvil::nn {

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, const Conv2dOptions& o)
    : in_(in_channels), out_(out_channels), k_(kernel_size), o_(o) {
  ANVIL_CHECK(in_ > 0 && out_ > 0 && k_ > 0 && o.stride > 0 && o.dilation > 0 && o.group > 0,
              "channels ({}, {}), kernel_size {}, stride {}, dilation {} and group {} must be positive", in_, out_, k_,
              o.stride, o.dilation, o.group);
  ANVIL_CHECK(in_ % o.group == 0 && out_ % o.group == 0, "in_channels {} and out_channels {} must be divisible by group {}",
              in_, out_, o.group);
  ANVIL_CHECK(o.pad_mode == "same" || o.pad_mode == "valid" || o.pad_mode == "pad",
              "unknown pad_mode '{}' (expected \"same\", \"valid\" or \"pad\")", o.pad_mode);
  ANVIL_CHECK(o.pad_mode == "pad" || o.padding == 0, "padding {} needs pad_mode \"pad\", got \"{}\"", o.padding,
              o.pad_mode);
  Generator& gen = o.generator ? *o.generator : default_generator();
  const HeUniform default_w(std::sqrt(5.0));
  weight_ = register_parameter("weight", initialized(Shape{out_, in_ / o.group, k_, k_},
                                                     o.weight_init ? *o.weight_init : static_cast<const Initializer&>(default_w), gen));
  if (o.has_bias) {
    const Uniform default_b(1.0 / std::sqrt(static_cast<double>(in_ / o.group * k_ * k_)));
    bias_ = register_parameter("bias", initialized(Shape{out_}, o.bias_init ? *o.bias_init : static_cast<const Initializer&>(default_b), gen));
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  ANVIL_CHECK(x.rank() == 4 && x.dim(1) == in_, "Conv2d({} -> {}, kernel {}): input {} does not match weight {} "
              "(expected [N,{},H,W])", in_, out_, k_, x.shape().str(), weight_.shape().str(), in_);
  Conv2dParams p;
  p.stride_h = p.stride_w = o_.stride;
  p.dilation_h = p.dilation_w = o_.dilation;
  p.groups = o_.group;
  ops::resolve_padding(o_.pad_mode, x.dim(2), k_, o_.stride, o_.dilation, o_.padding, p.pad_top, p.pad_bottom);
  ops::resolve_padding(o_.pad_mode, x.dim(3), k_, o_.stride, o_.dilation, o_.padding, p.pad_left, p.pad_right);
  return ops::conv2d(x, weight_, bias_, p);
}

std::string Conv2d::extra_repr() const {
  return fmt::format("in_channels={}, out_channels={}, kernel_size={}, stride={}, pad_mode={}, padding={}, "
                     "dilation={}, group={}, has_bias={}",
                     in_, out_, k_, o_.stride, o_.pad_mode, o_.padding, o_.dilation, o_.group, o_.has_bias);
}

}  // namespace anvil::nn
