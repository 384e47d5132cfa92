// Gradient clipping and gradient-buffer helpers (MindSpore ops.clip_by_global_norm /
// ops.clip_by_value applied to gradients; PyTorch torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
//
//   autograd::backward(loss);
//   double norm = clip_grad_norm(net->trainable_params(), 1.0);   // global L2 norm before clipping
//   opt.step();
//
// Model applies them between backward and the optimizer step with ModelOptions::clip_grad_norm /
// clip_grad_value (framework/train/Model.h), after loss-scale unscaling and accumulation averaging.
//
// Every function works on the gradients (Tensor::grad()) of the given parameters, in place; parameters
// without a gradient are skipped. Gradients must be float32 or float64 (anvil::Error naming the
// parameter otherwise). Host gradients are summed in double; gradients in GPU memory are squared,
// summed and scaled by their device's backend (only the per-tensor sum comes back to the host), except
// clip_grad_value, which clamps a GPU gradient through a host copy.
#pragma once

#include "framework/tensor/Tensor.h"

namespace anvil {

/// The global L2 norm sqrt(sum over parameters of sum(g^2)) of the gradients (0 when there is none).
/// Infinite or NaN when a gradient holds inf/NaN.
double grad_global_norm(const NamedTensors& params);

/// Clips by global norm with MindSpore's clip_by_global_norm semantics: every gradient is multiplied by
///   max_norm / max(global_norm, max_norm)
/// so that the clipped global norm is exactly max_norm when global_norm > max_norm (to float rounding)
/// and the gradients are left untouched (not even rewritten) when global_norm <= max_norm.
/// Returns the global norm BEFORE clipping (as PyTorch's clip_grad_norm_). A non-finite norm leaves the
/// gradients untouched and is returned as is (loss scaling's overflow check skips such steps).
/// Precondition: max_norm finite and > 0 (anvil::Error otherwise).
double clip_grad_norm(const NamedTensors& params, double max_norm);

/// Clamps every gradient element to [-clip_value, clip_value] (NaN stays NaN).
/// Precondition: clip_value finite and > 0 (anvil::Error otherwise).
void clip_grad_value(const NamedTensors& params, double clip_value);

/// Multiplies every gradient by `factor` in place (loss-scale unscaling, accumulation averaging).
void scale_grads(const NamedTensors& params, double factor);

/// True when every gradient element is finite (no inf, no NaN): the loss-scale overflow check.
bool grads_all_finite(const NamedTensors& params);

}  // namespace anvil
