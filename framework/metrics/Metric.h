// Metric: an accumulator of an evaluation quantity over batches (MindSpore nn.Metric).
//
// Protocol: clear() at the start of an evaluation (or epoch), update(output, labels) once per batch,
// eval() for the value over everything since clear(). Model calls update(net_output, labels) for every
// metric, except Loss, which it calls as update(loss, labels) (see Loss.h).
// Tensors are read on the host; float32/float64 outputs and int32/int64 labels are accepted.
#pragma once

#include <string>

#include "framework/tensor/Tensor.h"

namespace anvil {

class Metric {
 public:
  virtual ~Metric() = default;

  /// Forgets every sample seen so far.
  virtual void clear() = 0;

  /// Accumulates one batch. Each metric documents the shapes and dtypes it accepts; bad input throws
  /// anvil::Error naming the metric, the tensors and the offending values, and leaves the metric
  /// unchanged.
  virtual void update(const Tensor& logits_or_pred, const Tensor& labels) = 0;

  /// The value over every sample since the last clear(). Throws anvil::Error when no sample was seen.
  virtual double eval() const = 0;

  /// The key under which the value is reported: "accuracy", "loss", "top_5_accuracy", ...
  virtual std::string name() const = 0;
};

}  // namespace anvil
