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

/// Applies "mean" | "sum" | "none" to per-element losses; throws on any other name.
Tensor reduce_loss(const Tensor& losses, const std::string& reduction);

}  // namespace anvil::ops
