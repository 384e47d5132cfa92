// Precision: per-class and macro-averaged precision TP / (TP + FP) of single-label classification
// (MindSpore nn.Precision, eval_type "classification"). Inputs, counting, ties and zero denominators:
// see PerClassMetric.h. A class that is never predicted has precision 0.
//
//   Precision p;  p.update(logits /*[N, C]*/, labels /*int [N]*/);
//   p.eval();       // macro average over the C classes
//   p.per_class();  // {precision of class 0, ..., class C-1}
#pragma once

#include "framework/metrics/PerClassMetric.h"

namespace anvil {

class Precision : public PerClassMetric {
 public:
  /// "precision"
  std::string name() const override { return "precision"; }

 protected:
  double class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t actual) const override;
  std::string display_name() const override { return "Precision"; }
};

}  // namespace anvil
