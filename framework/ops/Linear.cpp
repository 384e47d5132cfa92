#include "framework/ops/Linear.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"

namespace anvil::ops {
namespace {

class LinearBackward final : public autograd::Node {
 public:
  LinearBackward(Backend& bk, Tensor x, Tensor w, bool has_bias)
      : bk_(bk), x_(std::move(x)), w_(std::move(w)), has_bias_(has_bias) {}
  std::vector<Tensor> apply(const Tensor& dy) override {  // dy [N, O]
    std::vector<Tensor> g(3);
    if (next[0]) g[0] = bk_.linear_backward_data(dy, w_);
    if (next[1] || (has_bias_ && next[2])) {
      WeightGrads wg = bk_.linear_backward_weights(dy, x_, has_bias_);
      g[1] = wg.dw;
      g[2] = wg.db;
    }
    return g;
  }
  std::string name() const override { return "LinearBackward"; }
  void release_saved() override { x_ = w_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor x_, w_;
  bool has_bias_;
};

class MatmulBackward final : public autograd::Node {
 public:
  MatmulBackward(Backend& bk, Tensor a, Tensor b, bool ta, bool tb)
      : bk_(bk), a_(std::move(a)), b_(std::move(b)), ta_(ta), tb_(tb) {}
  std::vector<Tensor> apply(const Tensor& dc) override {
    std::vector<Tensor> g(2);
    // C = op(A) op(B): dop(A) = dC op(B)ᵀ, dop(B) = op(A)ᵀ dC.
    if (next[0]) g[0] = ta_ ? bk_.matmul(b_, dc, tb_, true) : bk_.matmul(dc, b_, false, !tb_);
    if (next[1]) g[1] = tb_ ? bk_.matmul(dc, a_, true, ta_) : bk_.matmul(a_, dc, !ta_, false);
    return g;
  }
  std::string name() const override { return "MatmulBackward"; }
  void release_saved() override { a_ = b_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor a_, b_;
  bool ta_, tb_;
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  ANVIL_CHECK(x.rank() == 2 && w.rank() == 2, "expected input [N,I] and weight [O,I], got input {} and weight {}",
              x.shape().str(), w.shape().str());
  ANVIL_CHECK(x.dim(1) == w.dim(1), "shape mismatch: input {} has {} features but weight {} expects {}",
              x.shape().str(), x.dim(1), w.shape().str(), w.dim(1));
  ANVIL_CHECK(x.dtype() == w.dtype(), "dtype mismatch: input {} vs weight {}", x.desc(), w.desc());
  if (b.defined())
    ANVIL_CHECK(b.rank() == 1 && b.dim(0) == w.dim(0) && b.dtype() == w.dtype(),
                "bias {} does not match weight {} (expected [{}])", b.desc(), w.desc(), w.dim(0));
  Backend& bk = backend_for_inputs({&x, &w, &b});
  Tensor y = bk.linear_forward(x, w, b);
  if (autograd::any_requires_grad({&x, &w, &b}))
    autograd::set_history(y, std::make_shared<LinearBackward>(bk, x, w, b.defined()), {&x, &w, &b});
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kLinear, .inputs = {x, w, b}, .output = y});
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  ANVIL_CHECK(a.rank() >= 2 && a.rank() == b.rank(), "operands {} and {} need equal rank >= 2", a.desc(), b.desc());
  const std::int64_t ka = trans_a ? a.dim(-2) : a.dim(-1);
  const std::int64_t kb = trans_b ? b.dim(-1) : b.dim(-2);
  ANVIL_CHECK(ka == kb, "inner dimensions differ: {}{} x {}{}", a.shape().str(), trans_a ? "ᵀ" : "",
              b.shape().str(), trans_b ? "ᵀ" : "");
  ANVIL_CHECK(a.dtype() == b.dtype(), "dtype mismatch: {} vs {}", a.desc(), b.desc());
  Backend& bk = backend_for_inputs({&a, &b});
  Tensor c = bk.matmul(a, b, trans_a, trans_b);
  if (autograd::any_requires_grad({&a, &b}))
    autograd::set_history(c, std::make_shared<MatmulBackward>(bk, a, b, trans_a, trans_b), {&a, &b});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kMatmul, .inputs = {a, b}, .output = c, .trans_a = trans_a, .trans_b = trans_b});
  return c;
}

}  // namespace anvil::ops
