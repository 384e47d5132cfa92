#include "framework/metrics/Recall.h"

namespace anvil {

double Recall::class_value(std::int64_t true_positives, std::int64_t, std::int64_t actual) const {
  return actual == 0 ? 0.0 : static_cast<double>(true_positives) / static_cast<double>(actual);
}

}  // namespace anvil
