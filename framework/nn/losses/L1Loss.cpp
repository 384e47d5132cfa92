#include "framework/nn/losses/L1Loss.h"

#include "framework/ops/Loss.h"

namespace anvil::nn {

Tensor L1Loss::forward(const Tensor& pred, const Tensor& target) { return ops::l1_loss(pred, target, reduction()); }

}  // namespace anvil::nn
