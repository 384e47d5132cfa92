// GlobalAvgPool: the mean of each channel over its spatial plane, i.e. adaptive average pooling to
// 1x1 (MindSpore nn.AdaptiveAvgPool2d(1) or ops.ReduceMean(keep_dims)(x, (2, 3)); PyTorch
// nn.AdaptiveAvgPool2d(1)). No parameters.
#pragma once

#include "framework/nn/Cell.h"

namespace anvil::nn {

struct GlobalAvgPoolOptions {
  /// true: output [N, C, 1, 1] (AdaptiveAvgPool2d(1)); false: [N, C] (ready for a Dense layer).
  bool keep_dims = true;
};

class GlobalAvgPool : public Cell {
 public:
  explicit GlobalAvgPool(const GlobalAvgPoolOptions& options = {}) : o_(options) {}
  /// x [N, C, H, W] -> y [N, C, 1, 1] (or [N, C]) with y[n, c] = mean over (h, w) of x[n, c, h, w].
  /// Throws naming the layer and the shape unless x is a float rank-4 tensor with H, W > 0.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool"; }
  std::string extra_repr() const override;

 private:
  GlobalAvgPoolOptions o_;
};

}  // namespace anvil::nn
