#include "framework/train/LossScaleManager.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {

constexpr const char* kScaleSense = "scale_sense";
constexpr const char* kCurIter = "current_iterator_step";
constexpr const char* kLastOverflow = "last_overflow_iterator_step";

// Checks that `state` holds exactly `names` (one-element tensors) and returns them by name.
std::map<std::string, Tensor> take(const std::string& who, const NamedTensors& state,
                                   std::initializer_list<const char*> names) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : state) {
    bool known = false;
    for (const char* n : names) known = known || name == n;
    if (!known) throw Error(fmt::format("{}.load_state_dict: unknown entry '{}'", who, name));
    if (!t.defined() || t.numel() != 1 || t.rank() > 1)
      throw Error(fmt::format("{}.load_state_dict: entry '{}' must be a 0-d or [1] tensor, got {}", who, name,
                              t.defined() ? t.desc() : std::string("undefined")));
    if (!out.emplace(name, t).second) throw Error(fmt::format("{}.load_state_dict: entry '{}' given twice", who, name));
  }
  for (const char* n : names)
    if (!out.count(n)) throw Error(fmt::format("{}.load_state_dict: entry '{}' is missing", who, n));
  return out;
}

float checked_scale(const std::string& who, double v) {
  if (!std::isfinite(v) || v < 1.0 || v > std::numeric_limits<float>::max())
    throw Error(fmt::format("{}: loss scale must be finite and >= 1, got {}", who, v));
  return static_cast<float>(v);
}

}  // namespace

FixedLossScaleManager::FixedLossScaleManager(double loss_scale, bool drop_overflow_update)
    : scale_(checked_scale("FixedLossScaleManager", loss_scale)), drop_(drop_overflow_update) {}

NamedTensors FixedLossScaleManager::state_dict() const {
  NamedTensors out;
  out.emplace_back(kScaleSense, Tensor::scalar(scale_, DType::kF32));
  return out;
}

void FixedLossScaleManager::load_state_dict(const NamedTensors& state) {
  auto m = take(name(), state, {kScaleSense});
  scale_ = checked_scale(name() + ".load_state_dict: 'scale_sense'", m.at(kScaleSense).item());
}

DynamicLossScaleManager::DynamicLossScaleManager(double init_loss_scale, double scale_factor,
                                                 std::int64_t scale_window)
    : scale_(checked_scale("DynamicLossScaleManager", init_loss_scale)),
      factor_(scale_factor),
      window_(scale_window) {
  if (!std::isfinite(scale_factor) || scale_factor <= 1.0)
    throw Error(fmt::format("DynamicLossScaleManager: scale_factor must be finite and > 1, got {}", scale_factor));
  if (scale_window < 1)
    throw Error(fmt::format("DynamicLossScaleManager: scale_window must be >= 1, got {}", scale_window));
}

void DynamicLossScaleManager::update_loss_scale(bool overflow) {
  // float32 arithmetic, as MindSpore's float32 scale_sense Parameter.
  const float down = static_cast<float>(1.0 / factor_), up = static_cast<float>(factor_);
  const bool should_inc = cur_iter_ - last_overflow_iter_ >= window_;
  float scale = overflow ? std::max(scale_ * down, 1.0f) : scale_;
  if (overflow || should_inc) last_overflow_iter_ = cur_iter_;
  if (should_inc && !overflow) {
    const float grown = scale * up;
    if (std::isfinite(grown)) scale = grown;  // never grow past float32's range
  }
  scale_ = scale;
  ++cur_iter_;
}

NamedTensors DynamicLossScaleManager::state_dict() const {
  NamedTensors out;
  out.emplace_back(kScaleSense, Tensor::scalar(scale_, DType::kF32));
  out.emplace_back(kCurIter, Tensor::scalar(static_cast<double>(cur_iter_), DType::kI32));
  out.emplace_back(kLastOverflow, Tensor::scalar(static_cast<double>(last_overflow_iter_), DType::kI32));
  return out;
}

void DynamicLossScaleManager::load_state_dict(const NamedTensors& state) {
  auto m = take(name(), state, {kScaleSense, kCurIter, kLastOverflow});
  const float scale = checked_scale(name() + ".load_state_dict: 'scale_sense'", m.at(kScaleSense).item());
  const double cur = m.at(kCurIter).item(), last = m.at(kLastOverflow).item();
  if (!(cur >= 0) || !(last >= 0) || cur != std::floor(cur) || last != std::floor(last))
    throw Error(fmt::format("{}.load_state_dict: counters must be non-negative integers, got {} and {}", name(), cur,
                            last));
  scale_ = scale;
  cur_iter_ = static_cast<std::int64_t>(cur);
  last_overflow_iter_ = static_cast<std::int64_t>(last);
}

}  // namespace anvil
