#include "layers/init.h"

#include <cmath>
#include <random>

namespace nl {

void fill_he_normal(std::span<float> values, size_t fan_in, uint64_t seed) {
  std::mt19937_64 engine(seed);  // its output sequence is fixed by the standard
  const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in == 0 ? 1 : fan_in));
  const double two_pi = 6.283185307179586476925286766559;
  const double scale = 1.0 / 9007199254740992.0;  // 2^-53
  size_t i = 0;
  while (i < values.size()) {
    // Two uniforms from 53-bit integers: u1 in (0,1] (log is finite), u2 in [0,1).
    const double u1 = static_cast<double>((engine() >> 11) + 1) * scale;
    const double u2 = static_cast<double>(engine() >> 11) * scale;
    const double radius = std::sqrt(-2.0 * std::log(u1)) * stddev;
    values[i++] = static_cast<float>(radius * std::cos(two_pi * u2));
    if (i < values.size()) values[i++] = static_cast<float>(radius * std::sin(two_pi * u2));
  }
}

}  // namespace nl
