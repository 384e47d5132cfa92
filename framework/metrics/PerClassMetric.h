// PerClassMetric: the shared accumulator of the single-label classification metrics Precision, Recall and
// Fbeta/F1 (MindSpore nn.Precision / nn.Recall / nn.Fbeta, eval_type "classification").
//
// update(y_pred, y): y_pred float32/float64 [N, C] logits or probabilities; y int32/int64 [N] class
// indices in [0, C), or a float [N, C] one-hot matrix. The predicted class is the argmax of each row
// (FIRST maximum on ties, as Accuracy). Per class c the metric counts
//   true_positives[c]   samples predicted c whose label is c,
//   predicted[c]        samples predicted c          (true + false positives),
//   actual[c]           samples whose label is c      (true positives + false negatives).
// C is fixed by the first update after clear(); a later batch with another C is an error (MindSpore's
// "class number not match").
//
// Zero denominators: MindSpore divides by (denominator + eps) with eps = DBL_MIN, so a class that is
// never predicted has precision 0, a class that never occurs has recall 0, and F-beta is 0 when both
// counts are 0. Anvil returns exactly 0 in those cases (never NaN). The average is the plain (macro)
// mean over all C classes, those zeros included (MindSpore's eval(average=True)).
//
// eval() returns the macro average (Model reports one double per metric); per_class() is MindSpore's
// eval(average=False). MindSpore's eval_type "multilabel" (0/1 matrices for both inputs) is not
// implemented: a float [N, C] label matrix is read as one-hot (its argmax), as in classification mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/metrics/Metric.h"

namespace anvil {

class PerClassMetric : public Metric {
 public:
  void clear() override;
  /// Errors (anvil::Error naming the metric and the tensors; the metric is left unchanged): predictions
  /// not float [N, C]; labels neither int [N] nor float [N, C]; N mismatch; a label outside [0, C);
  /// C different from the C of earlier batches since clear().
  void update(const Tensor& y_pred, const Tensor& y) override;
  /// Mean of per_class() over the C classes. Throws anvil::Error when no sample was seen since clear().
  double eval() const override;
  /// The value of every class (length C). Throws anvil::Error when no sample was seen since clear().
  std::vector<double> per_class() const;

  /// Number of classes (0 before the first update after clear()).
  std::int64_t num_classes() const { return static_cast<std::int64_t>(true_positives_.size()); }
  /// Counts per class (empty before the first update after clear()).
  const std::vector<std::int64_t>& true_positives() const { return true_positives_; }
  const std::vector<std::int64_t>& predicted_positives() const { return predicted_; }
  const std::vector<std::int64_t>& actual_positives() const { return actual_; }
  /// Samples seen since clear().
  std::int64_t total() const { return total_; }

 protected:
  /// The metric's value for one class from its counts (0 for a zero denominator).
  virtual double class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t actual) const = 0;
  /// Name used in error messages, e.g. "Precision".
  virtual std::string display_name() const = 0;

 private:
  std::vector<std::int64_t> true_positives_;
  std::vector<std::int64_t> predicted_;
  std::vector<std::int64_t> actual_;
  std::int64_t total_ = 0;
};

}  // namespace anvil
