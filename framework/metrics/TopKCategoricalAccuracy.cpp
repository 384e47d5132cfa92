#include "framework/metrics/TopKCategoricalAccuracy.h"

#include "framework/core/Error.h"
#include "framework/metrics/ClassLabels.h"

namespace anvil {

TopKCategoricalAccuracy::TopKCategoricalAccuracy(std::int64_t k) : k_(k) {
  ANVIL_CHECK(k >= 1, "k must be >= 1, got {}", k);
}

void TopKCategoricalAccuracy::clear() {
  correct_ = 0;
  total_ = 0;
}

void TopKCategoricalAccuracy::update(const Tensor& logits, const Tensor& labels) {
  const std::string who = "TopKCategoricalAccuracy(" + std::to_string(k_) + ").update";
  const auto s = detail::read_class_scores(who, logits);  // [N, C]
  const auto y = detail::read_class_labels(who, labels, s.n, s.c);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < s.n; ++i) {
    const double* row = s.values.data() + i * s.c;
    const double target = row[y[static_cast<std::size_t>(i)]];
    std::int64_t higher = 0;  // classes scoring strictly above the label
    for (std::int64_t j = 0; j < s.c; ++j)
      if (row[j] > target) ++higher;
    if (higher < k_) ++correct;
  }
  correct_ += correct;
  total_ += s.n;
}

double TopKCategoricalAccuracy::eval() const {
  ANVIL_CHECK(total_ > 0, "{}: no samples; call update() at least once after clear()", name());
  return static_cast<double>(correct_) / static_cast<double>(total_);
}

std::string TopKCategoricalAccuracy::name() const { return "top_" + std::to_string(k_) + "_accuracy"; }

}  // namespace anvil
