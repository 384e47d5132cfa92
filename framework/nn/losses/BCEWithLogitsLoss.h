// BCEWithLogitsLoss: sigmoid + binary cross-entropy in one numerically stable formula
// (MindSpore nn.BCEWithLogitsLoss, PyTorch nn.BCEWithLogitsLoss).
#pragma once

#include <string>

#include "framework/nn/losses/LossCell.h"

namespace anvil::nn {

struct BCEWithLogitsLossOptions {
  /// "mean" (MindSpore's default), "sum" or "none".
  std::string reduction = "mean";
  /// Optional rescaling weight broadcast to the logits (undefined = 1).
  Tensor weight = Tensor();
  /// Optional weight of positive examples broadcast to the logits, usually [C] (undefined = 1).
  Tensor pos_weight = Tensor();
};

class BCEWithLogitsLoss : public LossCell {
 public:
  using LossCell::forward;
  /// Throws on an unknown reduction.
  explicit BCEWithLogitsLoss(const BCEWithLogitsLossOptions& options = {});
  /// logits x and labels y (float probabilities, same shape and dtype):
  /// l = weight * (pos_weight * y * softplus(-x) + (1 - y) * softplus(x)), reduced; never overflows
  /// for large |x|. Throws naming the shapes when they differ or a weight does not broadcast.
  /// Weights given in float32 are converted to the logits' dtype on use.
  Tensor forward(const Tensor& logits, const Tensor& labels) override;
  std::string type_name() const override { return "BCEWithLogitsLoss"; }

 private:
  Tensor weight_, pos_weight_;
};

}  // namespace anvil::nn
