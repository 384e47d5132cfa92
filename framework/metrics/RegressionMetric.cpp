#include "framework/metrics/RegressionMetric.h"

#include <cmath>

#include "framework/core/Error.h"

namespace anvil {

void RegressionMetric::clear() {
  error_sum_ = 0.0;
  samples_ = 0;
}

void RegressionMetric::update(const Tensor& y_pred, const Tensor& y) {
  const std::string who = display_name() + ".update";
  if (!y_pred.defined() || !y.defined())
    throw Error(fmt::format("{}: the {} is an undefined tensor", who, y_pred.defined() ? "target" : "prediction"));
  if (!is_compute_type(y_pred.dtype()) || y_pred.rank() < 1 || y_pred.dim(0) < 1)
    throw Error(fmt::format("{}: predictions must be float32/float64 [N, ...] with N >= 1, got {}", who,
                            y_pred.desc()));
  if (y.dtype() != DType::kF32 && y.dtype() != DType::kF64 && y.dtype() != DType::kI32 && y.dtype() != DType::kI64 &&
      y.dtype() != DType::kU8)
    throw Error(fmt::format("{}: targets must be a float or integer tensor, got {}", who, y.desc()));
  if (y.numel() != y_pred.numel())
    throw Error(fmt::format("{}: predictions {} and targets {} hold different numbers of elements ({} vs {})", who,
                            y_pred.desc(), y.desc(), y_pred.numel(), y.numel()));
  const auto p = y_pred.to_vector<double>();
  const auto t = y.to_vector<double>();
  double sum = 0.0;
  for (std::size_t i = 0; i < p.size(); ++i) sum += element_error(p[i] - t[i]);
  error_sum_ += sum;
  samples_ += y_pred.dim(0);
}

double RegressionMetric::eval() const {
  ANVIL_CHECK(samples_ > 0, "{}: no samples; call update() at least once after clear()", display_name());
  return error_sum_ / static_cast<double>(samples_);
}

double MAE::element_error(double diff) const { return std::abs(diff); }

double MSE::element_error(double diff) const { return diff * diff; }

}  // namespace anvil
