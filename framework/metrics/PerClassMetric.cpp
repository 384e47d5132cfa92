#include "framework/metrics/PerClassMetric.h"

#include "framework/core/Error.h"
#include "framework/metrics/ClassLabels.h"

namespace anvil {

void PerClassMetric::clear() {
  true_positives_.clear();
  predicted_.clear();
  actual_.clear();
  total_ = 0;
}

void PerClassMetric::update(const Tensor& y_pred, const Tensor& y) {
  const std::string who = display_name() + ".update";
  const auto s = detail::read_class_scores(who, y_pred);  // [N, C]
  const auto labels = detail::read_class_labels(who, y, s.n, s.c);
  if (!true_positives_.empty() && s.c != num_classes())
    throw Error(fmt::format("{}: predictions {} have {} classes but earlier batches had {} (call clear() first)",
                            who, y_pred.desc(), s.c, num_classes()));
  const auto c = static_cast<std::size_t>(s.c);
  // Count into fresh vectors first, so a failure above leaves the metric unchanged.
  std::vector<std::int64_t> tp(c, 0), pred(c, 0), act(c, 0);
  for (std::int64_t i = 0; i < s.n; ++i) {
    const double* row = s.values.data() + i * s.c;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < s.c; ++j)
      if (row[j] > row[best]) best = j;
    const auto label = labels[static_cast<std::size_t>(i)];
    ++pred[static_cast<std::size_t>(best)];
    ++act[static_cast<std::size_t>(label)];
    if (best == label) ++tp[static_cast<std::size_t>(best)];
  }
  if (true_positives_.empty()) {
    true_positives_.assign(c, 0);
    predicted_.assign(c, 0);
    actual_.assign(c, 0);
  }
  for (std::size_t j = 0; j < c; ++j) {
    true_positives_[j] += tp[j];
    predicted_[j] += pred[j];
    actual_[j] += act[j];
  }
  total_ += s.n;
}

std::vector<double> PerClassMetric::per_class() const {
  ANVIL_CHECK(total_ > 0, "{}: no samples; call update() at least once after clear()", display_name());
  std::vector<double> out(true_positives_.size());
  for (std::size_t j = 0; j < out.size(); ++j) out[j] = class_value(true_positives_[j], predicted_[j], actual_[j]);
  return out;
}

double PerClassMetric::eval() const {
  const auto v = per_class();
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

}  // namespace anvil
