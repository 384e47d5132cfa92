#include "framework/ops/Loss.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"

#include <vector>

namespace anvil::ops {
namespace {

class SoftmaxCrossEntropyBackward final : public autograd::Node {
 public:
  SoftmaxCrossEntropyBackward(Backend& bk, Tensor prob, Tensor labels)
      : bk_(bk), prob_(std::move(prob)), labels_(std::move(labels)) {}
  std::vector<Tensor> apply(const Tensor& dloss) override {
    return {bk_.softmax_cross_entropy_backward(dloss, prob_, labels_)};
  }
  std::string name() const override { return "SoftmaxCrossEntropyBackward"; }
  void release_saved() override { prob_ = labels_ = Tensor(); }

 private:
  Backend& bk_;
  Tensor prob_, labels_;
};

}  // namespace

Tensor reduce_loss(const Tensor& losses, const std::string& reduction) {
  if (reduction == "mean") return mean(losses);
  if (reduction == "sum") return sum(losses);
  if (reduction == "none") return losses;
  ANVIL_THROW("unknown reduction '{}' (expected \"mean\", \"sum\" or \"none\")", reduction);
}

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const std::string& reduction) {
  ANVIL_CHECK(logits.rank() == 2, "logits must be [N,C], got {}", logits.shape().str());
  ANVIL_CHECK(labels.rank() == 1 && labels.dim(0) == logits.dim(0),
              "labels {} do not match logits {} (expected [{}])", labels.desc(), logits.desc(), logits.dim(0));
  ANVIL_CHECK(labels.dtype() == DType::kI32 || labels.dtype() == DType::kI64, "labels must be int32 or int64, got {}",
              labels.desc());
  Backend& bk = backend_for_inputs({&logits, &labels});
  SoftmaxCrossEntropyResult r = bk.softmax_cross_entropy_forward(logits, labels);
  Tensor per_sample = r.loss;
  if (autograd::any_requires_grad({&logits}))
    autograd::set_history(per_sample, std::make_shared<SoftmaxCrossEntropyBackward>(bk, r.prob, labels),
                          {&logits, nullptr});
  if (OpTracer* t = current_tracer())
    t->on_op({.kind = OpKind::kSoftmaxCrossEntropy, .inputs = {logits, labels}, .output = per_sample});
  return reduce_loss(per_sample, reduction);
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, const std::string& reduction) {
  ANVIL_CHECK(pred.shape() == target.shape(), "prediction {} and target {} differ in shape", pred.desc(),
              target.desc());
  return reduce_loss(square(sub(pred, target)), reduction);
}

namespace {

void check_reduction(const std::string& reduction) {
  ANVIL_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
              "unknown reduction '{}' (expected \"mean\", \"sum\" or \"none\")", reduction);
}

