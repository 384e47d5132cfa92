// ComputePrecision: the precision the compute-heavy backend kernels (conv2d forward / backward-data /
// backward-weights, linear forward / backward, matmul) use on this thread — mixed precision
// (Model's amp_level "O2"/"O3") without changing any tensor's dtype.
//
// Tensors stay float32 at every op boundary. Under kBF16 those kernels round their float32 inputs
// (activations, weights, incoming gradients) to bfloat16, multiply in bfloat16 and accumulate and
// return float32: the oneDNN backend through bf16 memory descriptors (AVX-512 BF16 / AMX), the
// reference backend by rounding the inputs to bf16 (round to nearest even) before its float loops,
// so it stays the oracle. float64 tensors (gradient checks) ignore the setting. Every other kernel
// (pooling, eltwise, batch norm, softmax, losses, optimizer updates) is unaffected.
//
// The setting is read when a kernel runs, so a backward pass uses the precision in effect when it
// runs: keep forward and backward inside the same scope (Model::train_step does).
#pragma once

#include <cstdint>
#include <string>

namespace anvil {

enum class ComputePrecision { kF32, kBF16 };

/// The precision on this thread (kF32 unless a ComputePrecisionScope is active).
ComputePrecision current_compute_precision();

/// kF32 for amp_level "O0", kBF16 for "O2" and "O3". Throws anvil::Error for anything else.
ComputePrecision compute_precision_for(const std::string& amp_level);

/// RAII: sets the precision for this thread until destroyed (nests).
class ComputePrecisionScope {
 public:
  explicit ComputePrecisionScope(ComputePrecision p);
  ~ComputePrecisionScope();
  ComputePrecisionScope(const ComputePrecisionScope&) = delete;
  ComputePrecisionScope& operator=(const ComputePrecisionScope&) = delete;

 private:
  ComputePrecision previous_;
};

/// float32 -> bfloat16 bits, round to nearest even (NaN stays NaN).
unsigned short float_to_bf16_bits(float x);
/// x rounded to the nearest bfloat16 value, as float32.
float round_to_bf16(float x);
/// Rounds p[0..n) to bfloat16 in place (as round_to_bf16; a vectorizable loop).
void round_to_bf16_inplace(float* p, std::int64_t n);

}  // namespace anvil
