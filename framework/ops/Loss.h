// Differentiable loss functions (the functional forms; nn/losses wraps them as Cells).
#pragma once

#include <string>

#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// Sparse softmax cross-entropy: logits [N, C], labels [N] int32/int64 in [0, C).
/// reduction "mean" (default) -> 0-d; "sum" -> 0-d; "none" -> [N].
/// Throws naming shapes when N differs, naming the label when one is out of range.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const std::string& reduction = "mean");

/// Mean squared error between equal shapes (reduction "mean" | "sum" | "none").
Tensor mse_loss(const Tensor& pred, const Tensor& target, const std::string& reduction = "mean");

/// Binary cross-entropy on logits (MindSpore ops.binary_cross_entropy_with_logits / nn.BCEWithLogitsLoss,
/// PyTorch BCEWithLogitsLoss), elementwise with p = pos_weight, w = weight:
///   l = w * (p * y * softplus(-x) + (1 - y) * softplus(x)),  softplus(z) = max(z, 0) + log(1 + exp(-|z|)),
/// which never overflows for large |x|. logits x and labels y (float targets in [0, 1]) have equal
/// shapes; weight and pos_weight are optional (undefined = 1) and broadcast to x (pos_weight usually
/// [C], one per class in the last dim). Throws naming the shapes on mismatch or a non-broadcastable weight.
Tensor bce_with_logits(const Tensor& logits, const Tensor& labels, const Tensor& weight = Tensor(),
                       const Tensor& pos_weight = Tensor(), const std::string& reduction = "mean");
/// Mean absolute error |pred - target| between equal shapes (MindSpore nn.L1Loss).
Tensor l1_loss(const Tensor& pred, const Tensor& target, const std::string& reduction = "mean");
/// Smooth L1 / Huber-like loss (MindSpore nn.SmoothL1Loss, PyTorch SmoothL1Loss) with d = pred - target:
///   0.5 d² / beta when |d| < beta, else |d| - 0.5 beta. Throws unless beta > 0 and the shapes are equal.
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta = 1.0,
                      const std::string& reduction = "mean");
/// Negative log-likelihood (MindSpore nn.NLLLoss / ops.nll_loss, PyTorch NLLLoss): log_probs [N, C]
/// (e.g. from log_softmax), labels [N] int32/int64. Per sample l_n = -weight[y_n] * log_probs[n, y_n],
/// 0 where y_n == ignore_index. "mean" divides the sum by Σ weight[y_n] over the samples not ignored
/// (as MindSpore and PyTorch do); "sum" sums; "none" returns [N]. weight is an optional [C] tensor
/// (undefined = 1) treated as a constant. Throws naming the shapes, and naming the position and value
/// of a label outside [0, C) that is not ignore_index.
Tensor nll_loss(const Tensor& log_probs, const Tensor& labels, const Tensor& weight = Tensor(),
                std::int64_t ignore_index = -100, const std::string& reduction = "mean");
/// Applies "mean" | "sum" | "none" to per-element losses; throws on any other name.
Tensor reduce_loss(const Tensor& losses, const std::string& reduction);

}  // namespace anvil::ops
