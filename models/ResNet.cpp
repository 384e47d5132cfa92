#include "models/ResNet.h"

#include <cmath>

#include "framework/nn/Initializer.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Conv.h"
#include "framework/ops/Pool.h"
#include "framework/ops/Reduce.h"

namespace anvil::models {
namespace {

// The zoo initializes every convolution with kaiming_normal(mode="fan_out", nonlinearity="relu").
std::shared_ptr<nn::Initializer> conv_init() { return std::make_shared<nn::HeNormal>(0.0, "fan_out", "relu"); }

// _conv3x3 / _conv1x1 / _conv7x7 of resnet.py: res_base uses pad_mode "pad" with k/2 padding, the rest
// pad_mode "same"; never a bias.
std::shared_ptr<nn::Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride, bool res_base,
                                 Generator* gen) {
  nn::Conv2dOptions o{.stride = stride, .pad_mode = res_base ? "pad" : "same", .padding = res_base ? k / 2 : 0,
                      .has_bias = false, .weight_init = conv_init(), .generator = gen};
  return std::make_shared<nn::Conv2d>(in, out, k, o);
}

// _bn of resnet.py: res_base -> eps 1e-5, momentum 0.1; otherwise eps 1e-4, momentum 0.9 (MindSpore's
// convention: moving = momentum * moving + (1 - momentum) * batch).
std::shared_ptr<nn::BatchNorm2d> bn(std::int64_t c, bool res_base) {
  return std::make_shared<nn::BatchNorm2d>(c, res_base ? nn::BatchNormOptions{.eps = 1e-5, .momentum = 0.1}
                                                       : nn::BatchNormOptions{.eps = 1e-4, .momentum = 0.9});
}

std::shared_ptr<nn::SequentialCell> down_sample(std::int64_t in, std::int64_t out, std::int64_t stride, bool res_base,
                                                Generator* gen) {
  return std::make_shared<nn::SequentialCell>(
      std::vector<std::shared_ptr<nn::Cell>>{conv(in, out, 1, stride, res_base, gen), bn(out, res_base)});
}

void check_block_args(std::int64_t in, std::int64_t out, std::int64_t stride) {
  ANVIL_CHECK(in > 0 && out > 0 && stride > 0, "in_channel {}, out_channel {} and stride {} must be positive", in, out,
              stride);
}

}  // namespace

// ---- BasicBlock (ResidualBlockBase, res_base=True) ----

BasicBlock::BasicBlock(std::int64_t in_channel, std::int64_t out_channel, std::int64_t stride, Generator* gen)
    : in_(in_channel), out_(out_channel), stride_(stride) {
  check_block_args(in_channel, out_channel, stride);
  conv1_ = register_cell("conv1", conv(in_, out_, 3, stride_, true, gen));
  bn1d_ = register_cell("bn1d", bn(out_, false));  // the zoo calls _bn(out_channel) without res_base here
  conv2_ = register_cell("conv2", conv(out_, out_, 3, 1, true, gen));
  bn2d_ = register_cell("bn2d", bn(out_, false));
  if (stride_ != 1 || in_ != out_)
    down_sample_layer_ = register_cell("down_sample_layer", down_sample(in_, out_, stride_, true, gen));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = ops::relu(bn1d_->forward(conv1_->forward(x)));  // [N, out, H/s, W/s]
  out = bn2d_->forward(conv2_->forward(out));
  Tensor identity = down_sample_layer_ ? down_sample_layer_->forward(x) : x;
  return ops::relu(ops::add(out, identity));
}

std::string BasicBlock::extra_repr() const {
  return fmt::format("in_channel={}, out_channel={}, stride={}", in_, out_, stride_);
}

// ---- Bottleneck (ResidualBlock, expansion 4) ----

Bottleneck::Bottleneck(std::int64_t in_channel, std::int64_t out_channel, std::int64_t stride, Generator* gen)
    : in_(in_channel), out_(out_channel), stride_(stride) {
  check_block_args(in_channel, out_channel, stride);
  ANVIL_CHECK(out_ % kExpansion == 0, "out_channel {} must be a multiple of {}", out_, kExpansion);
  const std::int64_t mid = out_ / kExpansion;
  conv1_ = register_cell("conv1", conv(in_, mid, 1, 1, false, gen));
  bn1_ = register_cell("bn1", bn(mid, false));
  conv2_ = register_cell("conv2", conv(mid, mid, 3, stride_, false, gen));
  bn2_ = register_cell("bn2", bn(mid, false));
  conv3_ = register_cell("conv3", conv(mid, out_, 1, 1, false, gen));
  bn3_ = register_cell("bn3", bn(out_, false));
  if (stride_ != 1 || in_ != out_)
    down_sample_layer_ = register_cell("down_sample_layer", down_sample(in_, out_, stride_, false, gen));
}

Tensor Bottleneck::forward(const Tensor& x) {
  Tensor out = ops::relu(bn1_->forward(conv1_->forward(x)));  // [N, mid, H, W]
  out = ops::relu(bn2_->forward(conv2_->forward(out)));       // [N, mid, H/s, W/s]
  out = bn3_->forward(conv3_->forward(out));                  // [N, out, H/s, W/s]
  Tensor identity = down_sample_layer_ ? down_sample_layer_->forward(x) : x;
  return ops::relu(ops::add(out, identity));
}

