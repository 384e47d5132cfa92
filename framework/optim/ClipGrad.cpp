#include "framework/optim/ClipGrad.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include "framework/backend/Backend.h"
#include "framework/core/Error.h"

namespace anvil {
namespace {

void check_grad_dtype(const char* who, const std::string& name, const Tensor& g) {
  if (g.dtype() != DType::kF32 && g.dtype() != DType::kF64)
    throw Error(fmt::format("{}: gradient of '{}' is {}, expected float32 or float64", who, name, g.desc()));
}

// Calls host(pointer, count) for the host gradient of every parameter that has one (typed float or
// double), and device(parameter, gradient) for a gradient in GPU memory.
template <typename Host, typename Dev>
void for_each_grad(const char* who, const NamedTensors& params, Host&& host, Dev&& device) {
  for (const auto& [name, p] : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    check_grad_dtype(who, name, g);
    if (!g.device().is_cpu())
      device(p, g);
    else if (g.dtype() == DType::kF32)
      host(g.data<float>(), g.numel());
    else
      host(g.data<double>(), g.numel());
  }
}

// sum(g^2) of a device gradient, computed by its backend (two small copies back). The gradient is first
// divided by max|g|, so that a float32 sum of squares cannot overflow where the host's double sum would
// not; NaN and inf come out as they are.
double device_sum_of_squares(const Tensor& g) {
  Backend& b = backend_for(g.device());
  const Tensor flat = g.view(Shape{g.numel()});
  const double amax =
      b.reduce(ReduceKind::kMax, b.eltwise_forward(EltwiseKind::kAbs, flat, 0.0, 0.0), Shape{1}).item();
  if (!std::isfinite(amax) || amax == 0.0) return amax * amax;
  const Tensor unit = b.eltwise_forward(EltwiseKind::kLinear, flat, 1.0 / amax, 0.0);
  const Tensor squares = b.eltwise_forward(EltwiseKind::kSquare, unit, 0.0, 0.0);
  return b.reduce(ReduceKind::kSum, squares, Shape{1}).item() * amax * amax;
}

}  // namespace

double grad_global_norm(const NamedTensors& params) {
  double sum = 0.0;
  for_each_grad(
      "grad_global_norm", params,
      [&](auto* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(d[i]) * static_cast<double>(d[i]);
      },
      [&](const Tensor&, const Tensor& g) { sum += device_sum_of_squares(g); });
  return std::sqrt(sum);
}

double clip_grad_norm(const NamedTensors& params, double max_norm) {
  if (!std::isfinite(max_norm) || max_norm <= 0.0)
    throw Error(fmt::format("clip_grad_norm: max_norm must be finite and > 0, got {}", max_norm));
  const double norm = grad_global_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  scale_grads(params, max_norm / norm);
  return norm;
}

void clip_grad_value(const NamedTensors& params, double clip_value) {
  if (!std::isfinite(clip_value) || clip_value <= 0.0)
    throw Error(fmt::format("clip_grad_value: clip_value must be finite and > 0, got {}", clip_value));
  auto clamp = [&](auto* d, std::int64_t n) {
    using T = std::remove_pointer_t<decltype(d)>;
    const T hi = static_cast<T>(clip_value), lo = -hi;
    for (std::int64_t i = 0; i < n; ++i)
      if (d[i] > hi) d[i] = hi;
      else if (d[i] < lo) d[i] = lo;
  };
  // A device gradient is clamped through a host copy (exact NaN semantics; clipping by value is rare).
  for_each_grad("clip_grad_value", params, clamp, [&](const Tensor&, Tensor g) {
    Tensor h = g.to(Device::cpu());
    if (h.dtype() == DType::kF32)
      clamp(h.data<float>(), h.numel());
    else
      clamp(h.data<double>(), h.numel());
    g.copy_from(h);
  });
}

void scale_grads(const NamedTensors& params, double factor) {
  if (factor == 1.0) return;
  for_each_grad(
      "scale_grads", params,
      [&](auto* d, std::int64_t n) {
        using T = std::remove_pointer_t<decltype(d)>;
        const T f = static_cast<T>(factor);
        for (std::int64_t i = 0; i < n; ++i) d[i] *= f;
      },
      [&](const Tensor&, Tensor g) {
        // In place, as on the host: a same-device copy queued after the kernel.
        g.copy_from(backend_for(g.device()).eltwise_forward(EltwiseKind::kLinear, g, factor, 0.0));
      });
}

bool grads_all_finite(const NamedTensors& params) {
  bool ok = true;
  for_each_grad(
      "grads_all_finite", params,
      [&](auto* d, std::int64_t n) {
        for (std::int64_t i = 0; i < n && ok; ++i)
          if (!std::isfinite(d[i])) ok = false;
      },
      [&](const Tensor&, const Tensor& g) {
        // sum(0 * g) is 0 when every element is finite and NaN as soon as one is inf or NaN.
        if (!ok) return;
        Backend& b = backend_for(g.device());
        const Tensor zeros = b.eltwise_forward(EltwiseKind::kLinear, g.view(Shape{g.numel()}), 0.0, 0.0);
        if (!std::isfinite(b.reduce(ReduceKind::kSum, zeros, Shape{1}).item())) ok = false;
      });
  return ok;
}

}  // namespace anvil
