// Real-world intensities to grey levels: VOI windows (DICOM PS3.3 C.11.2.1.2) and the automatic
// 0.5th..99.5th percentile window.
#include <algorithm>
#include <cmath>

#include "formats/scans/scan.h"
#include "formats/scans/scan_internal.h"

namespace nl::scans {

uint8_t apply_window(double x, const Window& w) {
  if (!std::isfinite(x)) return 0;
  double y = 0;  // in [0, 1]
  switch (w.function) {
    case WindowFunction::linear: {
      // Width < 1 is not a LINEAR window (the standard requires >= 1): treat as a threshold.
      const double c = w.center - 0.5, half = std::max(w.width - 1, 0.0) / 2;
      if (x <= c - half) y = 0;
      else if (x > c + half) y = 1;
      else y = (x - c) / std::max(w.width - 1, 1e-12) + 0.5;
      break;
    }
    case WindowFunction::linear_exact: {
      const double width = std::max(w.width, 1e-12);
      if (x <= w.center - width / 2) y = 0;
      else if (x > w.center + width / 2) y = 1;
      else y = (x - w.center) / width + 0.5;
      break;
    }
    case WindowFunction::sigmoid:
      y = 1 / (1 + std::exp(-4 * (x - w.center) / std::max(w.width, 1e-12)));
      break;
  }
  return static_cast<uint8_t>(std::lround(std::clamp(y, 0.0, 1.0) * 255));
}

Window percentile_window(std::span<const float> values) {
  // At most ~4M samples: an even stride through a large volume gives the same percentiles to
  // well under a grey level, without copying half a gigabyte.
  const size_t stride = std::max<size_t>(1, values.size() / (size_t{1} << 22));
  std::vector<float> sample;
  sample.reserve(values.size() / stride + 1);
  for (size_t i = 0; i < values.size(); i += stride)
    if (std::isfinite(values[i])) sample.push_back(values[i]);
  Window w;
  w.function = WindowFunction::linear_exact;
  if (sample.empty()) return w;
  auto at = [&](double p) {
    const double pos = p * static_cast<double>(sample.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    std::nth_element(sample.begin(), sample.begin() + lo, sample.end());
    const double a = sample[lo];
    if (lo + 1 >= sample.size()) return a;
    const double b = *std::min_element(sample.begin() + lo + 1, sample.end());
    return a + (b - a) * (pos - static_cast<double>(lo));
  };
  const double lo = at(0.005), hi = at(0.995);
  w.center = (lo + hi) / 2;
  // A flat image: any positive width maps it to mid-grey... make it black, as a JPEG of it is.
  w.width = hi > lo ? hi - lo : 1;
  if (hi <= lo) w.center = lo + 0.5;
  return w;
}

void finish_intensity(Volume& v) {
  float lo = 0, hi = 0;
  bool first = true;
  for (float x : v.voxels) {
    if (!std::isfinite(x)) continue;
    if (first) { lo = hi = x; first = false; }
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  v.info.minimum = lo;
  v.info.maximum = hi;
  v.info.auto_window = percentile_window(v.voxels);
}

const Window& Volume::default_window() const {
  return info.file_window ? *info.file_window : info.auto_window;
}

std::vector<uint8_t> Volume::slice_grey8(size_t z, const Window& w) const {
  if (z >= slices())
    throw ScanError("slice " + std::to_string(z) + " is out of range (the scan has " +
                    std::to_string(slices()) + ")");
  const size_t n = width() * height();
  std::vector<uint8_t> out(n);
  const float* src = voxels.data() + z * n;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t g = apply_window(src[i], w);
    out[i] = info.inverted ? static_cast<uint8_t>(255 - g) : g;
  }
  return out;
}

}  // namespace nl::scans
