#include "formats/image.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

// The stb_image implementation lives in this file only. Only the formats we document are
// compiled in (less code facing untrusted bytes); we decode from memory, never from files.
// The library's global settings (vertical flip, iPhone PNG, unpremultiply) are never
// changed, and its failure reason is thread-local, so concurrent decoding is safe.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace nl {

namespace {

struct StbiFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

// Names the format from its signature, so that errors can say "corrupt PNG" rather than
// "not an image". TGA has no signature; stb recognises it from header plausibility.
const char* format_name(std::span<const uint8_t> b) {
  auto starts = [&](std::initializer_list<uint8_t> sig) {
    return b.size() >= sig.size() && std::equal(sig.begin(), sig.end(), b.begin());
  };
  if (starts({0xFF, 0xD8})) return "JPEG";
  if (starts({0x89, 'P', 'N', 'G'})) return "PNG";
  if (starts({'G', 'I', 'F', '8'})) return "GIF";
  if (starts({'B', 'M'})) return "BMP";
  return nullptr;
}

// The size a PNG claims in its IHDR chunk. stb_image's header reader refuses PNGs over
// 2^30 bytes without saying their size, so read it here to report it like any other.
bool png_claimed_size(std::span<const uint8_t> b, uint64_t& w, uint64_t& h) {
  if (b.size() < 24 || std::memcmp(b.data() + 12, "IHDR", 4) != 0) return false;
  auto be32 = [&](size_t at) {
    return uint64_t{b[at]} << 24 | uint64_t{b[at + 1]} << 16 | uint64_t{b[at + 2]} << 8 | b[at + 3];
  };
  w = be32(16);
  h = be32(20);
  return true;
}

[[noreturn]] void fail_size(uint64_t w, uint64_t h, size_t max_pixels) {
  throw std::invalid_argument("image " + std::to_string(w) + "x" + std::to_string(h) +
                              " exceeds the " + std::to_string(max_pixels) + "-pixel limit");
}

uint64_t le(std::span<const uint8_t> b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | b[at + static_cast<size_t>(i)];
  return v;
}

// stb decodes a BMP or uncompressed TGA whose pixel data is cut short by filling the rest
// with zeros. Their headers say how many bytes the pixels take, so check that first.
// Returns 0 when the header gives no fixed size (compressed data) or the file has it all.
uint64_t missing_pixel_bytes(std::span<const uint8_t> b, const char* format, int w, int h) {
  uint64_t needed = 0;
  if (std::strcmp(format, "BMP") == 0 && b.size() >= 30) {
    const uint64_t offset = le(b, 10, 4), header = le(b, 14, 4);
    const uint64_t bpp = header == 12 ? le(b, 24, 2) : le(b, 28, 2);
    const uint64_t compression = header == 12 || b.size() < 34 ? 0 : le(b, 30, 4);
    if (compression != 0 && compression != 3 && compression != 6) return 0;  // RLE etc.
    const uint64_t row = (uint64_t(w) * bpp + 31) / 32 * 4;
    needed = offset + row * uint64_t(h);
  } else if (std::strcmp(format, "TGA") == 0 && b.size() >= 18) {
    const uint64_t type = b[2];
    if (type < 1 || type > 3) return 0;  // RLE-compressed: no fixed size
    const uint64_t palette = b[1] ? le(b, 5, 2) * ((b[7] + 7u) / 8u) : 0;
    needed = 18 + b[0] + palette + uint64_t(w) * uint64_t(h) * ((b[16] + 7u) / 8u);
  }
  return needed > b.size() ? needed - b.size() : 0;
}

// stb_image keeps its last failure reason until the next failure, and its loader first
// runs the other formats' signature tests (the PNG one leaves "bad png sig" behind), so
// the reason is cleared before each call and one that cannot be about this format is
// dropped. Truncated PNG chunk names also come out as garbled reasons.
void clear_failure_reason() { stbi__g_failure_reason = nullptr; }

// stb_image (since 2.28) decodes a JPEG cut short as if the rest were zeros, even one cut
// before its image data. So walk the file's segments: each marker segment has its length;
// a start-of-scan (FF DA) is followed by entropy-coded data in which an FF byte is stuffed as
// FF 00 and FF D0..D7 are restart markers, so the next other FF xx is the next marker. A
// complete file reaches an end-of-image marker (FF D9) after at least one scan (what follows
// it is ignored). Returns what is missing, or nullptr when the walk reaches it. Markers inside
// segments (an EXIF thumbnail's) are skipped with their segment.
const char* jpeg_missing_part(std::span<const uint8_t> b) {
  bool scanned = false;
  size_t i = 2;  // after SOI (FF D8)
  while (i + 1 < b.size()) {
    const uint8_t m = b[i + 1];
    if (b[i] != 0xFF || m == 0xFF) {  // padding between segments (stb skips it too), fill bytes
      ++i;
      continue;
    }
    i += 2;
    if (m == 0xD9) return scanned ? nullptr : "no image data (no start-of-scan marker)";
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // markers without a length
    if (i + 2 > b.size()) break;
    const size_t length = (size_t{b[i]} << 8) | b[i + 1];
    if (length < 2) return "a marker segment with a length under 2 (the data is damaged)";
    i += length;
    if (m != 0xDA) continue;
    scanned = true;
    while (i + 1 < b.size() && !(b[i] == 0xFF && b[i + 1] != 0x00 && (b[i + 1] < 0xD0 || b[i + 1] > 0xD7))) ++i;
  }
  return scanned ? "no end-of-image marker after the last scan (the file is cut short)"
                 : "no image data (no start-of-scan marker)";
}

[[noreturn]] void fail_decode(const char* format) {
  const char* reason = stbi_failure_reason();
  std::string why = reason ? reason : "";
  const bool readable = why.size() >= 3 && std::all_of(why.begin(), why.end(), [](char c) {
    return c >= 0x20 && c < 0x7f;
  });
  if (!readable || why == "unknown image type" ||
      (why == "bad png sig" && std::strcmp(format, "PNG") != 0))
    why = "data ends early or is damaged";
  throw std::invalid_argument(std::string("corrupt or truncated ") + format + ": " + why);
}

// Grey = luma of RGB (ITU-R BT.601 weights); alpha is ignored.
template <typename Sample>
void to_grey(const Sample* data, int channels, float scale, std::vector<float>& out) {
  const size_t stride = static_cast<size_t>(channels);
  for (size_t i = 0; i < out.size(); ++i) {
    const Sample* p = data + i * stride;
    float v = channels >= 3 ? 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2] : float(p[0]);
    out[i] = v * scale;
  }
}

