// RegressionMetric: the shared accumulator of MAE and MSE (MindSpore nn.MAE / nn.MSE).
//
// update(y_pred, y): y_pred float32/float64 [N, ...] with N >= 1; y any numeric dtype (float or int)
// with the same number of elements (MindSpore reshapes y to y_pred's shape, so [N] and [N, 1] mix).
// Accumulates   error_sum += sum over all elements of e(y_pred - y)   and   samples += N,
// and eval() = error_sum / samples. As in MindSpore the sum runs over every element of a sample, so for
// outputs with D > 1 values per sample the result is the per-sample SUM of errors averaged over samples
// (for [N] or [N, 1] outputs it is the plain mean).
#pragma once

#include <cstdint>
#include <string>

#include "framework/metrics/Metric.h"

namespace anvil {

class RegressionMetric : public Metric {
 public:
  void clear() override;
  /// Errors (anvil::Error naming the metric and both shapes; metric unchanged): undefined tensors,
  /// y_pred not float32/float64 of rank >= 1 with N >= 1, y not numeric, element counts that differ.
  void update(const Tensor& y_pred, const Tensor& y) override;
  /// error_sum / samples. Throws anvil::Error when no sample was seen since clear().
  double eval() const override;

  std::int64_t samples() const { return samples_; }
  double error_sum() const { return error_sum_; }

 protected:
  /// The error of one element from the difference prediction - target.
  virtual double element_error(double diff) const = 0;
  /// Name used in error messages, e.g. "MAE".
  virtual std::string display_name() const = 0;

 private:
  double error_sum_ = 0.0;
  std::int64_t samples_ = 0;
};

/// Mean absolute error, e = |y_pred - y| (MindSpore nn.MAE). Reported as "mae".
class MAE : public RegressionMetric {
 public:
  std::string name() const override { return "mae"; }

 protected:
  double element_error(double diff) const override;
  std::string display_name() const override { return "MAE"; }
};

/// Mean squared error, e = (y_pred - y)^2 (MindSpore nn.MSE). Reported as "mse".
class MSE : public RegressionMetric {
 public:
  std::string name() const override { return "mse"; }

 protected:
  double element_error(double diff) const override;
  std::string display_name() const override { return "MSE"; }
};

}  // namespace anvil
