#include "framework/metrics/Accuracy.h"

#include "framework/core/Error.h"
#include "framework/metrics/ClassLabels.h"

namespace anvil {

void Accuracy::clear() {
  correct_ = 0;
  total_ = 0;
}

void Accuracy::update(const Tensor& logits, const Tensor& labels) {
  const auto s = detail::read_class_scores("Accuracy.update", logits);  // [N, C]
  const auto y = detail::read_class_labels("Accuracy.update", labels, s.n, s.c);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < s.n; ++i) {
    const double* row = s.values.data() + i * s.c;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < s.c; ++j)
      if (row[j] > row[best]) best = j;
    if (best == y[static_cast<std::size_t>(i)]) ++correct;
  }
  correct_ += correct;
  total_ += s.n;
}

double Accuracy::eval() const {
  ANVIL_CHECK(total_ > 0, "Accuracy: no samples; call update() at least once after clear()");
  return static_cast<double>(correct_) / static_cast<double>(total_);
}

}  // namespace anvil
