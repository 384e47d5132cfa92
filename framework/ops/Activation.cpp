#include "framework/ops/Activation.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class EltwiseBackward final : public autograd::Node {
 public:
  EltwiseBackward(Backend& bk, EltwiseKind kind, Tensor x, Tensor y, double alpha, double beta)
      : bk_(bk), kind_(kind), x_(std::move(x)), y_(std::move(y)), alpha_(alpha), beta_(beta) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    return {bk_.eltwise_backward(kind_, dy, x_, y_, alpha_, beta_)};
  }
  std::string name() const override { return "EltwiseBackward"; }
  void release_saved() override { x_ = y_ = Tensor(); }

 private:
  Backend& bk_;
  EltwiseKind kind_;
  Tensor x_, y_;
  double alpha_, beta_;
};

}  // namespace

Tensor eltwise(EltwiseKind kind, const Tensor& x, double alpha, double beta) {
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  Backend& bk = backend_for(x.device());
  Tensor y = bk.eltwise_forward(kind, x, alpha, beta);
  if (autograd::any_requires_grad({&x}))
    autograd::set_history(y, std::make_shared<EltwiseBackward>(bk, kind, x, y.detach(), alpha, beta), {&x});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kEltwise, .inputs = {x}, .output = y, .eltwise = kind, .alpha = alpha, .beta = beta});
  return y;
}

}  // namespace anvil::ops
