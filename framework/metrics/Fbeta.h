// Fbeta / F1: per-class and macro-averaged F-beta score of single-label classification (MindSpore
// nn.Fbeta(beta) and nn.F1, eval_type "classification"):
//   F_beta[c] = (1 + beta^2) TP / ((1 + beta^2) TP + beta^2 FN + FP)
//             = (1 + beta^2) TP / (beta^2 * actual[c] + predicted[c])
// 0 when the class is neither predicted nor present (denominator 0). Inputs, counting and ties: see
// PerClassMetric.h. Example (MindSpore's): scores [[0.2,0.5],[0.3,0.1],[0.9,0.6]], labels [1,0,1]
// -> F1 per class {2/3, 2/3}.
#pragma once

#include "framework/metrics/PerClassMetric.h"

namespace anvil {

class Fbeta : public PerClassMetric {
 public:
  /// Precondition: beta > 0 and finite (anvil::Error otherwise).
  explicit Fbeta(double beta);
  /// "fbeta" (F1 overrides it with "f1").
  std::string name() const override { return "fbeta"; }
  double beta() const { return beta_; }

 protected:
  double class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t actual) const override;
  std::string display_name() const override { return "Fbeta"; }

 private:
  double beta_;
};

/// F1 = Fbeta(1), reported as "f1".
class F1 : public Fbeta {
 public:
  F1() : Fbeta(1.0) {}
  /// "f1"
  std::string name() const override { return "f1"; }

 protected:
  std::string display_name() const override { return "F1"; }
};

}  // namespace anvil