// Resampling of one axis: output i = sum over taps of weight * input[first + k].
struct AxisWeights {
  std::vector<size_t> first, count, offset;
  std::vector<float> weights;
};

AxisWeights axis_weights(size_t src, size_t dst) {
  AxisWeights a;
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  std::vector<double> taps;
  for (size_t i = 0; i < dst; ++i) {
    taps.clear();
    size_t first = 0;
    if (dst < src) {
      // Shrinking: average over the source interval the output pixel covers, counting
      // partly covered source pixels by the fraction covered.
      const double lo = static_cast<double>(i) * scale, hi = static_cast<double>(i + 1) * scale;
      first = static_cast<size_t>(std::floor(lo));
      const size_t last = std::min(src, static_cast<size_t>(std::ceil(hi)));
      for (size_t j = first; j < last; ++j)
        taps.push_back(std::min(hi, double(j + 1)) - std::max(lo, double(j)));
    } else {
      // Enlarging (or same size): bilinear between the two nearest source centres.
      double x = (static_cast<double>(i) + 0.5) * scale - 0.5;
      x = std::clamp(x, 0.0, static_cast<double>(src - 1));
      first = static_cast<size_t>(std::floor(x));
      const double f = x - static_cast<double>(first);
      taps.push_back(1.0 - f);
      if (first + 1 < src) taps.push_back(f);
    }
    double sum = 0;
    for (double w : taps) sum += w;
    a.first.push_back(first);
    a.count.push_back(taps.size());
    a.offset.push_back(a.weights.size());
    for (double w : taps) a.weights.push_back(static_cast<float>(w / sum));
  }
  return a;
}

void check_decoded(int w, int h, int dw, int dh, int channels) {
  if (dw != w || dh != h)
    throw std::invalid_argument("image header says " + std::to_string(w) + "x" + std::to_string(h) +
                                " but decodes to " + std::to_string(dw) + "x" + std::to_string(dh));
  if (channels < 1 || channels > 4)
    throw std::invalid_argument("image has " + std::to_string(channels) +
                                " channels (1-4 supported)");
}

}  // namespace

