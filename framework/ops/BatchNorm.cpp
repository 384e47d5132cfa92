#include "framework/ops/BatchNorm.h"

#include <initializer_list>

#include "framework/autograd/Function.h"
#include "framework/ops/NormBackward.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"

namespace anvil::ops {
namespace {

using BatchNormBackward = detail::NormBackward<BatchNormGrads, &Backend::batch_norm_backward>;

// Inference form: y = x * s + t per channel with s = gamma / sqrt(var + eps), t = beta - mean * s.
class BatchNormInferenceBackward final : public autograd::Node {
 public:
  BatchNormInferenceBackward(Backend& bk, Tensor x, Tensor gamma, Tensor mean, Tensor var, double eps)
      : bk_(bk), x_(std::move(x)), gamma_(std::move(gamma)), mean_(std::move(mean)), var_(std::move(var)), eps_(eps) {}
  std::vector<Tensor> apply(const Tensor& dy) override {
    const std::int64_t c = x_.dim(1);
    Shape cs = x_.rank() == 4 ? Shape{1, c, 1, 1} : Shape{1, c};
    std::vector<std::int64_t> red(x_.rank(), 1);
    red[1] = c;
    Tensor inv = bk_.eltwise_forward(EltwiseKind::kSqrt, bk_.eltwise_forward(EltwiseKind::kLinear, var_, 1.0, eps_),
                                     0.0, 0.0);
    Tensor s = bk_.binary(BinaryKind::kDiv, gamma_, inv);  // [C]
    std::vector<Tensor> g(3);
    if (next[0]) g[0] = bk_.binary(BinaryKind::kMul, dy, s.view(cs));
    Tensor xhat = bk_.binary(BinaryKind::kDiv, bk_.binary(BinaryKind::kSub, x_, mean_.view(cs)), inv.view(cs));
    if (next[1]) g[1] = bk_.reduce(ReduceKind::kSum, bk_.binary(BinaryKind::kMul, dy, xhat), Shape(red)).view(Shape{c});
    if (next[2]) g[2] = bk_.reduce(ReduceKind::kSum, dy, Shape(red)).view(Shape{c});
    return g;
  }
  std::string name() const override { return "BatchNormInferenceBackward"; }
  void release_saved() override { x_ = gamma_ = mean_ = var_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor x_, gamma_, mean_, var_;
  double eps_;
};

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean, Tensor running_var,
                  bool training, double momentum, double eps) {
  ANVIL_CHECK(x.rank() == 4 || x.rank() == 2, "input must be [N,C,H,W] or [N,C], got {}", x.shape().str());
  const std::int64_t c = x.dim(1);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma, &beta, &running_mean, &running_var})
    ANVIL_CHECK(t->defined() && t->shape() == Shape{c}, "shape mismatch: input {} has {} channels, parameter is {}",
                x.shape().str(), c, t->desc());
  Backend& bk = backend_for_inputs({&x, &gamma, &beta});
  if (!training) {
    Tensor y = bk.batch_norm_forward_inference(x, gamma, beta, running_mean, running_var, eps);
    if (autograd::any_requires_grad({&x, &gamma, &beta}))
      autograd::set_history(
          y, std::make_shared<BatchNormInferenceBackward>(bk, x, gamma, running_mean.clone(), running_var.clone(), eps),
          {&x, &gamma, &beta});
    if (OpTracer* t = current_tracer())
      t->on_op({.kind = OpKind::kBatchNorm, .inputs = {x, gamma, beta, running_mean, running_var}, .output = y,
                .eps = eps, .momentum = momentum, .training = false});
    return y;
  }
  const std::int64_t m = x.numel() / c;
  ANVIL_CHECK(m > 1, "training needs more than one value per channel, got input {}", x.shape().str());
  BatchNormTrainResult r = bk.batch_norm_forward_training(x, gamma, beta, eps);
  {
    // running = momentum * running + (1 - momentum) * batch (unbiased variance).
    const double unbias = static_cast<double>(m) / static_cast<double>(m - 1);
    Tensor rm = running_mean, rv = running_var;
    Tensor scaled_mean = bk.eltwise_forward(EltwiseKind::kLinear, rm, momentum, 0.0);
    bk.axpy_(scaled_mean, r.mean, 1.0 - momentum);
    rm.copy_from(scaled_mean);
    Tensor scaled_var = bk.eltwise_forward(EltwiseKind::kLinear, rv, momentum, 0.0);
    bk.axpy_(scaled_var, r.var, (1.0 - momentum) * unbias);
    rv.copy_from(scaled_var);
  }
  Tensor y = r.y;
  if (autograd::any_requires_grad({&x, &gamma, &beta}))
    autograd::set_history(y, std::make_shared<BatchNormBackward>("BatchNormBackward", bk, x, gamma, r.mean, r.var, eps),
                          {&x, &gamma, &beta});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kBatchNorm, .inputs = {x, gamma, beta, running_mean, running_var}, .output = y,
              .eps = eps, .momentum = momentum, .training = true});
  return y;
}

}  // namespace anvil::ops
