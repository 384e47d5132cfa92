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

// x * mask, with mask of `mask_shape` (x's shape, or one that broadcasts to it) holding 0 with
// probability p and 1/(1-p) otherwise, one draw per mask element in row-major order. Traced as one
// dropout op.
Tensor apply_dropout_mask(const Tensor& x, const Shape& mask_shape, double p, Generator& gen) {
  Tensor mask = Tensor::empty(mask_shape, x.dtype());
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
    // The multiply is an implementation detail: trace one dropout op instead of a binary op.
    TraceScope silence(null_tracer());
    y = mul(x, mask);
  }
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kDropout, .inputs = {x}, .output = y, .p = p});
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, Generator& gen, bool training) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "drop probability must be in [0, 1), got {}", p);
  if (!training || p == 0.0) return x;
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  return apply_dropout_mask(x, x.shape(), p, gen);
}

Tensor dropout2d(const Tensor& x, double p, Generator& gen, bool training) {
  ANVIL_CHECK(p >= 0.0 && p < 1.0, "drop probability must be in [0, 1), got {}", p);
  ANVIL_CHECK(x.defined() && x.rank() == 4, "input must be [N,C,H,W], got {}", x.defined() ? x.desc() : "undefined");
  if (!training || p == 0.0) return x;
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  return apply_dropout_mask(x, Shape{x.dim(0), x.dim(1), 1, 1}, p, gen);  // one draw per channel, broadcast over H, W
}

}  // namespace anvil::ops
