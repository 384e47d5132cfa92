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
/// Re-seeds default_generator() (MindSpore set_seed): the global seed every randomness source falls
/// back to when not given its own:
///   - layer initializers (Dense, Conv2d, models) draw from default_generator() when passed no Generator;
///   - nn::Dropout seeds its own Generator from default_generator().next_u64() when given no seed;
///   - DataLoader uses global_seed() as its shuffle/transform seed when DataLoaderOptions::seed is left
///     at kSeedFromGlobal.
/// Precedence: an explicit Generator / seed argument always wins; the global seed is read when the
/// object is constructed (set_seed after constructing a layer or loader does not change it).
/// Same set_seed(n) and same program -> bit-identical runs.
void set_seed(std::uint64_t seed);
/// The seed default_generator() was last seeded with (0 when set_seed was never called), i.e.
/// default_generator().seed(). Not thread-safe (like default_generator()).
std::uint64_t global_seed();

}  // namespace anvil