// max(x, 0) + log(1 + exp(-|x|)): exp only ever sees non-positive arguments. max(x, 0) is written
// (x + |x|) / 2 so that autograd gives the derivative sigmoid(0) = 1/2 at x = 0 (relu and abs both
// have derivative 0 there, which would make it 0).
Tensor softplus(const Tensor& x) {
  return add(affine(add(x, abs(x)), 0.5, 0.0), log(affine(exp(affine(abs(x), -1.0, 0.0)), 1.0, 1.0)));
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& labels, const Tensor& weight, const Tensor& pos_weight,
                       const std::string& reduction) {
  check_reduction(reduction);
  ANVIL_CHECK(logits.defined() && labels.defined(), "logits and labels must be defined");
  ANVIL_CHECK(logits.shape() == labels.shape(), "logits {} and labels {} differ in shape", logits.desc(),
              labels.desc());
  ANVIL_CHECK(is_compute_type(logits.dtype()) && labels.dtype() == logits.dtype(),
              "logits and labels must be float32 or float64 of one dtype, got {} and {}", logits.desc(),
              labels.desc());
  const Tensor& x = logits;
  const Tensor& y = labels;
  const Tensor sp = softplus(x);  // -log(1 - sigmoid(x))
  Tensor l;
  if (pos_weight.defined()) {
    // p y softplus(-x) + (1 - y) softplus(x) = (p y + 1 - y) softplus(x) - p y x, as softplus(-x) = softplus(x) - x.
    const Tensor py = mul(pos_weight, y);
    l = sub(mul(add(py, affine(y, -1.0, 1.0)), sp), mul(py, x));
  } else {
    l = sub(sp, mul(y, x));
  }
  if (weight.defined()) l = mul(weight, l);
  ANVIL_CHECK(l.shape() == x.shape(), "weight {} / pos_weight {} must broadcast to logits {}",
              weight.defined() ? weight.desc() : "none", pos_weight.defined() ? pos_weight.desc() : "none",
              x.desc());
  return reduce_loss(l, reduction);
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, const std::string& reduction) {
  check_reduction(reduction);
  ANVIL_CHECK(pred.shape() == target.shape(), "prediction {} and target {} differ in shape", pred.desc(),
              target.desc());
  return reduce_loss(abs(sub(pred, target)), reduction);
}

Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, const std::string& reduction) {
  check_reduction(reduction);
  ANVIL_CHECK(beta > 0, "beta must be positive, got {}", beta);
  ANVIL_CHECK(pred.shape() == target.shape(), "prediction {} and target {} differ in shape", pred.desc(),
              target.desc());
  // With a = |d| and m = min(a, beta): 0.5 m² / beta + (a - m) is 0.5 d² / beta below beta and
  // |d| - 0.5 beta above it, with a continuous derivative at a == beta.
  const Tensor a = abs(sub(pred, target));
  const Tensor m = binary(BinaryKind::kMin, a, Tensor::scalar(beta, a.dtype()));
  return reduce_loss(add(affine(square(m), 0.5 / beta, 0.0), sub(a, m)), reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const Tensor& weight, std::int64_t ignore_index,
                const std::string& reduction) {
  check_reduction(reduction);
  ANVIL_CHECK(log_probs.defined() && labels.defined(), "log_probs and labels must be defined");
  ANVIL_CHECK(log_probs.rank() == 2 && is_compute_type(log_probs.dtype()),
              "log_probs must be a float [N,C] tensor, got {}", log_probs.desc());
  const std::int64_t n = log_probs.dim(0), c = log_probs.dim(1);
  ANVIL_CHECK(labels.dtype() == DType::kI32 || labels.dtype() == DType::kI64, "labels must be int32 or int64, got {}",
              labels.desc());
  ANVIL_CHECK(labels.shape() == Shape{n}, "labels {} do not match log_probs {} (expected [{}])", labels.desc(),
              log_probs.desc(), n);
  std::vector<double> w(static_cast<std::size_t>(c), 1.0);
  if (weight.defined()) {
    ANVIL_CHECK(weight.shape() == Shape{c} && is_compute_type(weight.dtype()),
                "weight {} must be a float [{}] tensor (one per class of log_probs {})", weight.desc(), c,
                log_probs.desc());
    w = weight.to_vector<double>();
  }
  // mask [N, C]: weight[y_n] at (n, y_n), 0 elsewhere and on ignored rows; l_n = -Σ_c log_probs ⊙ mask.
  std::vector<double> mask(static_cast<std::size_t>(n * c), 0.0);
  double total = 0.0;
  const std::vector<std::int64_t> ys = labels.to_vector<std::int64_t>();  // host copy (labels may be on a GPU)
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t y = ys[static_cast<std::size_t>(i)];
    if (y == ignore_index) continue;
    ANVIL_CHECK(y >= 0 && y < c, "label at index {} is {}, outside the valid range [0, {}) of {} classes", i, y, c, c);
    mask[static_cast<std::size_t>(i * c + y)] = w[static_cast<std::size_t>(y)];
    total += w[static_cast<std::size_t>(y)];
  }
  const Tensor m = Tensor::from_vector(mask, Shape{n, c}).to(log_probs.dtype());
  const Tensor per_sample = scale(sum(mul(log_probs, m), {1}), -1.0);  // [N]
  if (reduction == "mean") return scale(sum(per_sample), 1.0 / total);
  return reduce_loss(per_sample, reduction);
}

}  // namespace anvil::ops
