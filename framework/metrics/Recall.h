// Recall: per-class and macro-averaged recall TP / (TP + FN) of single-label classification
// (MindSpore nn.Recall, eval_type "classification"). Inputs, counting, ties and zero denominators:
// see PerClassMetric.h. A class that never occurs in the labels has recall 0 (it still counts in the
// average, as in MindSpore).
#pragma once

#include "framework/metrics/PerClassMetric.h"

namespace anvil {

class Recall : public PerClassMetric {
 public:
  /// "recall"
  std::string name() const override { return "recall"; }

 protected:
  double class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t actual) const override;
  std::string display_name() const override { return "Recall"; }
};

}  // namespace anvil
