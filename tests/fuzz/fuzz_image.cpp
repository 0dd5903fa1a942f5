// libFuzzer target: image decoding and resizing on arbitrary bytes. Bad input must end in
// std::invalid_argument; anything else (crash, sanitizer report, other exception, a grey
// value outside [0,1], a resize leaving the input's range) is a finding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "formats/image.h"

namespace {

// Small enough that a header claiming a large image is refused quickly, large enough to
// decode real MRI slices.
constexpr size_t kFuzzMaxPixels = 4'000'000;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nl::GreyImage image;
  try {
    image = nl::decode_grey({data, size}, kFuzzMaxPixels);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  require(image.width > 0 && image.height > 0 && image.pixels.size() == image.width * image.height);
  require(image.width * image.height <= kFuzzMaxPixels);
  float lo = 1.0f, hi = 0.0f;
  for (float v : image.pixels) {
    require(v >= 0.0f && v <= 1.0f);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // One shrinking-or-enlarging size picked by the input, and the model's usual size.
  const size_t w = 1 + data[0] % 97, h = 1 + data[size - 1] % 89;
  for (auto [tw, th] : {std::pair<size_t, size_t>{w, h}, {224, 224}}) {
    const nl::GreyImage r = nl::resize(image, tw, th);
    require(r.width == tw && r.height == th && r.pixels.size() == tw * th);
    for (float v : r.pixels) require(v >= lo - 1e-5f && v <= hi + 1e-5f);
  }
  return 0;
}
