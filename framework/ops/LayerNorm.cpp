#include "framework/ops/LayerNorm.h"

#include "framework/autograd/Function.h"
#include "framework/backend/Backend.h"
#include "framework/ops/NormBackward.h"
#include "framework/ops/Trace.h"

namespace anvil::ops {
namespace {

using LayerNormBackward = detail::NormBackward<LayerNormGrads, &Backend::layer_norm_backward>;

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  ANVIL_CHECK(x.defined() && gamma.defined() && beta.defined(), "input, gamma and beta must be defined");
  ANVIL_CHECK(is_compute_type(x.dtype()), "input must be float32 or float64, got {}", x.desc());
  ANVIL_CHECK(gamma.shape() == beta.shape(), "gamma {} and beta {} differ in shape", gamma.desc(), beta.desc());
  ANVIL_CHECK(gamma.dtype() == x.dtype() && beta.dtype() == x.dtype(), "dtype mismatch: input {}, gamma {}, beta {}",
              x.desc(), gamma.desc(), beta.desc());
  ANVIL_CHECK(eps > 0, "epsilon must be positive, got {}", eps);
  const std::size_t k = gamma.rank();
  bool trailing = k >= 1 && k <= x.rank();
  for (std::size_t i = 0; trailing && i < k; ++i) trailing = x.shape()[x.rank() - k + i] == gamma.shape()[i];
  ANVIL_CHECK(trailing, "input {} does not end with the normalized shape {} of gamma", x.shape().str(),
              gamma.shape().str());
  Backend& bk = backend_for_inputs({&x, &gamma, &beta});
  LayerNormResult r = bk.layer_norm_forward(x, gamma, beta, eps);
  Tensor y = r.y;
  if (autograd::any_requires_grad({&x, &gamma, &beta}))
    autograd::set_history(y, std::make_shared<LayerNormBackward>("LayerNormBackward", bk, x, gamma, r.mean, r.var, eps),
                          {&x, &gamma, &beta});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kLayerNorm, .inputs = {x, gamma, beta}, .output = y, .eps = eps,
              .axis = static_cast<std::int64_t>(x.rank() - k)});
  return y;
}

}  // namespace anvil::ops
