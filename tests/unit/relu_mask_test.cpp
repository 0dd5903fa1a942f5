// relu_backward: the one ReLU gradient mask (the ReLU layer, and the ReLU fused into conv2d
// and dense), against the naive rule at odd sizes, with signed zeros, infinities and NaNs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "layers/relu.h"

namespace {

float naive_mask(float y, float dy) {
  if (std::isnan(y) || y <= 0.0f) return 0.0f;
  return dy;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("relu_backward: dy where y > 0, else +0, at odd sizes and in place") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {0.0f, -0.0f, 1e-45f, -1e-45f, inf, -inf, nan, 1.0f, -1.0f, 3e38f};
  nl::Rng rng(5);
  for (size_t n : {1u, 2u, 3u, 7u, 15u, 16u, 17u, 63u, 1001u}) {
    CAPTURE(n);
    std::vector<float> y(n), dy(n), dx(n, 42.0f);
    for (size_t i = 0; i < n; ++i) {
      y[i] = rng.coin() ? specials[rng.next() % 10] : static_cast<float>(rng.uniform(-2, 2));
      dy[i] = rng.coin() ? specials[rng.next() % 10] : static_cast<float>(rng.uniform(-2, 2));
    }
    nl::relu_backward(y.data(), dy.data(), dx.data(), n);
    for (size_t i = 0; i < n; ++i) CHECK(same_bits(dx[i], naive_mask(y[i], dy[i])));
    std::vector<float> in_place = dy;
    nl::relu_backward(y.data(), in_place.data(), in_place.data(), n);
    CHECK(std::memcmp(in_place.data(), dx.data(), n * sizeof(float)) == 0);
  }
}
