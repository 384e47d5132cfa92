// TopKCategoricalAccuracy: fraction of samples whose label is among the k highest-scoring classes
// (MindSpore nn.TopKCategoricalAccuracy; Top1CategoricalAccuracy / Top5CategoricalAccuracy are k = 1 / 5).
//
// update(logits, labels): logits float32/float64 [N, C]; labels int32/int64 [N] in [0, C), or a float
// [N, C] one-hot matrix.
// Ties: a sample counts as correct when FEWER than k classes score STRICTLY higher than its label
// (the strictly-greater rule). Ties therefore favour the label, and the result does not depend on any
// sort order: with scores [1, 3, 3, 0], labels 1 and 2 are both correct for k = 1 (no class scores
// strictly above 3), and label 0 is correct for k = 3 but not for k = 2. With k >= C every sample is
// correct.
#pragma once

#include <cstdint>

#include "framework/metrics/Metric.h"

namespace anvil {

class TopKCategoricalAccuracy : public Metric {
 public:
  /// Precondition: k >= 1 (throws anvil::Error otherwise).
  explicit TopKCategoricalAccuracy(std::int64_t k);

  void clear() override;
  /// Errors: wrong dtypes or shapes, N mismatch, labels outside [0, C) (metric left unchanged).
  void update(const Tensor& logits, const Tensor& labels) override;
  /// correct / total. Throws when no sample was seen since clear().
  double eval() const override;
  /// "top_<k>_accuracy", e.g. "top_5_accuracy".
  std::string name() const override;

  std::int64_t k() const { return k_; }

 private:
  std::int64_t k_;
  std::int64_t correct_ = 0;
  std::int64_t total_ = 0;
};

/// MindSpore nn.Top1CategoricalAccuracy: TopKCategoricalAccuracy(1), reported as "top_1_accuracy".
/// Unlike Accuracy, a tie for the highest score counts as correct when the label is among the tied classes.
class Top1CategoricalAccuracy : public TopKCategoricalAccuracy {
 public:
  Top1CategoricalAccuracy() : TopKCategoricalAccuracy(1) {}
};

/// MindSpore nn.Top5CategoricalAccuracy: TopKCategoricalAccuracy(5), reported as "top_5_accuracy".
class Top5CategoricalAccuracy : public TopKCategoricalAccuracy {
 public:
  Top5CategoricalAccuracy() : TopKCategoricalAccuracy(5) {}
};

}  // namespace anvil
