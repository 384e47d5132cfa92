#include "framework/ops/Arithmetic.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/ops/Activation.h"

namespace anvil::ops {
namespace {

class BinaryBackward final : public autograd::Node {
 public:
  // a and b are saved only for kinds whose gradient needs their values (undefined otherwise).
  BinaryBackward(Backend& bk, BinaryKind kind, Tensor a, Tensor b, Shape ashape, Shape bshape)
      : bk_(bk), kind_(kind), a_(std::move(a)), b_(std::move(b)), ashape_(std::move(ashape)), bshape_(std::move(bshape)) {}
  std::vector<Tensor> apply(const Tensor& dc) override {
    std::vector<Tensor> g(2);
    switch (kind_) {
      case BinaryKind::kAdd:
        if (next[0]) g[0] = sum_to(dc, ashape_);
        if (next[1]) g[1] = sum_to(dc, bshape_);
        break;
      case BinaryKind::kSub:
        if (next[0]) g[0] = sum_to(dc, ashape_);
        if (next[1]) g[1] = sum_to(bk_.eltwise_forward(EltwiseKind::kLinear, dc, -1.0, 0.0), bshape_);
        break;
      case BinaryKind::kMul:
        if (next[0]) g[0] = sum_to(bk_.binary(BinaryKind::kMul, dc, b_), ashape_);
        if (next[1]) g[1] = sum_to(bk_.binary(BinaryKind::kMul, dc, a_), bshape_);
        break;
      case BinaryKind::kDiv: {
        // c = a / b: da = dc / b; db = -dc * a / b².
        if (next[0]) g[0] = sum_to(bk_.binary(BinaryKind::kDiv, dc, b_), ashape_);
        if (next[1]) {
          Tensor q = bk_.binary(BinaryKind::kDiv, bk_.binary(BinaryKind::kMul, dc, a_),
                                bk_.eltwise_forward(EltwiseKind::kSquare, b_, 0.0, 0.0));
          g[1] = sum_to(bk_.eltwise_forward(EltwiseKind::kLinear, q, -1.0, 0.0), bshape_);
        }
        break;
      }
      case BinaryKind::kMax:
      case BinaryKind::kMin: {
        // The gradient goes to the selected operand; ties go to a. The split runs on host copies (a GPU
        // backend uploads da / db again in sum_to).
        auto host = [](const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); };
        const Tensor c = host(bk_.binary(kind_, a_, b_));
        Tensor da = Tensor::zeros(c.shape(), c.dtype()), db = Tensor::zeros(c.shape(), c.dtype());
        const Tensor ab = host(bk_.binary(BinaryKind::kAdd, a_, Tensor::zeros(c.shape(), c.dtype())));  // a broadcast
        const Tensor dch = host(dc);
        const auto n = static_cast<std::size_t>(c.numel());
        auto split = [&](auto z) {
          using T = decltype(z);
          const T* pc = c.data<T>();
          const T* pa = ab.data<T>();
          const T* pd = dch.data<T>();
          T* qa = da.data<T>();
          T* qb = db.data<T>();
          for (std::size_t i = 0; i < n; ++i) (pa[i] == pc[i] ? qa : qb)[i] = pd[i];
        };
        if (c.dtype() == DType::kF64) split(double{});
        else split(float{});
        if (next[0]) g[0] = sum_to(da, ashape_);
        if (next[1]) g[1] = sum_to(db, bshape_);
        break;
      }
    }
    return g;
  }
  std::string name() const override { return "BinaryBackward"; }
  void release_saved() override { a_ = b_ = Tensor(); }

 private:
  Backend& bk_;
  BinaryKind kind_;
  Tensor a_, b_;
  Shape ashape_, bshape_;
};

}  // namespace

Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b) {
  ANVIL_CHECK(a.dtype() == b.dtype(), "dtype mismatch: {} vs {}", a.desc(), b.desc());
  (void)broadcast_shapes(a.shape(), b.shape());  // throws naming both shapes
  Backend& bk = backend_for_inputs({&a, &b});
  Tensor c = bk.binary(kind, a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    const bool keep = kind != BinaryKind::kAdd && kind != BinaryKind::kSub;
    autograd::set_history(c, std::make_shared<BinaryBackward>(bk, kind, keep ? a : Tensor(), keep ? b : Tensor(),
                                                             a.shape(), b.shape()),
                          {&a, &b});
  }
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kBinary, .inputs = {a, b}, .output = c, .binary = kind});
  return c;
}

Tensor scale(const Tensor& x, double s) { return affine(x, s, 0.0); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  ANVIL_CHECK(shape.rank() <= g.rank(), "cannot sum {} down to {}", g.desc(), shape.str());
  const std::size_t lead = g.rank() - shape.rank();
  std::vector<std::int64_t> out(g.rank(), 1);
  for (std::size_t i = lead; i < g.rank(); ++i) {
    const std::int64_t want = shape.dims()[i - lead];
    ANVIL_CHECK(want == 1 || want == g.shape().dims()[i], "cannot sum {} down to {}", g.desc(), shape.str());
    out[i] = want;
  }
  Tensor r = backend_for(g.device()).reduce(ReduceKind::kSum, g, Shape(out));
  return r.view(shape);
}

}  // namespace anvil::ops
