// CudaBackend: Backend on one NVIDIA GPU (cuDNN 9 + cuBLAS + Anvil's kernels in CudaKernels.cu).
//
// Semantics are those of ReferenceBackend (the oracle); float32 results agree with it to ~1e-5 relative
// with TF32 off (cuda_options().allow_tf32, default off) and ~1e-2 with TF32 on.
//
// What runs where:
//   matmul, linear_*                   cuBLAS (strided-batched GEMM; bias add / bias grad by kernels)
//   conv2d_forward / backward_data /
//   backward_weights                   cuDNN (legacy convolution API, still shipped in cuDNN 9); the
//                                      algorithm is chosen once per (shape, params, dtype, options) and
//                                      cached: cudnnGet*_v7 heuristics, or cudnnFind* with
//                                      CudaOptions::benchmark; CudaOptions::deterministic keeps only
//                                      deterministic algorithms. TF32 off = CUDNN_FMA_MATH.
//                                      Asymmetric padding (cuDNN pads symmetrically; MindSpore's "same"
//                                      with stride 2 needs it): the input is zero-padded by a kernel and the
//                                      convolution runs unpadded; backward-data crops. No host fallback.
//   softmax_forward / backward         cuDNN (CUDNN_SOFTMAX_ACCURATE / LOG, channel mode over [outer, L, inner])
//   pool2d_forward / backward          kernels: the reference's contract (asymmetric padding, int64 argmax
//                                      workspace with first-maximum ties, -inf for all-padding windows)
//                                      which cuDNN pooling does not offer; backward is a deterministic gather.
//   batch_norm_*                       kernels (one block per channel, two-pass double statistics): the
//                                      interface returns the biased batch variance and takes (mean, var) in
//                                      backward, where cuDNN saves the inverse std and keeps running stats.
//   eltwise_forward / backward         cuDNN activations for plain ReLU (alpha 0), sigmoid and tanh (backward
//                                      when the forward output y is given); every other kind (leaky ReLU,
//                                      GELU, exp, log, sqrt, square, abs, linear) as kernels in double
//   binary                             kernel (numpy broadcasting up to rank 8)
//   reduce                             kernel (block per output, double accumulation, NaN rules of the reference)
//   layer_norm_*                       kernels: one block per row (two-pass double statistics); dgamma /
//                                      dbeta one thread per feature summing the rows in order
//   embedding_*                        the indices are read on the host (range check with the reference's
//                                      message); gather kernel; the scatter-add sums each table row over its
//                                      positions (a host-built CSR, ascending) without atomics: deterministic
//   softmax_cross_entropy_*            kernels; an out-of-range label throws like the reference (this costs
//                                      one 8-byte device->host read per call)
//   axpy_, sgd/momentum/adam_update    fused kernels
//
// Inputs that live on the host are copied to the device for the call (ops create a few small host
// tensors, e.g. the autograd seed and Dropout masks); optimizer state tensors (moments, m, v) found on
// the host are moved to the device in place (Tensor::set_data) on first use. Parameters must be on the
// device. Tensors on another GPU are rejected.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "framework/backend/Backend.h"

namespace anvil::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device_index);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return "cuda"; }
  Device device() const override { return Device::cuda(index_); }

  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;
  Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) override;
  Tensor linear_backward_data(const Tensor& dy, const Tensor& w) override;
  WeightGrads linear_backward_weights(const Tensor& dy, const Tensor& x, bool with_bias) override;

  Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) override;
  Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p) override;
  WeightGrads conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape, bool with_bias,
                                      const Conv2dParams& p) override;

  PoolResult pool2d_forward(const Tensor& x, const Pool2dParams& p) override;
  Tensor pool2d_backward(const Tensor& dy, const Tensor& x, const PoolResult& fwd, const Pool2dParams& p) override;

  Tensor eltwise_forward(EltwiseKind kind, const Tensor& x, double alpha, double beta) override;
  Tensor eltwise_backward(EltwiseKind kind, const Tensor& dy, const Tensor& x, const Tensor& y, double alpha,
                          double beta) override;
  Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b) override;
  Tensor reduce(ReduceKind kind, const Tensor& x, const Shape& out_shape) override;

  Tensor softmax_forward(const Tensor& x, std::int64_t axis, bool log) override;
  Tensor softmax_backward(const Tensor& dy, const Tensor& y, std::int64_t axis, bool log) override;

  BatchNormTrainResult batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                   double eps) override;
  Tensor batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                      const Tensor& var, double eps) override;
  BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& var, double eps) override;

  LayerNormResult layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) override;
  LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& var, double eps) override;
  Tensor embedding_forward(const Tensor& table, const Tensor& indices) override;
  Tensor embedding_backward(const Tensor& dy, const Tensor& indices, const Shape& table_shape,
                            std::int64_t padding_idx) override;

  SoftmaxCrossEntropyResult softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels) override;
  Tensor softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& prob, const Tensor& labels) override;

  void axpy_(Tensor& dst, const Tensor& src, double alpha) override;
  void sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) override;
  void momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum,
                       double weight_decay, bool nesterov) override;
  void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1, double beta2,
                   double eps, double weight_decay, double beta1_power, double beta2_power, bool decoupled) override;

  /// Cached convolution algorithm choices (one per shape, params, dtype, direction and options).
  std::size_t algorithm_cache_size() const;
  void clear_algorithm_cache();

  struct AlgoChoice {
    int algo = 0;
    int math_type = 0;
    std::size_t workspace = 0;
  };

 private:
  // Tensor `t` as a device tensor of this backend (host tensors are uploaded; others rejected).
  Tensor on_device(const char* fn, const char* what, const Tensor& t) const;
  Tensor empty(const Shape& s, DType dt) const;
  // x [N, C, H, W] zero-padded by p's four paddings (asymmetric convolutions).
  Tensor pad_input(const Tensor& x, const Conv2dParams& p);
  void gemm(const Tensor& a, const Tensor& b, Tensor& c, std::int64_t batch, std::int64_t m, std::int64_t k,
            std::int64_t n, bool ta, bool tb);

  int index_;
  mutable std::mutex algo_mu_;
  std::map<std::string, AlgoChoice> algos_;
};

}  // namespace anvil::cuda
