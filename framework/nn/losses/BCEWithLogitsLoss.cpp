#include "framework/nn/losses/BCEWithLogitsLoss.h"

#include "framework/ops/Loss.h"

namespace anvil::nn {

BCEWithLogitsLoss::BCEWithLogitsLoss(const BCEWithLogitsLossOptions& o)
    : LossCell(o.reduction), weight_(o.weight), pos_weight_(o.pos_weight) {
  ANVIL_CHECK(!weight_.defined() || is_compute_type(weight_.dtype()), "BCEWithLogitsLoss: weight must be float, got {}",
              weight_.desc());
  ANVIL_CHECK(!pos_weight_.defined() || is_compute_type(pos_weight_.dtype()),
              "BCEWithLogitsLoss: pos_weight must be float, got {}", pos_weight_.desc());
}

Tensor BCEWithLogitsLoss::forward(const Tensor& logits, const Tensor& labels) {
  auto as = [&](const Tensor& w) { return w.defined() && w.dtype() != logits.dtype() ? w.to(logits.dtype()) : w; };
  return ops::bce_with_logits(logits, labels, as(weight_), as(pos_weight_), reduction());
}

}  // namespace anvil::nn
