#include "framework/ops/Pool.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class Pool2dBackward final : public autograd::Node {
 public:
  Pool2dBackward(Backend& bk, Tensor x, PoolResult fwd, const Pool2dParams& p)
      : bk_(bk), x_(std::move(x)), fwd_(std::move(fwd)), p_(p) {}
  std::vector<Tensor> apply(const Tensor& dy) override { return {bk_.pool2d_backward(dy, x_, fwd_, p_)}; }
  std::string name() const override { return p_.kind == PoolKind::kMax ? "MaxPool2dBackward" : "AvgPool2dBackward"; }
  void release_saved() override {
    x_ = Tensor();
    fwd_ = PoolResult{};
  }

 private:
  Backend& bk_;
  Tensor x_;
  PoolResult fwd_;
  Pool2dParams p_;
};

}  // namespace

Tensor pool2d(const Tensor& x, const Pool2dParams& p) {
  ANVIL_CHECK(x.rank() == 4, "input must be [N,C,H,W], got {}", x.shape().str());
  (void)conv_out_size(x.dim(2), p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, 1);
  (void)conv_out_size(x.dim(3), p.kernel_w, p.stride_w, p.pad_left, p.pad_right, 1);
  Backend& bk = backend_for(x.device());
  PoolResult r = bk.pool2d_forward(x, p);
  Tensor y = r.y;
  if (autograd::any_requires_grad({&x})) {
    // The node keeps the workspace, not y itself, to avoid a reference cycle through y's grad_fn.
    PoolResult saved{y.detach(), r.workspace};
    autograd::set_history(y, std::make_shared<Pool2dBackward>(bk, x, std::move(saved), p), {&x});
  }
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kPool2d, .inputs = {x}, .output = y, .pool = p});
  return y;
}

}  // namespace anvil::ops
