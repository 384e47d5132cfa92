// PiecewiseConstantLR: MindSpore's nn.piecewise_constant_lr(milestone, learning_rates) as a schedule.
//
// With milestones m_0 <= m_1 <= ... <= m_{n-1} and values v_0 ... v_{n-1}:
//   step in [0, m_0)        -> v_0
//   step in [m_{i-1}, m_i)  -> v_i
// MindSpore's function returns a list of exactly m_{n-1} rates; past its end this schedule keeps
// returning v_{n-1} (MindSpore would run off the list). A milestone equal to its predecessor gives
// an empty interval, as in MindSpore.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/optim/LearningRateSchedule.h"

namespace anvil {

class PiecewiseConstantLR : public LearningRateSchedule {
 public:
  /// Preconditions (each violation throws anvil::Error naming the index and value):
  ///   milestones and values are non-empty and of equal length; every milestone is > 0 and
  ///   milestones are non-decreasing; every value is finite and >= 0.
  PiecewiseConstantLR(std::vector<std::int64_t> milestones, std::vector<double> values);

  /// The value of the interval holding `step` (see above). Throws for step < 0.
  double operator()(std::int64_t step) const override;

  const std::vector<std::int64_t>& milestones() const { return milestones_; }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<std::int64_t> milestones_;
  std::vector<double> values_;
};

}  // namespace anvil