GreyImage decode_grey(std::span<const uint8_t> bytes, size_t max_pixels) {
  if (bytes.empty()) throw std::invalid_argument("empty file");
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    throw std::invalid_argument("file of " + std::to_string(bytes.size()) + " bytes is too large");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());

  // The header alone says how much memory decoding will take: check it first.
  int w = 0, h = 0, channels = 0;
  const char* format = format_name(bytes);
  clear_failure_reason();
  if (!stbi_info_from_memory(data, length, &w, &h, &channels)) {
    if (!format)
      throw std::invalid_argument(
          "not an image (unrecognised format; JPEG, PNG, BMP, GIF and TGA are supported)");
    uint64_t cw = 0, ch = 0;
    if (std::strcmp(format, "PNG") == 0 && png_claimed_size(bytes, cw, ch) && cw * ch > max_pixels)
      fail_size(cw, ch, max_pixels);
    // stbi_info only ever says "unknown image type". For a format known by its signature,
    // loading runs the same header code, so it fails at the same point (before allocating
    // anything) and says why.
    clear_failure_reason();
    std::unique_ptr<stbi_uc, StbiFree> decoded(stbi_load_from_memory(data, length, &w, &h, &channels, 0));
    if (decoded) throw std::invalid_argument(std::string("corrupt ") + format + ": header unreadable");
    fail_decode(format);
  }
  if (!format) format = "TGA";  // the only format without a signature that stb accepts
  if (w <= 0 || h <= 0)
    throw std::invalid_argument(std::string("corrupt ") + format + ": header says " +
                                std::to_string(w) + "x" + std::to_string(h) + " pixels");
  const size_t pixels = static_cast<size_t>(w) * static_cast<size_t>(h);
  if (pixels > max_pixels) fail_size(static_cast<uint64_t>(w), static_cast<uint64_t>(h), max_pixels);

  if (const uint64_t missing = missing_pixel_bytes(bytes, format, w, h))
    throw std::invalid_argument(std::string("corrupt or truncated ") + format + ": pixel data is " +
                                std::to_string(missing) + " bytes short");
  if (std::strcmp(format, "JPEG") == 0)
    if (const char* missing = jpeg_missing_part(bytes))
      throw std::invalid_argument(std::string("corrupt or truncated JPEG: ") + missing);

  GreyImage image;
  int dw = 0, dh = 0;
  // Takes what stb decoded (8 or 16 bits a sample) and converts it to grey in [0,1].
  auto to_image = [&]<typename Sample>(Sample* samples, float scale) {
    std::unique_ptr<Sample, StbiFree> decoded(samples);
    if (!decoded) fail_decode(format);
    check_decoded(w, h, dw, dh, channels);
    image.pixels.resize(pixels);
    to_grey(decoded.get(), channels, scale, image.pixels);
  };
  clear_failure_reason();
  const bool sixteen_bit = stbi_is_16_bit_from_memory(data, length);
  clear_failure_reason();
  if (sixteen_bit) to_image(stbi_load_16_from_memory(data, length, &dw, &dh, &channels, 0), 1.0f / 65535.0f);
  else to_image(stbi_load_from_memory(data, length, &dw, &dh, &channels, 0), 1.0f / 255.0f);
  image.width = static_cast<size_t>(w);
  image.height = static_cast<size_t>(h);
  return image;
}

GreyImage resize(const GreyImage& image, size_t width, size_t height) {
  if (image.width == 0 || image.height == 0 || image.pixels.size() != image.width * image.height)
    throw std::invalid_argument("resize: source image is empty or its pixel count (" +
                                std::to_string(image.pixels.size()) + ") is not " +
                                std::to_string(image.width) + "x" + std::to_string(image.height));
  if (width == 0 || height == 0 || width > kMaxImagePixels / height)
    throw std::invalid_argument("resize: target size " + std::to_string(width) + "x" +
                                std::to_string(height) + " is empty or exceeds the " +
                                std::to_string(kMaxImagePixels) + "-pixel limit");
  const AxisWeights ax = axis_weights(image.width, width);
  const AxisWeights ay = axis_weights(image.height, height);

  // Horizontal pass into [source rows x target width], then vertical. Sums run in double: a
  // large reduction averages thousands of taps, and float rounding would then step outside
  // the source's range.
  std::vector<float> rows(image.height * width);
  for (size_t y = 0; y < image.height; ++y) {
    const float* src = image.pixels.data() + y * image.width;
    float* dst = rows.data() + y * width;
    for (size_t x = 0; x < width; ++x) {
      const float* w = ax.weights.data() + ax.offset[x];
      const float* s = src + ax.first[x];
      double acc = 0;
      for (size_t k = 0; k < ax.count[x]; ++k) acc += static_cast<double>(w[k]) * s[k];
      dst[x] = static_cast<float>(acc);
    }
  }
  GreyImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(width * height);
  std::vector<double> acc(width);
  for (size_t y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t k = 0; k < ay.count[y]; ++k) {
      const double w = ay.weights[ay.offset[y] + k];
      const float* src = rows.data() + (ay.first[y] + k) * width;
      for (size_t x = 0; x < width; ++x) acc[x] += w * src[x];
    }
    float* dst = out.pixels.data() + y * width;
    for (size_t x = 0; x < width; ++x) dst[x] = static_cast<float>(acc[x]);
  }
  return out;
}

