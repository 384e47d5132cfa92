// Generator: a seeded, serializable random stream (xoshiro256** seeded through splitmix64).
//
// Randomness in Anvil is explicit: initializers, dropout and the DataLoader each take a Generator&.
// Same seed, same sequence of calls -> bit-identical values on every platform (no std:: distributions,
// whose output is implementation-defined). state()/set_state() capture everything, including the
// cached second Box-Muller sample, so a restored stream continues exactly where it stopped.
#pragma once

#include <array>
#include <cstdint>

namespace anvil {

/// The complete state of a Generator; plain data, safe to copy and store.
struct GeneratorState {
  std::array<std::uint64_t, 4> s{};
  std::uint64_t seed = 0;
  bool has_spare = false;
  double spare = 0.0;
  bool operator==(const GeneratorState&) const = default;
};

class Generator {
 public:
  /// Seeds the stream; equal seeds give equal streams.
  explicit Generator(std::uint64_t seed = 0);

  /// Restarts the stream from `seed`.
  void manual_seed(std::uint64_t seed);
  std::uint64_t seed() const { return state_.seed; }

  /// Next 64 random bits.
  std::uint64_t next_u64();
  /// Uniform double in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Normal sample (Box-Muller; the second sample is cached and part of the state).
  double normal(double mean = 0.0, double stddev = 1.0);
  /// Uniform integer in [0, n); n must be > 0 (throws anvil::Error otherwise). Unbiased.
  std::uint64_t randint(std::uint64_t n);
  /// Bernoulli(p) draw.
  bool bernoulli(double p) { return uniform() < p; }

  GeneratorState state() const { return state_; }
  void set_state(const GeneratorState& st) { state_ = st; }

 private:
  GeneratorState state_;
};

/// The process-wide generator that layers use for initialization when no Generator is passed.
/// Not thread-safe: build networks on one thread (or pass explicit generators).
Generator& default_generator();
/// Re-seeds default_generator() (MindSpore set_seed).
void set_seed(std::uint64_t seed);

}  // namespace anvil
