#include "train/augment.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string>

namespace nl {

AugmentOptions AugmentOptions::mri(double strength) {
  if (!(strength >= 0.0 && strength <= 2.0))
    throw std::invalid_argument("augmentation: strength " + std::to_string(strength) +
                                " is outside [0, 2]");
  AugmentOptions o;
  o.flip = true;
  o.rotation_deg = 12.0 * strength;
  o.shift = 0.08 * strength;
  o.scale = 0.10 * strength;
  o.brightness = 0.08 * strength;
  o.contrast = 0.15 * strength;
  return o;
}

void AugmentOptions::validate() const {
  auto check = [](double v, double hi, const char* name) {
    if (!(v >= 0.0 && v <= hi))
      throw std::invalid_argument(std::string("augmentation: ") + name + " " +
                                  std::to_string(v) + " is outside [0, " + std::to_string(hi) +
                                  "]");
  };
  check(rotation_deg, 180.0, "rotation_deg");
  check(shift, 0.5, "shift");
  check(scale, 0.9, "scale");
  check(brightness, 1.0, "brightness");
  check(contrast, 0.9, "contrast");
}

AugmentParams sample_augment(const AugmentOptions& o, size_t width, size_t height, Rng& rng) {
  // Every value is drawn whether or not its option is on, so turning one option off does
  // not change the others' draws for the same seed.
  AugmentParams p;
  const bool flip = rng.coin();
  const double angle = rng.uniform(-1.0, 1.0), scale = rng.uniform(-1.0, 1.0);
  const double sx = rng.uniform(-1.0, 1.0), sy = rng.uniform(-1.0, 1.0);
  const double bright = rng.uniform(-1.0, 1.0), contrast = rng.uniform(-1.0, 1.0);
  p.flip = o.flip && flip;
  p.angle_rad = angle * o.rotation_deg * std::numbers::pi / 180.0;
  p.scale = 1.0 + scale * o.scale;
  p.shift_x = sx * o.shift * static_cast<double>(width);
  p.shift_y = sy * o.shift * static_cast<double>(height);
  p.brightness = bright * o.brightness;
  p.contrast = 1.0 + contrast * o.contrast;
  return p;
}

void augment_image(const float* src, size_t width, size_t height, const AugmentParams& p,
                   float* out) {
  // Output point o comes from source point s = c + F R(-angle) (o - c - t) / scale, where c
  // is the image centre, t the shift and F the optional mirror: the inverse of
  // "mirror, rotate and zoom about the centre, then shift".
  const double cx = (static_cast<double>(width) - 1.0) / 2.0;
  const double cy = (static_cast<double>(height) - 1.0) / 2.0;
  const double cs = std::cos(p.angle_rad) / p.scale, sn = std::sin(p.angle_rad) / p.scale;
  const double mirror = p.flip ? -1.0 : 1.0;
  const long w = static_cast<long>(width), h = static_cast<long>(height);
  auto pixel = [&](long x, long y) -> double {
    return (x < 0 || y < 0 || x >= w || y >= h) ? 0.0 : src[y * w + x];
  };
  double sum = 0.0;
  for (long y = 0; y < h; ++y) {
    const double v = static_cast<double>(y) - cy - p.shift_y;
    for (long x = 0; x < w; ++x) {
      const double u = static_cast<double>(x) - cx - p.shift_x;
      // R(-angle) = [[cos, sin], [-sin, cos]]
      const double sx = cx + mirror * (cs * u + sn * v);
      const double sy = cy + (-sn * u + cs * v);
      const double fx0 = std::floor(sx), fy0 = std::floor(sy);
      double value;
      if (fx0 < -1.0 || fy0 < -1.0 || fx0 > static_cast<double>(w) ||
          fy0 > static_cast<double>(h)) {
        value = 0.0;
      } else {
        const long x0 = static_cast<long>(fx0), y0 = static_cast<long>(fy0);
        const double ax = sx - fx0, ay = sy - fy0;
        value = (1.0 - ay) * ((1.0 - ax) * pixel(x0, y0) + ax * pixel(x0 + 1, y0)) +
                ay * ((1.0 - ax) * pixel(x0, y0 + 1) + ax * pixel(x0 + 1, y0 + 1));
      }
      out[y * w + x] = static_cast<float>(value);
      sum += value;
    }
  }
  if (p.brightness == 0.0 && p.contrast == 1.0) return;
  const double mean = sum / static_cast<double>(width * height);
  const double offset = (1.0 - p.contrast) * mean + p.brightness;
  for (size_t i = 0, n = width * height; i < n; ++i)
    out[i] = static_cast<float>(std::clamp(out[i] * p.contrast + offset, 0.0, 1.0));
}

}  // namespace nl
