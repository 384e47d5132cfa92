// NLLLoss: negative log-likelihood of class-index labels given log-probabilities
// (MindSpore nn.NLLLoss, PyTorch nn.NLLLoss). Pair it with a log_softmax output.
#pragma once

#include <cstdint>
#include <string>

#include "framework/nn/losses/LossCell.h"

namespace anvil::nn {

struct NLLLossOptions {
  /// Optional per-class weight [C] (undefined = 1); a constant, it gets no gradient.
  Tensor weight = Tensor();
  /// Samples whose label equals this contribute nothing (MindSpore's and PyTorch's default -100).
  std::int64_t ignore_index = -100;
  /// "mean" (default: Σ l_n / Σ weight[y_n] over the samples not ignored), "sum" or "none".
  std::string reduction = "mean";
};

class NLLLoss : public LossCell {
 public:
  using LossCell::forward;
  /// Throws on an unknown reduction or a non-float weight that is not [C].
  explicit NLLLoss(const NLLLossOptions& options = {});
  /// log_probs [N, C], labels [N] int32/int64: l_n = -weight[y_n] * log_probs[n, y_n].
  /// Throws naming the shapes on mismatch and the position and value of a label outside [0, C).
  Tensor forward(const Tensor& log_probs, const Tensor& labels) override;
  std::string type_name() const override { return "NLLLoss"; }
  std::string extra_repr() const override;

 private:
  Tensor weight_;
  std::int64_t ignore_index_;
};

}  // namespace anvil::nn
