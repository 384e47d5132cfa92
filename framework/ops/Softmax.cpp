#include "framework/ops/Softmax.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"

namespace anvil::ops {
namespace {

class SoftmaxBackward final : public autograd::Node {
 public:
  SoftmaxBackward(Backend& bk, Tensor y, std::int64_t axis, bool log) : bk_(bk), y_(std::move(y)), axis_(axis), log_(log) {}
  std::vector<Tensor> apply(const Tensor& dy) override { return {bk_.softmax_backward(dy, y_, axis_, log_)}; }
  std::string name() const override { return log_ ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  void release_saved() override { y_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor y_;
  std::int64_t axis_;
  bool log_;
};

Tensor softmax_impl(const Tensor& x, std::int64_t axis, bool log) {
  const auto r = static_cast<std::int64_t>(x.rank());
  ANVIL_CHECK(axis >= -r && axis < r, "axis {} out of range for {}", axis, x.desc());
  if (axis < 0) axis += r;
  Backend& bk = backend_for(x.device());
  Tensor y = bk.softmax_forward(x, axis, log);
  if (autograd::any_requires_grad({&x}))
    autograd::set_history(y, std::make_shared<SoftmaxBackward>(bk, y.detach(), axis, log), {&x});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kSoftmax, .inputs = {x}, .output = y, .axis = axis, .log = log});
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t axis) { return softmax_impl(x, axis, false); }
Tensor log_softmax(const Tensor& x, std::int64_t axis) { return softmax_impl(x, axis, true); }

}  // namespace anvil::ops
