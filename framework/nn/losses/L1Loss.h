// L1Loss: mean absolute error (MindSpore nn.L1Loss, PyTorch nn.L1Loss).
#pragma once

#include <string>

#include "framework/nn/losses/LossCell.h"

namespace anvil::nn {

class L1Loss : public LossCell {
 public:
  using LossCell::forward;
  /// reduction "mean" (MindSpore's default), "sum" or "none"; throws on anything else.
  explicit L1Loss(std::string reduction = "mean") : LossCell(std::move(reduction)) {}
  /// |pred - target| elementwise, reduced. Throws naming both shapes when they differ.
  Tensor forward(const Tensor& pred, const Tensor& target) override;
  std::string type_name() const override { return "L1Loss"; }
};

}  // namespace anvil::nn
