#include "framework/nn/losses/NLLLoss.h"

#include "framework/ops/Loss.h"

namespace anvil::nn {

NLLLoss::NLLLoss(const NLLLossOptions& o) : LossCell(o.reduction), weight_(o.weight), ignore_index_(o.ignore_index) {
  ANVIL_CHECK(!weight_.defined() || (weight_.rank() == 1 && is_compute_type(weight_.dtype())),
              "NLLLoss: weight must be a float [C] tensor, got {}", weight_.desc());
}

Tensor NLLLoss::forward(const Tensor& log_probs, const Tensor& labels) {
  return ops::nll_loss(log_probs, labels, weight_, ignore_index_, reduction());
}

std::string NLLLoss::extra_repr() const {
  return fmt::format("ignore_index={}, reduction={}", ignore_index_, reduction());
}

}  // namespace anvil::nn
