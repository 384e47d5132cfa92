// Differentiable elementwise arithmetic with numpy broadcasting.
#pragma once

#include "framework/backend/Backend.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// c = a (op) b, broadcasting; throws naming both shapes when they cannot broadcast or dtypes differ.
Tensor binary(BinaryKind kind, const Tensor& a, const Tensor& b);
inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryKind::kAdd, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryKind::kSub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryKind::kMul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryKind::kDiv, a, b); }
/// x * s.
Tensor scale(const Tensor& x, double s);

/// Sums `g` over broadcast dimensions so that it has `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& g, const Shape& shape);

}  // namespace anvil::ops
