#include "framework/optim/ClipGrad.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

// Calls f(pointer, count) for the gradient of every parameter that has one, typed float or double.
template <typename F>
void for_each_grad(const char* who, const NamedTensors& params, F&& f) {
  for (const auto& [name, p] : params) {
    if (!p.defined()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.device().is_cpu())
      throw Error(fmt::format("{}: gradient of '{}' is not in host memory", who, name));
    if (g.dtype() == DType::kF32)
      f(g.data<float>(), g.numel());
    else if (g.dtype() == DType::kF64)
      f(g.data<double>(), g.numel());
    else
      throw Error(fmt::format("{}: gradient of '{}' is {}, expected float32 or float64", who, name, g.desc()));
  }
}

}  // namespace

double grad_global_norm(const NamedTensors& params) {
  double sum = 0.0;
  for_each_grad("grad_global_norm", params, [&](auto* d, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) sum += static_cast<double>(d[i]) * static_cast<double>(d[i]);
  });
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
  for_each_grad("clip_grad_value", params, [&](auto* d, std::int64_t n) {
    using T = std::remove_pointer_t<decltype(d)>;
    const T hi = static_cast<T>(clip_value), lo = -hi;
    for (std::int64_t i = 0; i < n; ++i)
      if (d[i] > hi) d[i] = hi;
      else if (d[i] < lo) d[i] = lo;
  });
}

void scale_grads(const NamedTensors& params, double factor) {
  if (factor == 1.0) return;
  for_each_grad("scale_grads", params, [&](auto* d, std::int64_t n) {
    using T = std::remove_pointer_t<decltype(d)>;
    const T f = static_cast<T>(factor);
    for (std::int64_t i = 0; i < n; ++i) d[i] *= f;
  });
}

bool grads_all_finite(const NamedTensors& params) {
  bool ok = true;
  for_each_grad("grads_all_finite", params, [&](auto* d, std::int64_t n) {
    for (std::int64_t i = 0; i < n && ok; ++i)
      if (!std::isfinite(d[i])) ok = false;
  });
  return ok;
}

}  // namespace anvil