void to_input(const GreyImage& image, const Architecture& arch, const Preprocessing& pre,
              float* out) {
  if (image.width != arch.width || image.height != arch.height)
    throw std::invalid_argument("to_input: image is " + std::to_string(image.width) + "x" +
                                std::to_string(image.height) + " but the model takes " +
                                std::to_string(arch.width) + "x" + std::to_string(arch.height));
  if (image.pixels.size() != image.width * image.height)
    throw std::invalid_argument("to_input: image pixel count does not match its size");
  if (arch.channels == 0) throw std::invalid_argument("to_input: model input has 0 channels");
  if (!(pre.std > 0.0f) || !std::isfinite(pre.std) || !std::isfinite(pre.mean))
    throw std::invalid_argument("to_input: preprocessing std must be positive and mean finite");
  const size_t c = arch.channels;
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const float v = (image.pixels[i] - pre.mean) / pre.std;
    for (size_t k = 0; k < c; ++k) out[i * c + k] = v;
  }
}

CropBox head_box(const GreyImage& image) {
  const size_t w = image.width, h = image.height;
  if (w == 0 || h == 0 || image.pixels.size() != w * h)
    throw std::invalid_argument("head_box: image pixel count does not match its size");
  // Work on a copy whose longer side is at most 64: cheap, and the averaging blurs away
  // noise and thin dark gaps.
  const size_t longest = std::max(w, h), target = std::min<size_t>(longest, 64);
  const size_t sw = std::max<size_t>(1, (w * target + longest / 2) / longest);
  const size_t sh = std::max<size_t>(1, (h * target + longest / 2) / longest);
  const GreyImage small = sw == w && sh == h ? image : resize(image, sw, sh);
  const float brightest = *std::max_element(small.pixels.begin(), small.pixels.end());

  // Bright pixels, grown by one so that a skull and a brain parted by dark fluid join.
  std::vector<uint8_t> bright(sw * sh, 0), grown(sw * sh, 0);
  for (size_t i = 0; i < bright.size(); ++i)
    bright[i] = brightest > 0.0f && small.pixels[i] > 0.1f * brightest;
  for (size_t y = 0; y < sh; ++y)
    for (size_t x = 0; x < sw; ++x)
      for (size_t yy = y ? y - 1 : 0; yy <= std::min(y + 1, sh - 1) && !grown[y * sw + x]; ++yy)
        for (size_t xx = x ? x - 1 : 0; xx <= std::min(x + 1, sw - 1); ++xx)
          if (bright[yy * sw + xx]) {
            grown[y * sw + x] = 1;
            break;
          }

  // The largest 8-connected group (flood fill; grown is cleared as it is visited).
  size_t best_count = 0, left = 0, right = sw - 1, top = 0, bottom = sh - 1;
  std::vector<size_t> stack;
  for (size_t start = 0; start < grown.size(); ++start) {
    if (!grown[start]) continue;
    grown[start] = 0;
    stack.assign(1, start);
    size_t count = 0, x0 = sw, x1 = 0, y0 = sh, y1 = 0;
    while (!stack.empty()) {
      const size_t i = stack.back(), x = i % sw, y = i / sw;
      stack.pop_back();
      ++count;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      for (size_t yy = y ? y - 1 : 0; yy <= std::min(y + 1, sh - 1); ++yy)
        for (size_t xx = x ? x - 1 : 0; xx <= std::min(x + 1, sw - 1); ++xx)
          if (grown[yy * sw + xx]) {
            grown[yy * sw + xx] = 0;
            stack.push_back(yy * sw + xx);
          }
    }
    if (count > best_count) best_count = count, left = x0, right = x1, top = y0, bottom = y1;
  }

  // That group's bounding box in the image's pixels, widened 3% each side and squared.
  double cx = 0.5 * double(w), cy = 0.5 * double(h), side = double(longest);
  if (best_count > 0) {
    const double fx = double(w) / double(sw), fy = double(h) / double(sh);
    cx = 0.5 * fx * double(left + right + 1);
    cy = 0.5 * fy * double(top + bottom + 1);
    side = 1.06 * std::max(fx * double(right + 1 - left), fy * double(bottom + 1 - top));
    side = std::max(side, double(longest) / 3.0);
  }
  CropBox box;
  box.width = box.height = std::max<size_t>(1, static_cast<size_t>(std::lround(side)));
  box.x = std::lround(cx - 0.5 * double(box.width));
  box.y = std::lround(cy - 0.5 * double(box.height));
  return box;
}

