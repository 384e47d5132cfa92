#include "framework/metrics/Precision.h"

namespace anvil {

double Precision::class_value(std::int64_t true_positives, std::int64_t predicted, std::int64_t) const {
  return predicted == 0 ? 0.0 : static_cast<double>(true_positives) / static_cast<double>(predicted);
}

}  // namespace anvil
