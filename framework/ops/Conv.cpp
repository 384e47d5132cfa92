#include "framework/ops/Conv.h"

#include <algorithm>

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class Conv2dBackward final : public autograd::Node {
 public:
  Conv2dBackward(Backend& bk, Tensor x, Tensor w, bool has_bias, const Conv2dParams& p)
      : bk_(bk), x_(std::move(x)), w_(std::move(w)), has_bias_(has_bias), p_(p) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    std::vector<Tensor> g(3);
    if (next[0]) g[0] = bk_.conv2d_backward_data(dy, w_, x_.shape(), p_);
    if (next[1] || (has_bias_ && next[2])) {
      WeightGrads wg = bk_.conv2d_backward_weights(dy, x_, w_.shape(), has_bias_, p_);
      g[1] = wg.dw;
      g[2] = wg.db;
    }
    return g;
  }
  std::string name() const override { return "Conv2dBackward"; }
  void release_saved() override { x_ = w_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor x_, w_;
  bool has_bias_;
  Conv2dParams p_;
};

}  // namespace

void resolve_padding(const std::string& pad_mode, std::int64_t in, std::int64_t kernel, std::int64_t stride,
                     std::int64_t dilation, std::int64_t pad, std::int64_t& before, std::int64_t& after) {
  if (pad_mode == "valid") {
    before = after = 0;
  } else if (pad_mode == "pad") {
    ANVIL_CHECK(pad >= 0, "padding must be >= 0, got {}", pad);
    before = after = pad;
  } else if (pad_mode == "same") {
    const std::int64_t out = (in + stride - 1) / stride;
    const std::int64_t span = dilation * (kernel - 1) + 1;
    const std::int64_t total = std::max<std::int64_t>(0, (out - 1) * stride + span - in);
    before = total / 2;
    after = total - before;
  } else {
    ANVIL_THROW("unknown pad_mode '{}' (expected \"same\", \"valid\" or \"pad\")", pad_mode);
  }
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  ANVIL_CHECK(x.rank() == 4, "input must be [N,C,H,W], got {}", x.shape().str());
  ANVIL_CHECK(w.rank() == 4, "weight must be [K,C/groups,R,S], got {}", w.shape().str());
  ANVIL_CHECK(p.groups >= 1 && w.dim(0) % p.groups == 0, "out channels {} not divisible by groups {}", w.dim(0),
              p.groups);
  ANVIL_CHECK(x.dim(1) == w.dim(1) * p.groups,
              "shape mismatch: input {} has {} channels but weight {} with groups={} expects {}", x.shape().str(),
              x.dim(1), w.shape().str(), p.groups, w.dim(1) * p.groups);
  ANVIL_CHECK(x.dtype() == w.dtype(), "dtype mismatch: input {} vs weight {}", x.desc(), w.desc());
  if (b.defined())
    ANVIL_CHECK(b.rank() == 1 && b.dim(0) == w.dim(0), "bias {} does not match {} output channels", b.desc(),
                w.dim(0));
  // Validates that the padded input covers the kernel (throws with the sizes otherwise).
  (void)conv_out_size(x.dim(2), w.dim(2), p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h);
  (void)conv_out_size(x.dim(3), w.dim(3), p.stride_w, p.pad_left, p.pad_right, p.dilation_w);
  Backend& bk = backend_for_inputs({&x, &w, &b});
  Tensor y = bk.conv2d_forward(x, w, b, p);
  if (autograd::any_requires_grad({&x, &w, &b}))
    autograd::set_history(y, std::make_shared<Conv2dBackward>(bk, x, w, b.defined(), p), {&x, &w, &b});
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kConv2d, .inputs = {x, w, b}, .output = y, .conv = p});
  return y;
}

}  // namespace anvil::ops