std::string Bottleneck::extra_repr() const {
  return fmt::format("in_channel={}, out_channel={}, stride={}", in_, out_, stride_);
}

// ---- ResNet ----

ResNet::ResNet(BlockKind block, std::array<std::int64_t, 4> layer_nums, std::array<std::int64_t, 4> in_channels,
               std::array<std::int64_t, 4> out_channels, std::array<std::int64_t, 4> strides, bool res_base,
               const ResNetOptions& o)
    : o_(o), res_base_(res_base) {
  ANVIL_CHECK(o.in_channels > 0 && o.num_classes > 0 && o.base_width > 0,
              "in_channels {}, num_classes {} and base_width {} must be positive", o.in_channels, o.num_classes,
              o.base_width);
  Generator* gen = o.generator;
  const std::int64_t stem = in_channels[0];
  if (o.small_input)
    conv1_ = register_cell("conv1", std::make_shared<nn::Conv2d>(o.in_channels, stem, 3,
                                                                 nn::Conv2dOptions{.stride = 1, .pad_mode = "pad",
                                                                                   .padding = 1, .has_bias = false,
                                                                                   .weight_init = conv_init(),
                                                                                   .generator = gen}));
  else
    conv1_ = register_cell("conv1", conv(o.in_channels, stem, 7, 2, res_base, gen));
  bn1_ = register_cell("bn1", bn(stem, res_base));
  for (std::size_t l = 0; l < 4; ++l) {
    ANVIL_CHECK(layer_nums[l] > 0, "layer{} needs at least one block, got {}", l + 1, layer_nums[l]);
    auto seq = std::make_shared<nn::SequentialCell>();
    for (std::int64_t b = 0; b < layer_nums[l]; ++b) {
      const std::int64_t in = b == 0 ? in_channels[l] : out_channels[l];
      const std::int64_t stride = b == 0 ? strides[l] : 1;
      if (block == BlockKind::kBasic)
        seq->append(std::make_shared<BasicBlock>(in, out_channels[l], stride, gen));
      else
        seq->append(std::make_shared<Bottleneck>(in, out_channels[l], stride, gen));
    }
    layers_[l] = register_cell("layer" + std::to_string(l + 1), seq);
  }
  // _fc: kaiming_uniform(a=√5) weight (MindSpore's Dense default), zero bias.
  end_point_ = register_cell(
      "end_point", std::make_shared<nn::Dense>(out_channels[3], o.num_classes,
                                               nn::DenseOptions{.has_bias = true,
                                                                .bias_init = std::make_shared<nn::Constant>(0.0),
                                                                .generator = gen}));
}

Tensor ResNet::forward(const Tensor& x) {
  ANVIL_CHECK(x.rank() == 4 && x.dim(1) == o_.in_channels, "ResNet expects input [N,{},H,W], got {}", o_.in_channels,
              x.shape().str());
  Tensor h = ops::relu(bn1_->forward(conv1_->forward(x)));  // [N, w, H', W']
  if (!o_.small_input) {
    Pool2dParams p{.kind = PoolKind::kMax, .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2};
    if (res_base_) {
      // nn.Pad(1, 1) with zeros + MaxPool2d(3, 2, "valid"); h >= 0, so -inf padding gives the same maxima.
      p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    } else {
      // MaxPool2d(3, 2, "same").
      ops::resolve_padding("same", h.dim(2), 3, 2, 1, 0, p.pad_top, p.pad_bottom);
      ops::resolve_padding("same", h.dim(3), 3, 2, 1, 0, p.pad_left, p.pad_right);
    }
    h = ops::pool2d(h, p);
  }
  for (auto& layer : layers_) h = layer->forward(h);  // [N, C5, P, Q]
  h = ops::mean(h, {2, 3});                          // [N, C5]
  return end_point_->forward(h);                     // [N, num_classes]
}

std::string ResNet::extra_repr() const {
  return fmt::format("in_channels={}, num_classes={}, small_input={}, base_width={}", o_.in_channels, o_.num_classes,
                     o_.small_input, o_.base_width);
}

std::shared_ptr<ResNet> resnet18(const ResNetOptions& o) {
  const std::int64_t w = o.base_width;
  return std::make_shared<ResNet>(ResNet::BlockKind::kBasic, std::array<std::int64_t, 4>{2, 2, 2, 2},
                                  std::array<std::int64_t, 4>{w, w, 2 * w, 4 * w},
                                  std::array<std::int64_t, 4>{w, 2 * w, 4 * w, 8 * w},
                                  std::array<std::int64_t, 4>{1, 2, 2, 2}, true, o);
}

std::shared_ptr<ResNet> resnet50(const ResNetOptions& o) {
  const std::int64_t w = o.base_width;
  return std::make_shared<ResNet>(ResNet::BlockKind::kBottleneck, std::array<std::int64_t, 4>{3, 4, 6, 3},
                                  std::array<std::int64_t, 4>{w, 4 * w, 8 * w, 16 * w},
                                  std::array<std::int64_t, 4>{4 * w, 8 * w, 16 * w, 32 * w},
                                  std::array<std::int64_t, 4>{1, 2, 2, 2}, false, o);
}

}  // namespace anvil::models
