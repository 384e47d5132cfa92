// Backend: the narrow interface every compute backend implements.
//
// Tensors passed in are contiguous, row-major, on the backend's device, and of a compute dtype
// (kF32; kF64 on backends that support it — the oneDNN backend forwards kF64 to the reference
// implementation it derives from). Activations are NCHW, conv weights OIHW, Dense weights [O, I].
// Every method allocates and returns its outputs; nothing is written into inputs except by axpy_
// and the methods whose name ends in `_update` (optimizer kernels update parameters and state in place).
// Pool workspaces are private to the backend that produced them; backward must run on the same backend
// (framework/ops records the backend of the forward call in the graph node).
// Shape checks that a user can trigger (wrong Dense/Conv shapes) are done in framework/ops, which
// names the layer's terms; backends still check what they rely on and throw anvil::Error.
//
// Reference semantics (the oracle every backend is compared with) are the plain loops in
// backend/reference/ReferenceBackend.cpp.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "framework/core/Device.h"
#include "framework/tensor/Tensor.h"

namespace anvil {

struct Conv2dParams {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;  // explicit, may be asymmetric
  std::int64_t dilation_h = 1, dilation_w = 1;                            // 1 = no dilation
  std::int64_t groups = 1;
};
/// Output spatial size: floor((in + pad_a + pad_b - dilation*(k-1) - 1) / stride) + 1.
std::int64_t conv_out_size(std::int64_t in, std::int64_t k, std::int64_t stride, std::int64_t pad_a,
                           std::int64_t pad_b, std::int64_t dilation);

enum class PoolKind { kMax, kAvg };
struct Pool2dParams {
  PoolKind kind = PoolKind::kMax;
  std::int64_t kernel_h = 2, kernel_w = 2;
  std::int64_t stride_h = 2, stride_w = 2;
  std::int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  bool count_include_pad = false;  // avg only: divide by the full window, padding included
  // A window made only of padding (pad >= kernel) yields -inf for max (no gradient) and 0 for avg.
};

/// Activation-style elementwise functions. y = f(x; alpha, beta).
enum class EltwiseKind {
  kRelu,       // max(x, 0); alpha != 0 gives leaky ReLU with slope alpha
  kSigmoid,
  kTanh,
  kGelu,       // exact (erf) form: 0.5 x (1 + erf(x / sqrt 2))
  kExp,
  kLog,
  kSqrt,
  kSquare,
  kAbs,
  kLinear,     // alpha * x + beta
};

enum class BinaryKind { kAdd, kSub, kMul, kDiv, kMax, kMin };
enum class ReduceKind { kSum, kMean, kMax, kMin };

/// Forward pass of a pooling op: the output plus whatever the same backend's backward needs
/// (max-pool argmax indices or a oneDNN workspace). Opaque to callers.
struct PoolResult {
  Tensor y;
  Tensor workspace;
};

struct BatchNormTrainResult {
  Tensor y;
  Tensor mean;  // [C] batch mean
  Tensor var;   // [C] biased batch variance (divided by N*H*W)
};

struct BatchNormGrads {
  Tensor dx, dgamma, dbeta;
};

struct WeightGrads {
  Tensor dw;
  Tensor db;  // undefined when the op had no bias
};

struct SoftmaxCrossEntropyResult {
  Tensor loss;  // [N] per-sample loss: -log softmax(logits)[label]
  Tensor prob;  // [N, C] softmax, saved for backward
};

struct LayerNormResult {
  Tensor y;     // x's shape
  Tensor mean;  // [M] per-row mean over the D normalized values
  Tensor var;   // [M] per-row biased variance (divided by D)
};

struct LayerNormGrads {
  Tensor dx, dgamma, dbeta;  // dx: x's shape; dgamma, dbeta: gamma's shape
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// "reference", "onednn", "cuda".
  virtual std::string name() const = 0;
  virtual Device device() const = 0;

