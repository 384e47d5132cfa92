// Accuracy: fraction of samples whose predicted class equals the label (MindSpore nn.Accuracy,
// classification mode).
//
// update(logits, labels): logits float32/float64 [N, C]; labels int32/int64 [N] in [0, C), or a float
// [N, C] one-hot matrix. The predicted class is the argmax over axis 1; on ties the FIRST maximum wins
// (numpy's argmax), so [[2, 2]] predicts class 0. (TopKCategoricalAccuracy with k = 1 resolves ties in
// the label's favour instead.)
#pragma once

#include <cstdint>

#include "framework/metrics/Metric.h"

namespace anvil {

class Accuracy : public Metric {
 public:
  void clear() override;
  /// Errors: wrong dtypes or shapes, N mismatch, labels outside [0, C) (metric left unchanged).
  void update(const Tensor& logits, const Tensor& labels) override;
  /// correct / total. Throws when no sample was seen since clear().
  double eval() const override;
  /// "accuracy"
  std::string name() const override { return "accuracy"; }

  std::int64_t correct() const { return correct_; }
  std::int64_t total() const { return total_; }

 private:
  std::int64_t correct_ = 0;
  std::int64_t total_ = 0;
};

}  // namespace anvil
