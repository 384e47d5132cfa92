// Differentiable elementwise functions (activations and friends).
#pragma once

#include "framework/backend/Backend.h"
#include "framework/tensor/Tensor.h"

namespace anvil::ops {

/// y = f(x; alpha, beta) for the kinds of EltwiseKind (see Backend.h for each formula).
Tensor eltwise(EltwiseKind kind, const Tensor& x, double alpha = 0.0, double beta = 0.0);

inline Tensor relu(const Tensor& x) { return eltwise(EltwiseKind::kRelu, x); }
/// max(x, 0) + slope * min(x, 0).
inline Tensor leaky_relu(const Tensor& x, double slope) { return eltwise(EltwiseKind::kRelu, x, slope); }
inline Tensor sigmoid(const Tensor& x) { return eltwise(EltwiseKind::kSigmoid, x); }
inline Tensor tanh(const Tensor& x) { return eltwise(EltwiseKind::kTanh, x); }
/// Exact GELU, 0.5 x (1 + erf(x / √2)).
inline Tensor gelu(const Tensor& x) { return eltwise(EltwiseKind::kGelu, x); }
inline Tensor exp(const Tensor& x) { return eltwise(EltwiseKind::kExp, x); }
inline Tensor log(const Tensor& x) { return eltwise(EltwiseKind::kLog, x); }
inline Tensor sqrt(const Tensor& x) { return eltwise(EltwiseKind::kSqrt, x); }
inline Tensor square(const Tensor& x) { return eltwise(EltwiseKind::kSquare, x); }
inline Tensor abs(const Tensor& x) { return eltwise(EltwiseKind::kAbs, x); }
/// alpha * x + beta.
inline Tensor affine(const Tensor& x, double alpha, double beta) { return eltwise(EltwiseKind::kLinear, x, alpha, beta); }

}  // namespace anvil::ops
