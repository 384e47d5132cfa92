// Loss: the running mean of the training/evaluation loss (MindSpore nn.Loss), weighted by batch size.
//
// update(loss, labels): `loss` is float32/float64, 0-d or 1-D (a 1-D loss is averaged first, as
// MindSpore does); `labels` only supplies the weight:
//   weight = labels.dim(0) when labels is defined and has rank >= 1 (the batch size),
//   weight = 1 when labels is undefined (Tensor{}) or 0-d.
// eval() = sum(weight * loss) / sum(weight). Model calls update(loss, labels) with the batch's labels,
// so eval() is the per-sample mean over the epoch even when the last batch is smaller;
// update(loss, Tensor{}) gives the plain mean over update() calls (MindSpore's behaviour).
#pragma once

#include "framework/metrics/Metric.h"

namespace anvil {

class Loss : public Metric {
 public:
  void clear() override;
  /// Errors: undefined loss, a dtype other than float32/float64, rank > 1, or an empty loss (metric left
  /// unchanged). A NaN or infinite loss is accumulated as is (eval() then reports it).
  void update(const Tensor& loss, const Tensor& labels) override;
  /// Weighted mean. Throws when the total weight is 0 (no sample seen since clear()).
  double eval() const override;
  /// "loss"
  std::string name() const override { return "loss"; }

 private:
  double weighted_sum_ = 0.0;
  double total_weight_ = 0.0;
};

}  // namespace anvil
