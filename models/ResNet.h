// ResNet-18 and ResNet-50 with the structure, hyper-parameters and parameter names of MindSpore's model
// zoo, so that its checkpoints load without renaming:
//   mindspore-ai/models, official/cv/ResNet/src/resnet.py — classes ResNet, ResidualBlockBase (our
//   BasicBlock), ResidualBlock (our Bottleneck), functions resnet18() and resnet50().
//
// Parameter names (ResNet-18):
//   conv1.weight, bn1.{gamma,beta} (+ buffers bn1.{moving_mean,moving_variance}),
//   layer1.0.conv1.weight, layer1.0.bn1d.gamma, layer1.0.conv2.weight, layer1.0.bn2d.gamma, ...,
//   layer2.0.down_sample_layer.0.weight, layer2.0.down_sample_layer.1.gamma, ..., end_point.{weight,bias}.
// ResNet-50 blocks use conv1/bn1, conv2/bn2, conv3/bn3 and down_sample_layer.{0,1} (layer1.0 has one too).
//
// Differences from the zoo file, none of which changes a name or a shape:
// - ResNet-18's stem pads with zeros and max-pools "valid" (nn.Pad + MaxPool2d); we max-pool with one
//   pixel of implicit padding instead. The input there is a ReLU output (>= 0) so the results are equal.
// - Global average pooling is mean over H, W without keep_dims, which equals ReduceMean(keep_dims) + Flatten.
// - ResNetOptions::small_input replaces the 7×7/2 stem and its max-pool by a 3×3/1 convolution (same
//   name conv1.weight, shape [w, in_channels, 3, 3]) for 28×28 or 32×32 images (Fashion-MNIST, CIFAR);
//   ResNetOptions::base_width scales every channel count (64 in the zoo) for small test instances.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "framework/core/Random.h"
#include "framework/nn/Cell.h"
#include "framework/nn/layers/BatchNorm2d.h"
#include "framework/nn/layers/Conv2d.h"
#include "framework/nn/layers/Dense.h"

namespace anvil::models {

struct ResNetOptions {
  /// Channels of the input image (3 for RGB, 1 for Fashion-MNIST).
  std::int64_t in_channels = 3;
  /// Outputs of end_point (MindSpore's resnet18/resnet50 default class_num is 10).
  std::int64_t num_classes = 10;
  /// true: 3×3 stride-1 conv1 (padding 1) and no max-pool, for small images; false: the zoo's 7×7/2 stem.
  bool small_input = false;
  /// Channels of the stem and of layer1's 3×3 convolutions (64 in the zoo); every stage scales with it.
  std::int64_t base_width = 64;
  /// Generator for initialization; null uses default_generator().
  Generator* generator = nullptr;
};

/// MindSpore ResidualBlockBase (ResNet-18/34): conv3×3(stride) → bn1d → ReLU → conv3×3 → bn2d, plus the
/// identity or down_sample_layer = SequentialCell[conv1×1(stride), BatchNorm2d], then ReLU.
class BasicBlock : public nn::Cell {
 public:
  /// Throws when a channel count or the stride is not positive.
  BasicBlock(std::int64_t in_channel, std::int64_t out_channel, std::int64_t stride, Generator* generator);
  /// x [N, in_channel, H, W] -> [N, out_channel, ceil(H/stride), ceil(W/stride)].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }
  std::string extra_repr() const override;

 private:
  std::int64_t in_, out_, stride_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1d_, bn2d_;
  std::shared_ptr<nn::SequentialCell> down_sample_layer_;  // null when the block keeps the shape
};

/// MindSpore ResidualBlock (ResNet-50/101/152, expansion 4): conv1×1 → bn1 → ReLU → conv3×3(stride) →
/// bn2 → ReLU → conv1×1 → bn3, plus the identity or down_sample_layer, then ReLU. Convolutions use
/// pad_mode "same" as in the zoo.
class Bottleneck : public nn::Cell {
 public:
  static constexpr std::int64_t kExpansion = 4;
  /// out_channel must be a positive multiple of 4 (the middle width is out_channel / 4).
  Bottleneck(std::int64_t in_channel, std::int64_t out_channel, std::int64_t stride, Generator* generator);
  /// x [N, in_channel, H, W] -> [N, out_channel, ceil(H/stride), ceil(W/stride)].
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Bottleneck"; }
  std::string extra_repr() const override;

 private:
  std::int64_t in_, out_, stride_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<nn::SequentialCell> down_sample_layer_;
};

/// MindSpore ResNet: stem (conv1, bn1, ReLU, max-pool 3/2) → layer1..layer4 (SequentialCell of blocks)
/// → mean over H, W → end_point Dense. Input [N, in_channels, H, W] (H, W >= 1); output logits
/// [N, num_classes]. Use resnet18() / resnet50() to build one.
class ResNet : public nn::Cell {
 public:
  enum class BlockKind { kBasic, kBottleneck };
  /// The zoo's ResNet(block, layer_nums, in_channels, out_channels, strides, num_classes, res_base):
  /// `res_base` selects ResNet-18's stem (padding 3, BatchNorm eps 1e-5 / momentum 0.1, padded valid
  /// max-pool) instead of ResNet-50's ("same" padding, eps 1e-4 / momentum 0.9).
  /// Throws when a count is not positive or options are invalid.
  ResNet(BlockKind block, std::array<std::int64_t, 4> layer_nums, std::array<std::int64_t, 4> in_channels,
         std::array<std::int64_t, 4> out_channels, std::array<std::int64_t, 4> strides, bool res_base,
         const ResNetOptions& options);
  /// x [N, in_channels, H, W] -> logits [N, num_classes]; throws naming the shape on a mismatch.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ResNet"; }
  std::string extra_repr() const override;
  const ResNetOptions& options() const { return o_; }

 private:
  ResNetOptions o_;
  bool res_base_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::array<std::shared_ptr<nn::SequentialCell>, 4> layers_;
  std::shared_ptr<nn::Dense> end_point_;
};

/// ResNet-18 (zoo resnet18: BasicBlock, [2, 2, 2, 2], channels 64-128-256-512 at base_width 64,
/// res_base). About 11.2M parameters at 3 input channels and 10 classes.
std::shared_ptr<ResNet> resnet18(const ResNetOptions& options = {});
/// ResNet-50 (zoo resnet50: Bottleneck, [3, 4, 6, 3], outputs 256-512-1024-2048 at base_width 64).
/// About 23.5M parameters at 10 classes (25.6M at 1001).
std::shared_ptr<ResNet> resnet50(const ResNetOptions& options = {});

}  // namespace anvil::models
