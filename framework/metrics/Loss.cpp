#include "framework/metrics/Loss.h"

#include "framework/core/Error.h"

namespace anvil {

void Loss::clear() {
  weighted_sum_ = 0.0;
  total_weight_ = 0.0;
}

void Loss::update(const Tensor& loss, const Tensor& labels) {
  ANVIL_CHECK(loss.defined(), "Loss.update: the loss is an undefined tensor");
  ANVIL_CHECK(is_compute_type(loss.dtype()) && loss.rank() <= 1 && loss.numel() >= 1,
              "Loss.update: the loss must be a float32/float64 scalar or non-empty 1-D tensor, got {}", loss.desc());
  double value = 0.0;
  for (double v : loss.to_vector<double>()) value += v;
  value /= static_cast<double>(loss.numel());
  const double weight = labels.defined() && labels.rank() >= 1 ? static_cast<double>(labels.dim(0)) : 1.0;
  weighted_sum_ += weight * value;
  total_weight_ += weight;
}

double Loss::eval() const {
  ANVIL_CHECK(total_weight_ > 0.0, "Loss: no samples; call update() at least once after clear()");
  return weighted_sum_ / total_weight_;
}

}  // namespace anvil
