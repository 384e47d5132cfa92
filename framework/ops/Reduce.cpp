#include "framework/ops/Reduce.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"

namespace anvil::ops {
namespace {

class ReduceBackward final : public autograd::Node {
 public:
  ReduceBackward(Backend& bk, Shape in, Shape kept, double factor)
      : bk_(bk), in_(std::move(in)), kept_(std::move(kept)), factor_(factor) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    // Broadcast dy (viewed with the reduced dims kept as 1) back to the input shape, times 1 or 1/n.
    Tensor g = bk_.binary(BinaryKind::kAdd, Tensor::zeros(in_, dy.dtype()), dy.view(kept_));
    if (factor_ != 1.0) g = bk_.eltwise_forward(EltwiseKind::kLinear, g, factor_, 0.0);
    return {g};
  }
  std::string name() const override { return "ReduceBackward"; }

 private:
  Backend& bk_;
  Shape in_, kept_;
  double factor_;
};

Tensor reduce_impl(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim, bool is_mean, bool all) {
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  const auto r = static_cast<std::int64_t>(x.rank());
  std::vector<std::int64_t> kept = x.shape().dims();
  std::vector<bool> reduced(x.rank(), all);
  for (auto a : axes) {
    ANVIL_CHECK(a >= -r && a < r, "axis {} out of range for {}", a, x.desc());
    reduced[static_cast<std::size_t>(a < 0 ? a + r : a)] = true;
  }
  std::int64_t count = 1;
  std::vector<std::int64_t> out, reduced_axes;
  for (std::size_t i = 0; i < x.rank(); ++i) {
    if (reduced[i]) reduced_axes.push_back(static_cast<std::int64_t>(i));
    if (reduced[i]) {
      count *= kept[i];
      kept[i] = 1;
      if (keepdim) out.push_back(1);
    } else {
      out.push_back(kept[i]);
    }
  }
  Backend& bk = backend_for(x.device());
  Tensor y = bk.reduce(is_mean ? ReduceKind::kMean : ReduceKind::kSum, x, Shape(kept)).view(Shape(out));
  if (autograd::any_requires_grad({&x}))
    autograd::set_history(
        y, std::make_shared<ReduceBackward>(bk, x.shape(), Shape(kept), is_mean ? 1.0 / static_cast<double>(count) : 1.0),
        {&x});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kReduce, .inputs = {x}, .output = y, .reduce = is_mean ? ReduceKind::kMean : ReduceKind::kSum,
              .axes = reduced_axes, .keepdim = keepdim});
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_impl(x, {}, false, false, true); }
Tensor mean(const Tensor& x) { return reduce_impl(x, {}, false, true, true); }
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  return reduce_impl(x, axes, keepdim, false, false);
}
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  return reduce_impl(x, axes, keepdim, true, false);
}

}  // namespace anvil::ops
