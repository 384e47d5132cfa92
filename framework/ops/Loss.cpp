#include "framework/ops/Loss.h"

#include "framework/autograd/Function.h"
#include "framework/ops/Trace.h"
#include "framework/backend/Backend.h"
#include "framework/ops/Activation.h"
#include "framework/ops/Arithmetic.h"
#include "framework/ops/Reduce.h"

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
  Backend& bk = backend_for(logits.device());
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

}  // namespace anvil::ops
