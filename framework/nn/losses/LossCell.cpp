#include "framework/nn/losses/LossCell.h"

#include "framework/ops/Loss.h"

namespace anvil::nn {

LossCell::LossCell(std::string reduction) : reduction_(std::move(reduction)) {
  ANVIL_CHECK(reduction_ == "mean" || reduction_ == "sum" || reduction_ == "none",
              "unknown reduction '{}' (expected \"mean\", \"sum\" or \"none\")", reduction_);
}

Tensor LossCell::forward(const Tensor&) {
  ANVIL_THROW("{} takes (logits, labels); call forward(logits, labels)", type_name());
}

SoftmaxCrossEntropyWithLogits::SoftmaxCrossEntropyWithLogits(bool sparse, std::string reduction)
    : LossCell(std::move(reduction)) {
  ANVIL_CHECK(sparse, "only sparse=true (class-index labels) is supported");
}

Tensor SoftmaxCrossEntropyWithLogits::forward(const Tensor& logits, const Tensor& labels) {
  return ops::softmax_cross_entropy(logits, labels, reduction());
}

Tensor MSELoss::forward(const Tensor& pred, const Tensor& target) {
  return ops::mse_loss(pred, target, reduction());
}

}  // namespace anvil::nn
