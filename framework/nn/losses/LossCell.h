// Loss cells: compute a scalar loss from (logits, labels) — MindSpore nn.LossBase.
#pragma once

#include <string>

#include "framework/nn/Cell.h"

namespace anvil::nn {

class LossCell : public Cell {
 public:
  /// reduction: "mean" (default), "sum" or "none". Throws on anything else.
  explicit LossCell(std::string reduction = "mean");
  /// Loss of `logits` against `labels`.
  virtual Tensor forward(const Tensor& logits, const Tensor& labels) = 0;
  Tensor operator()(const Tensor& logits, const Tensor& labels) { return forward(logits, labels); }
  /// A loss needs two inputs: the one-input form throws.
  Tensor forward(const Tensor& x) override;
  const std::string& reduction() const { return reduction_; }

 private:
  std::string reduction_;
};

/// Softmax cross-entropy (MindSpore SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")):
/// logits [N, C], labels [N] int32/int64 class indices.
class SoftmaxCrossEntropyWithLogits : public LossCell {
 public:
  using LossCell::forward;
  /// Only sparse labels are supported; sparse=false throws.
  explicit SoftmaxCrossEntropyWithLogits(bool sparse = true, std::string reduction = "mean");
  Tensor forward(const Tensor& logits, const Tensor& labels) override;
  std::string type_name() const override { return "SoftmaxCrossEntropyWithLogits"; }
};

/// Mean squared error between prediction and target of equal shapes.
class MSELoss : public LossCell {
 public:
  using LossCell::forward;
  explicit MSELoss(std::string reduction = "mean") : LossCell(std::move(reduction)) {}
  Tensor forward(const Tensor& pred, const Tensor& target) override;
  std::string type_name() const override { return "MSELoss"; }
};

}  // namespace anvil::nn
