#include "framework/backend/ComputePrecision.h"

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "framework/core/Error.h"

namespace anvil {
namespace {
thread_local ComputePrecision t_precision = ComputePrecision::kF32;
}  // namespace

ComputePrecision current_compute_precision() { return t_precision; }

ComputePrecision compute_precision_for(const std::string& amp_level) {
  if (amp_level == "O0") return ComputePrecision::kF32;
  if (amp_level == "O2" || amp_level == "O3") return ComputePrecision::kBF16;
  throw Error(fmt::format("compute_precision_for: unknown amp_level \"{}\" (expected O0, O2 or O3)", amp_level));
}

ComputePrecisionScope::ComputePrecisionScope(ComputePrecision p) : previous_(t_precision) { t_precision = p; }
ComputePrecisionScope::~ComputePrecisionScope() { t_precision = previous_; }

unsigned short float_to_bf16_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) return static_cast<unsigned short>((u >> 16) | 0x40);
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<unsigned short>((u + rounding) >> 16);
}

float round_to_bf16(float x) {
  const std::uint32_t u = static_cast<std::uint32_t>(float_to_bf16_bits(x)) << 16;
  float out;
  std::memcpy(&out, &u, sizeof out);
  return out;
}

void round_to_bf16_inplace(float* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, p + i, sizeof u);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    const std::uint32_t quiet = (u | 0x00400000u) & 0xffff0000u;
    u = nan ? quiet : rounded;
    std::memcpy(p + i, &u, sizeof u);
  }
}

}  // namespace anvil
