// SmoothL1Loss (MindSpore nn.SmoothL1Loss, PyTorch nn.SmoothL1Loss): quadratic below beta, linear above.
#pragma once

#include <string>

#include "framework/nn/losses/LossCell.h"

namespace anvil::nn {

struct SmoothL1LossOptions {
  /// The switch point between the quadratic and the linear part; MindSpore's default 1.0. Must be > 0.
  double beta = 1.0;
  /// MindSpore's default is "none" (per-element losses); PyTorch's is "mean".
  std::string reduction = "none";
};

class SmoothL1Loss : public LossCell {
 public:
  using LossCell::forward;
  /// Throws unless beta > 0 and reduction is "mean", "sum" or "none".
  explicit SmoothL1Loss(const SmoothL1LossOptions& options = {});
  /// With d = pred - target: 0.5 d² / beta where |d| < beta, else |d| - 0.5 beta; reduced.
  /// Throws naming both shapes when they differ.
  Tensor forward(const Tensor& pred, const Tensor& target) override;
  std::string type_name() const override { return "SmoothL1Loss"; }
  std::string extra_repr() const override;

 private:
  double beta_;
};

}  // namespace anvil::nn
