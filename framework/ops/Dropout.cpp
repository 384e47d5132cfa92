#include "framework/ops/Dropout.h"

#include "framework/ops/Arithmetic.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class NullTracer final : public OpTracer {
 public:
  void on_op(const TracedOp&) override {}
};

OpTracer& null_tracer() {
  static NullTracer t;
  return t;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "drop probability must be in [0, 1), got {}", p);
  if (!training || p == 0.0) return x;
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const double keep_scale = 1.0 / (1.0 - p);
  const auto n = static_cast<std::size_t>(x.numel());
  auto fill = [&](auto z) {
    using T = decltype(z);
    T* m = mask.data<T>();
    for (std::size_t i = 0; i < n; ++i) m[i] = gen.uniform() < p ? T(0) : static_cast<T>(keep_scale);
  };
  if (x.dtype() == DType::kF64) fill(double{});
  else fill(float{});
  Tensor y;
  {
    // The multiply is an implementation detail: trace one dropout op instead of a binary op.
    TraceScope silence(null_tracer());
    y = mul(x, mask);
  }
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kDropout, .inputs = {x}, .output = y, .p = p});
  return y;
}

Tensor dropout2d(const Tensor& x, double p, Generator& gen, bool training) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "drop probability must be in [0, 1), got {}", p);
  ANVIL_CHECK(x.defined() && x.rank() == 4, "input must be [N,C,H,W], got {}", x.defined() ? x.desc() : "undefined");
  if (!training || p == 0.0) return x;
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  Tensor mask = Tensor::empty(Shape{x.dim(0), x.dim(1), 1, 1}, x.dtype());  // [N, C, 1, 1]
  const double keep_scale = 1.0 / (1.0 - p);
  const auto n = static_cast<std::size_t>(mask.numel());
  auto fill = [&](auto z) {
    using T = decltype(z);
    T* m = mask.data<T>();
    for (std::size_t i = 0; i < n; ++i) m[i] = gen.uniform() < p ? T(0) : static_cast<T>(keep_scale);
  };
  if (x.dtype() == DType::kF64) fill(double{});
  else fill(float{});
  Tensor y;
  {
    TraceScope silence(null_tracer());
    y = mul(x, mask);  // broadcast over H, W
  }
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kDropout, .inputs = {x}, .output = y, .p = p});
  return y;
}

}  // namespace anvil::ops
