#include "framework/metrics/Fbeta.h"

#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

Fbeta::Fbeta(double beta) : beta_(beta) {
  ANVIL_CHECK(std::isfinite(beta) && beta > 0.0, "Fbeta: beta must be a finite number > 0, got {}", beta);
}

double Fbeta::class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t actual) const {
  const double b2 = beta_ * beta_;
  const double denominator = b2 * static_cast<double>(actual) + static_cast<double>(predicted);
  return denominator == 0.0 ? 0.0 : (1.0 + b2) * static_cast<double>(true_positives) / denominator;
}

}  // namespace anvil
