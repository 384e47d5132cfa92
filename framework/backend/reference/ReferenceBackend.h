// ReferenceBackend: plain C++ loops for every Backend op, in float32 and float64.
//
// This is the oracle: gradient checks run on it in float64, and every other backend is compared with
// it. Clarity beats speed here; it must stay obviously correct.
#pragma once

#include "framework/backend/Backend.h"

namespace anvil {

class ReferenceBackend : public Backend {
 public:
  std::string name() const override;
  Device device() const override;
  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;
  Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) override;
  Tensor linear_backward_data(const Tensor& dy, const Tensor& w) override;
  WeightGrads linear_backward_weights(const Tensor& dy, const Tensor& x, bool with_bias) override;
  Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) override;
  Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) override;
  WeightGrads conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape, bool with_bias, const Conv2dParams& p) override;
  PoolResult pool2d_forward(const Tensor& x, const Pool2dParams& p) override;
  Tensor pool2d_backward(const Tensor& dy, const Tensor& x, const PoolResult& fwd, const Pool2dParams& p) override;
  Tensor eltwise_forward(EltwiseKind kind, const Tensor& x, double alpha, double beta) override;
  Tensor eltwise_backward(EltwiseKind kind, const Tensor& dy, const Tensor& x, const Tensor& y, double alpha, double beta) override;
  Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b) override;
  Tensor reduce(ReduceKind kind, const Tensor& x, const Shape& out_shape) override;
  Tensor softmax_forward(const Tensor& x, std::int64_t axis, bool log) override;
  Tensor softmax_backward(const Tensor& dy, const Tensor& y, std::int64_t axis, bool log) override;
  BatchNormTrainResult batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) override;
  Tensor batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var, double eps) override;
  BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& var, double eps) override;
  SoftmaxCrossEntropyResult softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels) override;
  Tensor softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& prob, const Tensor& labels) override;
  LayerNormResult layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) override;
  LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& var, double eps) override;
  Tensor embedding_forward(const Tensor& table, const Tensor& indices) override;
  Tensor embedding_backward(const Tensor& dy, const Tensor& indices, const Shape& table_shape, std::int64_t padding_idx) override;
  void axpy_(Tensor& dst, const Tensor& src, double alpha) override;
  void sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) override;
  void momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum, double weight_decay, bool nesterov) override;
  void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1, double beta2, double eps, double weight_decay, double beta1_power, double beta2_power, bool decoupled) override;
};

}  // namespace anvil
