#include "framework/core/Random.h"

#include <cmath>
#include <numbers>

#include "framework/core/Error.h"

namespace anvil {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Generator::Generator(std::uint64_t seed) { manual_seed(seed); }

void Generator::manual_seed(std::uint64_t seed) {
  state_ = GeneratorState{};
  state_.seed = seed;
  std::uint64_t x = seed;
  for (auto& w : state_.s) w = splitmix64(x);
}

std::uint64_t Generator::next_u64() {
  auto& s = state_.s;
  const std::uint64_t result = rotl(s[1] * 5, 7) * 9;
  const std::uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal(double mean, double stddev) {
  if (state_.has_spare) {
    state_.has_spare = false;
    return mean + stddev * state_.spare;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double th = 2.0 * std::numbers::pi * u2;
  state_.spare = r * std::sin(th);
  state_.has_spare = true;
  return mean + stddev * r * std::cos(th);
}

std::uint64_t Generator::randint(std::uint64_t n) {
  ANVIL_CHECK(n > 0, "upper bound must be positive, got {}", n);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t v = next_u64();
  while (v >= limit) v = next_u64();
  return v % n;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void set_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

std::uint64_t global_seed() { return default_generator().seed(); }

}  // namespace anvil
