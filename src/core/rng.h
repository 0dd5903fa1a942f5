// Rng: a small seeded generator whose sequence is the same on every platform and standard
// library (std::uniform_*_distribution and std::shuffle are implementation-defined, and the
// native build (libstdc++) and the wasm build (libc++) must train identically for a seed).
// SplitMix64 output function over a Weyl sequence: fast, 64-bit state, good enough mixing for
// shuffles, augmentation parameters and dropout-free bookkeeping.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace nl {

// Mixes a 64-bit value (the SplitMix64 finaliser); used to derive independent seeds.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed for a sub-stream, e.g. derive_seed(seed, {epoch, sample}): different keys give
// statistically independent streams, and the result does not depend on call order.
inline uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> keys) {
  uint64_t h = mix64(seed);
  for (uint64_t k : keys) h = mix64(h ^ mix64(k + 0x632BE59BD9B4E019ull));
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(mix64(seed)) {}
  // A generator that starts from this raw state (the seed is not mixed first).
  static Rng with_state(uint64_t state) {
    Rng r(0);
    r.state_ = state;
    return r;
  }

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n) (n > 0), by rejection so there is no modulo bias.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
  bool coin() { return (next() >> 63) != 0; }
  // Beta(a, a) for 0 < a <= 2, by Johnk's method (two powers of uniforms, accepted when
  // their sum is at most 1; the acceptance rate is at least 1/6 over that range).
  double beta_symmetric(double a) {
    for (;;) {
      const double x = std::pow(uniform(), 1.0 / a), y = std::pow(uniform(), 1.0 / a);
      if (x + y <= 1.0 && x + y > 0.0) return x / (x + y);
    }
  }

  // Fisher-Yates shuffle with this generator.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace nl
