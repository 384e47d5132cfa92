#include "framework/ops/ShapeOps.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

class ReshapeBackward final : public autograd::Node {
 public:
  explicit ReshapeBackward(Shape in) : in_(std::move(in)) {}
  std::vector<Tensor> apply(const Tensor& dy) override { return {dy.view(in_)}; }
  std::string name() const override { return "ReshapeBackward"; }

 private:
  Shape in_;
};

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  std::vector<std::int64_t> dims = shape.dims();
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      ANVIL_CHECK(infer < 0, "only one -1 allowed in target shape {}", shape.str());
      infer = static_cast<std::int64_t>(i);
    } else {
      ANVIL_CHECK(dims[i] >= 0, "invalid target shape {}", shape.str());
      known *= dims[i];
    }
  }
  if (infer >= 0) {
    ANVIL_CHECK(known > 0 && x.numel() % known == 0, "cannot reshape {} to {}", x.desc(), shape.str());
    dims[static_cast<std::size_t>(infer)] = x.numel() / known;
  }
  Shape target(std::move(dims));
  ANVIL_CHECK(target.numel() == x.numel(), "cannot reshape {} ({} elements) to {} ({} elements)", x.desc(),
              x.numel(), target.str(), target.numel());
  Tensor y = x.view(target);
  if (autograd::any_requires_grad({&x}))
    autograd::set_history(y, std::make_shared<ReshapeBackward>(x.shape()), {&x});
  if (OpTracer* t = current_tracer()) t->on_op({.kind = OpKind::kReshape, .inputs = {x}, .output = y});
  return y;
}

Tensor flatten(const Tensor& x) {
  ANVIL_CHECK(x.rank() >= 1, "cannot flatten a 0-d tensor");
  return reshape(x, Shape{x.dim(0), -1});
}

}  // namespace anvil::ops
