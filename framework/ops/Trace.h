// Op tracing: while a TraceScope is active on a thread, every differentiable op reports what it
// computed (kind, inputs, output, attributes) to the scope's OpTracer. Exporters (serialization/onnx)
// run a forward pass under a tracer to learn the network's graph; nothing is recorded otherwise and the
// cost when no tracer is active is one thread_local load per op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/backend/Backend.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

enum class OpKind {
  kLinear,       // inputs x, w[, b]
  kMatmul,       // inputs a, b; trans_a, trans_b
  kConv2d,       // inputs x, w[, b]; conv
  kPool2d,       // input x; pool
  kEltwise,      // input x; eltwise, alpha, beta
  kSoftmax,      // input x; axis; log
  kBinary,       // inputs a, b; binary
  kReduce,       // input x; reduce (kSum or kMean), axes (non-negative, empty = all), keepdim
  kReshape,      // input x; output shape is the target
  kBatchNorm,    // inputs x, gamma, beta, mean, var; training, eps, momentum
  kDropout,      // input x (training only; inference records nothing); p
  kSoftmaxCrossEntropy,  // inputs logits, labels
  kLayerNorm,    // inputs x, gamma, beta; eps, axis (first normalized axis of x)
  kEmbedding,    // inputs table [V, E], indices (int32/int64)
};

/// One traced op. Tensors are handles: compare them with Tensor::same() or by impl() to follow values.
struct TracedOp {
  OpKind kind;
  std::vector<Tensor> inputs{};  // undefined entries for absent optional inputs (e.g. no bias)
  Tensor output{};
  Conv2dParams conv{};
  Pool2dParams pool{};
  EltwiseKind eltwise = EltwiseKind::kRelu;
  BinaryKind binary = BinaryKind::kAdd;
  ReduceKind reduce = ReduceKind::kSum;
  double alpha = 0, beta = 0, eps = 0, momentum = 0, p = 0;
  std::int64_t axis = 0;
  std::vector<std::int64_t> axes{};
  bool log = false, keepdim = false, training = false, trans_a = false, trans_b = false;
};

class OpTracer {
 public:
  virtual ~OpTracer() = default;
  /// Called after each op computed its output, in execution order.
  virtual void on_op(const TracedOp& op) = 0;
};

/// RAII: routes this thread's ops to `tracer` until destroyed (nests; the innermost wins).
class TraceScope {
 public:
  explicit TraceScope(OpTracer& tracer);
  ~TraceScope();
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  OpTracer* previous_;
};

/// The active tracer of this thread, or null.
OpTracer* current_tracer();

}  // namespace anvil::ops
