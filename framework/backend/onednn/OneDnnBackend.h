// OneDnnBackend: the default CPU backend, on oneDNN 2.6 (v2 operation-descriptor API).
//
// Derives from ReferenceBackend: ops oneDNN does not cover (and every kF64 call, which oneDNN 2.6
// cannot compute) fall through to the reference loops. Accelerated in float32: matmul, linear
// (forward, backward data/weights), conv2d (forward, backward data/weights, with bias, asymmetric
// padding, stride, dilation, groups), pool2d (max/avg), eltwise, binary (when only one operand is
// broadcast), reduce, softmax / log-softmax, batch norm and layer norm (oneDNN's
// layer_normalization on x viewed as [M, D]); embedding gather/scatter-add runs parallel loops. The loss and the optimizer kernels run
// plain loops.
//
// Primitives are built once and cached by (op, shapes, strides, attributes) together with their
// memory objects and any layout reorders; primitives_created() counts every primitive built
// (reorders included) so a test can prove that a second identical training step builds nothing.
// The cache is guarded by a mutex and each cached entry executes under its own lock, so the backend
// may be called from several threads; every oneDNN error is rethrown as anvil::Error naming the op
// and the operand shapes. No oneDNN type appears in this header.
//
// 2x2 / stride-2 / unpadded pooling (LeNet's) runs hand-vectorized NCHW loops on oneDNN's threads
// (oneDNN 2.6 transposes plain NCHW internally and is 4-5x slower there); other pooling runs
// oneDNN's primitive. Max-pool forward returns its workspace in PoolResult.workspace as a kU8 tensor
// of raw bytes (oneDNN's workspace, or one argmax byte per output on the 2x2 path); pool2d_backward
// on this backend expects exactly that tensor back and falls back to the reference loops otherwise.
//
// Convolutions compute in oneDNN's blocked layout, or NHWC where that gets a kernel for a wider ISA,
// behind cached reorders from/to NCHW (see choose_layout in the .cpp); ANVIL_ONEDNN_CONV_LAYOUT=
// plain|blocked|nhwc in the environment forces one layout (benchmarking). Large result buffers are
// recycled through a backend-owned cache to avoid page-faulting fresh memory every step.
#pragma once

#include <cstddef>
#include <memory>

#include "framework/backend/reference/ReferenceBackend.h"

namespace anvil {

class OneDnnBackend : public ReferenceBackend {
 public:
  /// Creates the CPU engine and an empty primitive cache. Throws anvil::Error if oneDNN cannot
  /// create a CPU engine.
  OneDnnBackend();
  ~OneDnnBackend() override;
  OneDnnBackend(const OneDnnBackend&) = delete;
  OneDnnBackend& operator=(const OneDnnBackend&) = delete;

  std::string name() const override { return "onednn"; }

  /// Number of oneDNN primitives (including reorders) built so far; grows only on a cache miss.
  std::size_t primitives_created() const;
  /// Number of distinct cache entries (one per op signature seen).
  std::size_t cache_size() const;

  Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override;
  Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) override;
  Tensor linear_backward_data(const Tensor& dy, const Tensor& w) override;
  WeightGrads linear_backward_weights(const Tensor& dy, const Tensor& x, bool with_bias) override;

  Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) override;
  Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                              const Conv2dParams& p) override;
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

  void axpy_(Tensor& dst, const Tensor& src, double alpha) override;
  void sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) override;
  void momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum,
                       double weight_decay, bool nesterov) override;

 private:
  /// An uninitialised result tensor from the backend's recycled buffers.
  Tensor output(const Shape& shape, DType dtype = DType::kF32) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
