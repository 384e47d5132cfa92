// BatchNorm2d (MindSpore nn.BatchNorm2d): parameters "gamma", "beta"; buffers "moving_mean",
// "moving_variance" — MindSpore's names, so its checkpoints load without renaming.
#pragma once

#include "framework/nn/Cell.h"

namespace anvil::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  /// MindSpore convention: moving = momentum * moving + (1 - momentum) * batch.
  double momentum = 0.9;
  /// false freezes gamma (ones) and beta (zeros).
  bool affine = true;
};

class BatchNorm2d : public Cell {
 public:
  /// Throws unless num_features > 0, eps > 0 and 0 <= momentum <= 1.
  explicit BatchNorm2d(std::int64_t num_features, const BatchNormOptions& options = {});
  /// x [N, C, H, W] (or [N, C]); training uses batch statistics and updates the moving ones.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;

 private:
  std::int64_t c_;
  BatchNormOptions o_;
  Tensor gamma_, beta_, moving_mean_, moving_var_;
};

}  // namespace anvil::nn
