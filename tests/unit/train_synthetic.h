// Synthetic images for the training tests: four classes of simple shapes.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace nl::test {

// A synthetic 4-class task: a bright disc, a horizontal bar, a vertical bar or a hollow
// square, at a jittered position, with noise. Grey [0,1], size x size.
inline std::vector<float> synthetic_shape(int label, size_t size, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> px(size * size);
  const double s = static_cast<double>(size);
  const double cx = s / 2 + rng.uniform(-s / 8, s / 8), cy = s / 2 + rng.uniform(-s / 8, s / 8);
  const double r = s / 4;
  for (size_t y = 0; y < size; ++y)
    for (size_t x = 0; x < size; ++x) {
      const double dx = x - cx, dy = y - cy;
      bool on = false;
      switch (label) {
        case 0: on = dx * dx + dy * dy < r * r; break;
        case 1: on = std::fabs(dy) < s / 10 && std::fabs(dx) < r * 1.4; break;
        case 2: on = std::fabs(dx) < s / 10 && std::fabs(dy) < r * 1.4; break;
        default: {
          const double m = std::max(std::fabs(dx), std::fabs(dy));
          on = m < r * 1.1 && m > r * 0.6;
        }
      }
      px[y * size + x] = static_cast<float>(std::clamp((on ? 0.8 : 0.1) + rng.uniform(-0.1, 0.1), 0.0, 1.0));
    }
  return px;
}

}  // namespace nl::test
