#include "framework/nn/losses/SmoothL1Loss.h"

#include "framework/ops/Loss.h"

namespace anvil::nn {

SmoothL1Loss::SmoothL1Loss(const SmoothL1LossOptions& o) : LossCell(o.reduction), beta_(o.beta) {
  ANVIL_CHECK(beta_ > 0, "SmoothL1Loss: beta must be positive, got {}", beta_);
}

Tensor SmoothL1Loss::forward(const Tensor& pred, const Tensor& target) {
  return ops::smooth_l1_loss(pred, target, beta_, reduction());
}

std::string SmoothL1Loss::extra_repr() const { return fmt::format("beta={}, reduction={}", beta_, reduction()); }

}  // namespace anvil::nn