GreyImage crop(const GreyImage& image, const CropBox& box) {
  if (image.pixels.size() != image.width * image.height)
    throw std::invalid_argument("crop: image pixel count does not match its size");
  const size_t longest = std::max(image.width, image.height);
  if (box.width == 0 || box.height == 0 || box.width > 2 * longest || box.height > 2 * longest)
    throw std::invalid_argument("crop: box " + std::to_string(box.width) + "x" +
                                std::to_string(box.height) +
                                " is outside 1..2 times the image's longer side");
  GreyImage out;
  out.width = box.width;
  out.height = box.height;
  out.pixels.assign(box.width * box.height, 0.0f);
  const long w = static_cast<long>(image.width), h = static_cast<long>(image.height);
  const long bw = static_cast<long>(box.width), bh = static_cast<long>(box.height);
  const long x0 = std::max(0L, -box.x), x1 = std::min(bw, w - box.x);
  if (x0 >= x1) return out;
  for (long y = std::max(0L, -box.y); y < bh && box.y + y < h; ++y) {
    const float* row = image.pixels.data() + (box.y + y) * w;
    std::copy(row + (box.x + x0), row + (box.x + x1), out.pixels.data() + y * bw + x0);
  }
  return out;
}

GreyImage grey_from_levels(size_t width, size_t height, std::span<const uint8_t> levels) {
  if (width == 0 || height == 0 || levels.size() != width * height)
    throw std::invalid_argument("grey image " + std::to_string(width) + "x" + std::to_string(height) +
                                " needs " + std::to_string(width * height) + " grey levels, got " +
                                std::to_string(levels.size()));
  if (width * height > kMaxImagePixels) fail_size(width, height, kMaxImagePixels);
  GreyImage image{width, height, std::vector<float>(levels.size())};
  // The same scale the decoder applies to an 8-bit sample, so equal levels give equal inputs.
  for (size_t i = 0; i < levels.size(); ++i) image.pixels[i] = levels[i] * (1.0f / 255.0f);
  return image;
}

GreyImage prepare_image(std::span<const uint8_t> bytes, size_t width, size_t height,
                        bool crop_to_head, InputRegion* region) {
  return prepare_grey(decode_grey(bytes), width, height, crop_to_head, region);
}

GreyImage prepare_grey(GreyImage image, size_t width, size_t height, bool crop_to_head,
                       InputRegion* region) {
  InputRegion used{image.width, image.height, CropBox{0, 0, image.width, image.height}};
  if (crop_to_head) {
    used.box = head_box(image);
    image = crop(image, used.box);
  }
  if (region) *region = used;
  // Resize only when the size differs, so an image already at the model's size is exact.
  if (image.width != width || image.height != height) image = resize(image, width, height);
  return image;
}

Tensor preprocess(std::span<const uint8_t> bytes, const Architecture& arch,
                  const Preprocessing& pre, InputRegion* region) {
  return preprocess_grey(decode_grey(bytes), arch, pre, region);
}

Tensor preprocess_grey(GreyImage decoded, const Architecture& arch, const Preprocessing& pre,
                       InputRegion* region) {
  const GreyImage image = prepare_grey(std::move(decoded), arch.width, arch.height, pre.crop_to_head, region);
  Tensor input({1, arch.height, arch.width, arch.channels});
  to_input(image, arch, pre, input.data());
  return input;
}

}  // namespace nl