  // ---- dense algebra ----
  /// Batched matrix product over the last two dims (equal ranks, equal leading dims; no broadcasting): a [..., M, K] (or [..., K, M] when trans_a),
  /// b [..., K, N] (or [..., N, K] when trans_b) -> [..., M, N]. Leading dims must be equal.
  virtual Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) = 0;
  /// Dense layer: x [N, I], w [O, I], b [O] or undefined -> y [N, O] = x wᵀ + b.
  virtual Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) = 0;
  /// dx [N, I] = dy [N, O] · w [O, I].
  virtual Tensor linear_backward_data(const Tensor& dy, const Tensor& w) = 0;
  /// dw [O, I] = dyᵀ x; db [O] = Σ_N dy (only when with_bias).
  virtual WeightGrads linear_backward_weights(const Tensor& dy, const Tensor& x, bool with_bias) = 0;

  // ---- convolution (cross-correlation), x [N, C, H, W], w [K, C/groups, R, S] ----
  virtual Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) = 0;
  /// dx with shape x_shape.
  virtual Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape,
                                      const Conv2dParams& p) = 0;
  /// dw with shape w_shape; db [K] when with_bias.
  virtual WeightGrads conv2d_backward_weights(const Tensor& dy, const Tensor& x, const Shape& w_shape,
                                              bool with_bias, const Conv2dParams& p) = 0;

  // ---- pooling, x [N, C, H, W] ----
  virtual PoolResult pool2d_forward(const Tensor& x, const Pool2dParams& p) = 0;
  /// dx with x's shape; x, y and workspace are those of the forward call on this backend.
  virtual Tensor pool2d_backward(const Tensor& dy, const Tensor& x, const PoolResult& fwd, const Pool2dParams& p) = 0;

  // ---- elementwise ----
  virtual Tensor eltwise_forward(EltwiseKind kind, const Tensor& x, double alpha, double beta) = 0;
  /// dx given dy, the forward input x and the forward output y.
  virtual Tensor eltwise_backward(EltwiseKind kind, const Tensor& dy, const Tensor& x, const Tensor& y, double alpha,
                                  double beta) = 0;
  /// c = a (op) b with numpy broadcasting; a and b have the same dtype.
  virtual Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b) = 0;
  /// Reduces x to out_shape, which has x's rank and either x's size or 1 in each dimension.
  virtual Tensor reduce(ReduceKind kind, const Tensor& x, const Shape& out_shape) = 0;

  // ---- softmax along `axis` (non-negative) ----
  virtual Tensor softmax_forward(const Tensor& x, std::int64_t axis, bool log) = 0;
  /// dx given dy and the forward output y (softmax or log-softmax).
  virtual Tensor softmax_backward(const Tensor& dy, const Tensor& y, std::int64_t axis, bool log) = 0;

  // ---- batch norm over N, H, W per channel C; x [N, C, H, W] or [N, C] ----
  virtual BatchNormTrainResult batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                                           double eps) = 0;
  virtual Tensor batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                              const Tensor& mean, const Tensor& var, double eps) = 0;
  /// Backward of the training form, given the batch statistics it returned.
  virtual BatchNormGrads batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                             const Tensor& mean, const Tensor& var, double eps) = 0;

  // ---- fused loss ----
  /// logits [N, C], labels [N] int32 or int64 in [0, C) (throws naming the bad label otherwise).
  virtual SoftmaxCrossEntropyResult softmax_cross_entropy_forward(const Tensor& logits, const Tensor& labels) = 0;
  /// dlogits [N, C] = dloss[n] * (prob - onehot(label)).
  virtual Tensor softmax_cross_entropy_backward(const Tensor& dloss, const Tensor& prob, const Tensor& labels) = 0;

  // ---- layer norm and embedding (issue 7) ----
  /// Layer normalization over the trailing dims: x viewed as [M, D] with D = gamma.numel();
  /// y = (x - mean_row) / sqrt(var_row + eps) * gamma + beta. gamma and beta have D elements (any shape,
  /// usually the normalized shape) and x's dtype; x.numel() must be a multiple of D.
  virtual LayerNormResult layer_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) = 0;
  /// Backward of layer_norm_forward given the mean and var it returned.
  virtual LayerNormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                             const Tensor& mean, const Tensor& var, double eps) = 0;
  /// Row gather: table [V, E], indices int32/int64 of any shape S with values in [0, V) -> [S..., E].
  /// Throws naming the position, the value and V when an index is out of range.
  virtual Tensor embedding_forward(const Tensor& table, const Tensor& indices) = 0;
  /// Scatter-add: dtable [V, E] with dtable[indices[i]] += dy[i] (dy [S..., E], table_shape [V, E]);
  /// the row padding_idx (when >= 0) gets no gradient.
  virtual Tensor embedding_backward(const Tensor& dy, const Tensor& indices, const Shape& table_shape,
                                    std::int64_t padding_idx) = 0;

  // ---- in-place helpers ----
  /// dst += alpha * src (gradient accumulation). Same shape and dtype.
  virtual void axpy_(Tensor& dst, const Tensor& src, double alpha) = 0;

  // ---- optimizer kernels (in place; MindSpore semantics, documented in framework/optim) ----
  /// g' = g + weight_decay * p;  p -= lr * g'.
  virtual void sgd_update(Tensor& param, const Tensor& grad, double lr, double weight_decay) = 0;
  /// g' = g + weight_decay * p;  m = momentum * m + g';
  /// p -= lr * (g' + momentum * m) when nesterov, else p -= lr * m.
  virtual void momentum_update(Tensor& param, const Tensor& grad, Tensor& moments, double lr, double momentum,
                               double weight_decay, bool nesterov) = 0;
  /// Adam (MindSpore `Adam`, L2 weight decay added to g) when !decoupled:
  ///   g' = g + wd p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
  ///   p -= lr * sqrt(1 - beta2_power) / (1 - beta1_power) * m / (sqrt(v) + eps)
  /// AdamWeightDecay (MindSpore `AdamWeightDecay`) when decoupled, no bias correction:
  ///   m, v as above with g; p -= lr * (m / (sqrt(v) + eps) + wd p).
  /// beta1_power / beta2_power are b1^t, b2^t for the current step t (already advanced by the caller).
  virtual void adam_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, double lr, double beta1,
                           double beta2, double eps, double weight_decay, double beta1_power, double beta2_power,
                           bool decoupled) = 0;
};

// ---- selection ----
// Backends are created explicitly (no static self-registration). The CPU backend used by framework/ops
// is, in order: the innermost BackendScope on this thread, else the process default (oneDNN unless
// set_default_backend changed it, or ANVIL_BACKEND=reference in the environment).

/// The backend framework/ops uses for tensors on `device` on this thread.
Backend& backend_for(const Device& device);
/// The backend for an op on these inputs: that of the first defined input in GPU memory (a GPU backend
/// copies host inputs to its device), else backend_for(Device::cpu()). So a host batch fed to a network
/// that lives on a GPU runs on the GPU, and a CPU backend never receives device memory.
Backend& backend_for_inputs(std::initializer_list<const Tensor*> inputs);
/// The shared reference backend (plain loops; the test oracle).
Backend& reference_backend();
/// The shared oneDNN backend.
Backend& onednn_backend();
/// Replaces the process-wide default CPU backend (not thread-safe against concurrent ops).
void set_default_backend(Backend& backend);

/// RAII: makes `backend` current for this thread until destroyed (nests).
class BackendScope {
 public:
  explicit BackendScope(Backend& backend);
  ~BackendScope();
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  Backend* previous_;
};

}  // namespace anvil
