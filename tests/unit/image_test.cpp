// Image decoding and preprocessing on images the test makes: stb_image_write for PNG,
// BMP, TGA and JPEG; small hand-written encoders for what it cannot write (16-bit PNG,
// GIF, CMYK JPEG) and for headers that lie about their size.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats/file_io.h"
#include "formats/image.h"

#include "stb_write.h"

namespace {

using Bytes = std::vector<uint8_t>;

// Pixel (x, y) channel c of a test pattern: distinct, lossless-checkable values.
uint8_t pattern(size_t x, size_t y, size_t c) { return static_cast<uint8_t>((x * 29 + y * 53 + c * 71 + 7) % 256); }

Bytes pattern_pixels(size_t w, size_t h, size_t channels) {
  Bytes px(w * h * channels);
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x)
      for (size_t c = 0; c < channels; ++c) px[(y * w + x) * channels + c] = pattern(x, y, c);
  return px;
}

// Expected grey of a pixel with these channel values: luma of RGB, alpha ignored.
double grey_of(const uint8_t* p, size_t channels) {
  if (channels >= 3) return (0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) / 255.0;
  return p[0] / 255.0;
}

void check_grey(const nl::GreyImage& img, size_t w, size_t h, const Bytes& px, size_t channels,
                double tolerance) {
  REQUIRE(img.width == w);
  REQUIRE(img.height == h);
  REQUIRE(img.pixels.size() == w * h);
  double worst = 0;
  for (size_t i = 0; i < w * h; ++i)
    worst = std::max(worst, std::abs(img.pixels[i] - grey_of(&px[i * channels], channels)));
  CHECK(worst <= tolerance);
}

template <typename Writer>
Bytes encode(Writer write) {
  Bytes out;
  REQUIRE(write(&out));
  return out;
}

// --- hand-written encoders -------------------------------------------------------------------

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void put_be16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put_le32(Bytes& b, uint32_t v) {
  for (int s = 0; s < 32; s += 8) b.push_back(static_cast<uint8_t>(v >> s));
}
void put_le16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void png_chunk(Bytes& png, const char* type, const Bytes& data) {
  put_be32(png, static_cast<uint32_t>(data.size()));
  Bytes body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  put_be32(png, crc32(body.data(), body.size()));
}

// Grey PNG with the given bit depth (8 or 16), zlib "stored" blocks (no compression).
Bytes grey_png(uint32_t w, uint32_t h, int depth, const std::vector<uint16_t>& samples) {
  Bytes raw;
  for (uint32_t y = 0; y < h && !samples.empty(); ++y) {
    raw.push_back(0);  // filter: none
    for (uint32_t x = 0; x < w; ++x) {
      uint16_t v = samples[y * w + x];
      if (depth == 16) raw.push_back(static_cast<uint8_t>(v >> 8));
      raw.push_back(static_cast<uint8_t>(v));
    }
  }
  Bytes z{0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(raw.size() - pos, 65535);
    z.push_back(pos + n == raw.size() ? 1 : 0);
    put_le16(z, static_cast<uint32_t>(n));
    put_le16(z, static_cast<uint32_t>(~n & 0xffff));
    z.insert(z.end(), raw.begin() + static_cast<long>(pos), raw.begin() + static_cast<long>(pos + n));
    pos += n;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) a = (a + v) % 65521, b = (b + a) % 65521;
  put_be32(z, b << 16 | a);

  Bytes png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {static_cast<uint8_t>(depth), 0, 0, 0, 0});  // grey, no interlace
  png_chunk(png, "IHDR", ihdr);
  png_chunk(png, "IDAT", z);
  png_chunk(png, "IEND", {});
  return png;
}

// GIF with a 256-entry grey palette (entry i = grey i), so that pixel index = grey value.
// LZW: every pixel a literal 9-bit code, with a clear code often enough that the code
// width never grows.
Bytes grey_gif(uint16_t w, uint16_t h, const Bytes& indices) {
  Bytes gif{'G', 'I', 'F', '8', '9', 'a'};
  put_le16(gif, w);
  put_le16(gif, h);
  gif.insert(gif.end(), {0xf7, 0, 0});  // global colour table of 2^(7+1) entries
  for (int i = 0; i < 256; ++i) gif.insert(gif.end(), {uint8_t(i), uint8_t(i), uint8_t(i)});
  gif.push_back(0x2c);  // image descriptor
  put_le16(gif, 0);
  put_le16(gif, 0);
  put_le16(gif, w);
  put_le16(gif, h);
  gif.push_back(0);
  gif.push_back(8);  // LZW minimum code size
  Bytes codes_bytes;
  uint32_t acc = 0;
  int bits = 0;
  auto emit = [&](uint32_t code) {
    acc |= code << bits;
    bits += 9;
    while (bits >= 8) codes_bytes.push_back(static_cast<uint8_t>(acc)), acc >>= 8, bits -= 8;
  };
  const uint32_t kClear = 256, kEnd = 257;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i % 200 == 0) emit(kClear);
    emit(indices[i]);
  }
  emit(kEnd);
  if (bits > 0) codes_bytes.push_back(static_cast<uint8_t>(acc));
  for (size_t pos = 0; pos < codes_bytes.size(); pos += 255) {
    const size_t n = std::min<size_t>(255, codes_bytes.size() - pos);
    gif.push_back(static_cast<uint8_t>(n));
    gif.insert(gif.end(), codes_bytes.begin() + static_cast<long>(pos),
               codes_bytes.begin() + static_cast<long>(pos + n));
  }
  gif.push_back(0);     // end of image data
  gif.push_back(0x3b);  // trailer
  return gif;
}

// Baseline JPEG of one 8x8 block whose components are each constant (values[c]), with
// an Adobe APP14 marker when adobe_transform >= 0 (0 = CMYK). Unit quantisation, a DC
// Huffman table of the 12 categories (4-bit codes) and an AC table holding only EOB.
Bytes constant_jpeg(const std::vector<uint8_t>& values, int adobe_transform) {
  const size_t n = values.size();
  Bytes j{0xff, 0xd8};
  if (adobe_transform >= 0) {
    j.insert(j.end(), {0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0,
                       static_cast<uint8_t>(adobe_transform)});
  }
  j.insert(j.end(), {0xff, 0xdb, 0, 67, 0});
  j.insert(j.end(), 64, 1);
  j.insert(j.end(), {0xff, 0xc0});
  put_be16(j, static_cast<uint32_t>(8 + 3 * n));
  j.insert(j.end(), {8, 0, 8, 0, 8, static_cast<uint8_t>(n)});
  for (size_t c = 0; c < n; ++c) j.insert(j.end(), {static_cast<uint8_t>(c + 1), 0x11, 0});
  j.insert(j.end(), {0xff, 0xc4, 0, 31, 0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  for (uint8_t s = 0; s < 12; ++s) j.push_back(s);
  j.insert(j.end(), {0xff, 0xc4, 0, 20, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00});
  j.insert(j.end(), {0xff, 0xda});
  put_be16(j, static_cast<uint32_t>(6 + 2 * n));
  j.push_back(static_cast<uint8_t>(n));
  for (size_t c = 0; c < n; ++c) j.insert(j.end(), {static_cast<uint8_t>(c + 1), 0x00});
  j.insert(j.end(), {0, 63, 0});
  uint32_t acc = 0;
  int bits = 0;
  auto put_bits = [&](uint32_t v, int count) {
    for (int i = count - 1; i >= 0; --i) {
      acc = acc << 1 | ((v >> i) & 1);
      if (++bits == 8) {
        j.push_back(static_cast<uint8_t>(acc));
        if (acc == 0xff) j.push_back(0);
        acc = 0, bits = 0;
      }
    }
  };
  for (uint8_t v : values) {
    const int dc = 8 * (int(v) - 128);  // DC coefficient of a constant block (level-shifted)
    int category = 0;
    while ((std::abs(dc) >> category) != 0) ++category;
    put_bits(static_cast<uint32_t>(category), 4);
    const int magnitude = dc >= 0 ? dc : dc + (1 << category) - 1;
    put_bits(static_cast<uint32_t>(magnitude), category);
    put_bits(0, 1);  // EOB
  }
  if (bits > 0) put_bits(0xff, 8 - bits);
  j.insert(j.end(), {0xff, 0xd9});
  return j;
}

// BMP header (24-bit, uncompressed) claiming this size, with almost no pixel data.
Bytes bmp_claiming(uint32_t w, uint32_t h) {
  Bytes b{'B', 'M'};
  put_le32(b, 54 + 16);
  put_le32(b, 0);
  put_le32(b, 54);
  put_le32(b, 40);
  put_le32(b, w);
  put_le32(b, h);
  put_le16(b, 1);
  put_le16(b, 24);
  for (int i = 0; i < 6; ++i) put_le32(b, 0);
  b.insert(b.end(), 16, 0x80);
  return b;
}

void expect_refused(const Bytes& bytes, const std::string& needle, size_t max_pixels = nl::kMaxImagePixels) {
  CAPTURE(needle);
  try {
    nl::decode_grey(bytes, max_pixels);
    FAIL("decoded bad input");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("image: PNG, BMP and TGA with 1-4 channels decode to the exact grey") {
  const size_t w = 7, h = 5;
  for (int channels = 1; channels <= 4; ++channels) {
    CAPTURE(channels);
    const Bytes px = pattern_pixels(w, h, channels);
    const int c = channels, iw = int(w), ih = int(h);
    const Bytes png = encode([&](Bytes* out) {
      return stbi_write_png_to_func(append_to, out, iw, ih, c, px.data(), iw * c);
    });
    check_grey(nl::decode_grey(png), w, h, px, channels, 1e-6);

    // BMP stores grey as RGB and drops a grey image's alpha; luma of (v,v,v) is v.
    const Bytes bmp = encode([&](Bytes* out) { return stbi_write_bmp_to_func(append_to, out, iw, ih, c, px.data()); });
    check_grey(nl::decode_grey(bmp), w, h, px, channels, 1e-6);

    for (int rle = 0; rle <= 1; ++rle) {
      stbi_write_tga_with_rle = rle;
      const Bytes tga = encode([&](Bytes* out) { return stbi_write_tga_to_func(append_to, out, iw, ih, c, px.data()); });
      check_grey(nl::decode_grey(tga), w, h, px, channels, 1e-6);
    }
    stbi_write_tga_with_rle = 1;
  }
}

TEST_CASE("image: JPEG (lossy) decodes close to the source, grey and colour") {
  // A smooth image, which JPEG at quality 100 keeps within a few levels.
  const size_t w = 19, h = 13;
  for (int channels : {1, 3}) {
    CAPTURE(channels);
    Bytes px(w * h * channels);
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < w; ++x)
        for (int c = 0; c < channels; ++c)
          px[(y * w + x) * channels + c] = static_cast<uint8_t>(40 + 6 * x + 5 * y + 20 * c);
    const Bytes jpg = encode([&](Bytes* out) {
      return stbi_write_jpg_to_func(append_to, out, int(w), int(h), channels, px.data(), 100);
    });
    check_grey(nl::decode_grey(jpg), w, h, px, channels, 4.0 / 255);
  }
}

TEST_CASE("image: 16-bit PNG keeps its precision") {
  const uint32_t w = 5, h = 3;
  std::vector<uint16_t> samples;
  for (uint32_t i = 0; i < w * h; ++i) samples.push_back(static_cast<uint16_t>(i * 4099 + 1));
  const nl::GreyImage img = nl::decode_grey(grey_png(w, h, 16, samples));
  REQUIRE(img.width == w);
  REQUIRE(img.height == h);
  for (size_t i = 0; i < samples.size(); ++i) CHECK(img.pixels[i] == doctest::Approx(samples[i] / 65535.0).epsilon(1e-6));
  // The same encoder at 8 bits, to show the hand-made PNG is read as written.
  std::vector<uint16_t> small{0, 17, 255, 128, 3, 99};
  const nl::GreyImage img8 = nl::decode_grey(grey_png(3, 2, 8, small));
  for (size_t i = 0; i < small.size(); ++i) CHECK(img8.pixels[i] == doctest::Approx(small[i] / 255.0));
}

TEST_CASE("image: GIF decodes through its palette") {
  const uint16_t w = 9, h = 4;
  Bytes idx(w * h);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint8_t>((i * 37 + 5) % 256);
  const nl::GreyImage img = nl::decode_grey(grey_gif(w, h, idx));
  check_grey(img, w, h, idx, 1, 1e-6);
}

TEST_CASE("image: JPEG with 1, 3 and 4 (CMYK) components") {
  // stb_image converts Adobe CMYK to RGB (R = C*K/255, ...), so such files decode.
  const nl::GreyImage grey = nl::decode_grey(constant_jpeg({77}, -1));
  REQUIRE(grey.width == 8);
  for (float v : grey.pixels) CHECK(v == doctest::Approx(77 / 255.0).epsilon(1.5 / 255));

  const nl::GreyImage rgb = nl::decode_grey(constant_jpeg({200, 100, 50}, 0));  // Adobe RGB
  const uint8_t rgb_px[3] = {200, 100, 50};
  for (float v : rgb.pixels) CHECK(std::abs(v - grey_of(rgb_px, 3)) < 1.5 / 255);

  const nl::GreyImage cmyk = nl::decode_grey(constant_jpeg({200, 100, 50, 128}, 0));
  const uint8_t cmyk_as_rgb[3] = {100, 50, 25};  // each times 128/255
  REQUIRE(cmyk.pixels.size() == 64);
  for (float v : cmyk.pixels) CHECK(std::abs(v - grey_of(cmyk_as_rgb, 3)) < 1.5 / 255);
}

TEST_CASE("image: bad input is refused with a clear message") {
  expect_refused({}, "empty file");
  const std::string text = "patient notes: not an image at all\n";
  expect_refused(Bytes(text.begin(), text.end()), "not an image (unrecognised format");
  expect_refused(Bytes(1, 0), "not an image");

  // A 100-byte-ish file can claim 60000x60000: refused from the header, before decoding.
  std::vector<uint16_t> none;
  expect_refused(grey_png(60000, 60000, 8, none), "image 60000x60000 exceeds the 50000000-pixel limit");
  expect_refused(bmp_claiming(60000, 60000), "image 60000x60000 exceeds the 50000000-pixel limit");
  CHECK(bmp_claiming(60000, 60000).size() < 100);

  const size_t w = 7, h = 5;
  const Bytes px = pattern_pixels(w, h, 3);
  const Bytes png = encode([&](Bytes* out) { return stbi_write_png_to_func(append_to, out, 7, 5, 3, px.data(), 21); });
  expect_refused(png, "image 7x5 exceeds the 34-pixel limit", 34);
  CHECK_NOTHROW(nl::decode_grey(png, 35));

  const Bytes jpg = encode([&](Bytes* out) { return stbi_write_jpg_to_func(append_to, out, 7, 5, 3, px.data(), 90); });
  for (size_t n : {size_t{3}, size_t{40}, jpg.size() / 2, jpg.size() - 1}) {
    CAPTURE(n);
    expect_refused(Bytes(jpg.begin(), jpg.begin() + static_cast<long>(n)), "corrupt or truncated JPEG: ");
  }
  // stb_image 2.30 would decode these as if the missing bytes were zeros; the segment walk
  // says what is missing. Cut before the first scan, and inside the scan:
  const uint8_t sos[2] = {0xFF, 0xDA};
  const auto scan = std::search(jpg.begin(), jpg.end(), std::begin(sos), std::end(sos));
  REQUIRE(scan != jpg.end());
  expect_refused(Bytes(jpg.begin(), scan), "corrupt or truncated JPEG: no image data (no start-of-scan marker)");
  expect_refused(Bytes(jpg.begin(), jpg.end() - 2), "corrupt or truncated JPEG: no end-of-image marker after the last scan");
  const uint8_t dqt[2] = {0xFF, 0xDB};  // padding between segments is skipped, as stb does
  Bytes padded = jpg;
  padded.insert(std::search(padded.begin(), padded.end(), std::begin(dqt), std::end(dqt)), {0x00, 0x00, 0x00});
  CHECK_NOTHROW(nl::decode_grey(padded));
  Bytes trailing = jpg;  // bytes after the end-of-image marker are ignored, as by viewers
  trailing.insert(trailing.end(), {0x00, 0x12, 0xFF});
  CHECK_NOTHROW(nl::decode_grey(trailing));
  // What fuzz_image found in Debian 12's stb_image 2.27: a Huffman table whose codes run past
  // its 256 symbols made the decoder read outside the table.
  expect_refused(nl::read_file_bytes("tests/fuzz/corpus/fuzz_image/jpeg-huffman-out-of-range"), "corrupt or truncated JPEG: ");

  for (size_t n : {size_t{6}, size_t{20}, png.size() / 2, png.size() - 13}) {
    CAPTURE(n);
    expect_refused(Bytes(png.begin(), png.begin() + static_cast<long>(n)), "corrupt or truncated PNG: ");
  }
  // BMP and uncompressed TGA have no end marker; stb would fill missing pixels with zeros.
  const Bytes bmp = encode([&](Bytes* out) { return stbi_write_bmp_to_func(append_to, out, 7, 5, 3, px.data()); });
  stbi_write_tga_with_rle = 0;
  const Bytes tga = encode([&](Bytes* out) { return stbi_write_tga_to_func(append_to, out, 7, 5, 3, px.data()); });
  stbi_write_tga_with_rle = 1;
  for (size_t cut : {size_t{1}, size_t{30}}) {
    CAPTURE(cut);
    expect_refused(Bytes(bmp.begin(), bmp.end() - static_cast<long>(cut)), "corrupt or truncated BMP: pixel data is");
    expect_refused(Bytes(tga.begin(), tga.end() - static_cast<long>(cut)), "corrupt or truncated TGA: pixel data is");
  }
  // Every truncation of every format fails cleanly (or, for formats without an end
  // marker, decodes what is there); never anything but std::invalid_argument.
  const Bytes gif = grey_gif(5, 5, Bytes(25, 9));
  for (const Bytes* file : {&jpg, &png, &gif, &bmp, &tga}) {
    for (size_t n = 1; n < file->size(); ++n) {
      try {
        nl::decode_grey(Bytes(file->begin(), file->begin() + static_cast<long>(n)));
      } catch (const std::invalid_argument&) {
      }
    }
  }
}

// --- resizing ------------------------------------------------------------------------------

namespace {

nl::GreyImage make_image(size_t w, size_t h, const std::function<float(size_t, size_t)>& f) {
  nl::GreyImage img;
  img.width = w;
  img.height = h;
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x) img.pixels.push_back(f(x, y));
  return img;
}

// Reference weights for one axis, written as directly as possible: area coverage when
// shrinking, linear interpolation between pixel centres (clamped) when enlarging.
double ref_weight(size_t src, size_t dst, size_t out, size_t in) {
  const double s = double(src) / double(dst);
  if (dst < src) {
    const double lo = out * s, hi = (out + 1) * s;
    const double overlap = std::max(0.0, std::min(hi, in + 1.0) - std::max(lo, double(in)));
    return overlap / s;
  }
  const double x = std::clamp((out + 0.5) * s - 0.5, 0.0, double(src - 1));
  return std::max(0.0, 1.0 - std::abs(x - double(in)));
}

double ref_pixel(const nl::GreyImage& img, size_t w, size_t h, size_t ox, size_t oy) {
  double sum = 0;
  for (size_t y = 0; y < img.height; ++y)
    for (size_t x = 0; x < img.width; ++x)
      sum += ref_weight(img.width, w, ox, x) * ref_weight(img.height, h, oy, y) * img.pixels[y * img.width + x];
  return sum;
}

}  // namespace

TEST_CASE("resize: constant stays constant, shrinking, enlarging and mixed") {
  const nl::GreyImage c = make_image(17, 13, [](size_t, size_t) { return 0.6180339f; });
  for (const auto& size : {std::pair<size_t, size_t>{5, 4}, {1, 1}, {17, 13}, {40, 29}, {3, 31}, {16, 12}}) {
    const size_t w = size.first, h = size.second;  // (clang 14 cannot capture structured bindings)
    CAPTURE(w);
    CAPTURE(h);
    const nl::GreyImage r = nl::resize(c, w, h);
    REQUIRE(r.pixels.size() == w * h);
    for (float v : r.pixels) CHECK(std::abs(v - 0.6180339f) < 1e-6);
  }
}

TEST_CASE("resize: area average of 4x4 to 2x2 and fractional coverage") {
  const nl::GreyImage img = make_image(4, 4, [](size_t x, size_t y) { return float(y * 4 + x); });
  const nl::GreyImage r = nl::resize(img, 2, 2);
  CHECK(r.pixels[0] == doctest::Approx((0 + 1 + 4 + 5) / 4.0));
  CHECK(r.pixels[1] == doctest::Approx((2 + 3 + 6 + 7) / 4.0));
  CHECK(r.pixels[2] == doctest::Approx((8 + 9 + 12 + 13) / 4.0));
  CHECK(r.pixels[3] == doctest::Approx((10 + 11 + 14 + 15) / 4.0));

  // 3 -> 2: each output covers 1.5 source pixels.
  const nl::GreyImage row = make_image(3, 1, [](size_t x, size_t) { return float(x * x + 1); });  // 1 2 5
  const nl::GreyImage r2 = nl::resize(row, 2, 1);
  CHECK(r2.pixels[0] == doctest::Approx((1 * 1.0 + 2 * 0.5) / 1.5));
  CHECK(r2.pixels[1] == doctest::Approx((2 * 0.5 + 5 * 1.0) / 1.5));

  // 2 -> 4: bilinear between centres, clamped at the edges.
  const nl::GreyImage pair = make_image(2, 1, [](size_t x, size_t) { return float(x); });
  const nl::GreyImage r3 = nl::resize(pair, 4, 1);
  CHECK(r3.pixels == std::vector<float>{0.0f, 0.25f, 0.75f, 1.0f});

  // Same size is the identity, bit for bit.
  const nl::GreyImage same = nl::resize(img, 4, 4);
  CHECK(same.pixels == img.pixels);
}

TEST_CASE("resize: matches the 2-D reference on odd sizes; shrinking keeps the mean") {
  uint32_t state = 12345;
  const nl::GreyImage img = make_image(23, 17, [&](size_t, size_t) {
    state = state * 1664525u + 1013904223u;
    return float(state >> 8) / float(1 << 24);
  });
  for (const auto& size : {std::pair<size_t, size_t>{7, 5}, {22, 16}, {9, 30}, {50, 41}, {1, 17}, {23, 2}}) {
    const size_t w = size.first, h = size.second;
    CAPTURE(w);
    CAPTURE(h);
    const nl::GreyImage r = nl::resize(img, w, h);
    double worst = 0;
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < w; ++x) {
        const double ref = ref_pixel(img, w, h, x, y);
        worst = std::max(worst, std::abs(r.pixels[y * w + x] - ref) / std::max(1.0, std::abs(ref)));
      }
    CHECK(worst < 1e-5);
  }
  // Integer-ratio shrinking averages exactly: the mean is preserved.
  const nl::GreyImage big = make_image(24, 18, [](size_t x, size_t y) { return float((x * 7 + y * 3) % 11); });
  const nl::GreyImage small = nl::resize(big, 8, 6);
  double m1 = 0, m2 = 0;
  for (float v : big.pixels) m1 += v;
  for (float v : small.pixels) m2 += v;
  CHECK(m1 / big.pixels.size() == doctest::Approx(m2 / small.pixels.size()).epsilon(1e-6));
}

TEST_CASE("resize: refuses empty source and target") {
  const nl::GreyImage img = make_image(3, 3, [](size_t, size_t) { return 0.5f; });
  CHECK_THROWS_WITH_AS(nl::resize(img, 0, 3), doctest::Contains("target size 0x3"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::resize(img, 100000, 100000), doctest::Contains("pixel limit"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::resize(nl::GreyImage{}, 3, 3), doctest::Contains("source image is empty"),
                       std::invalid_argument);
}

// --- to_input / preprocess -------------------------------------------------------------------

TEST_CASE("preprocess: decode, resize, normalize and replicate channels") {
  nl::Architecture arch;
  arch.height = 4;
  arch.width = 6;
  arch.channels = 3;
  const nl::Preprocessing pre{0.25f, 0.5f};

  const size_t w = 13, h = 9;
  const Bytes px = pattern_pixels(w, h, 1);
  const Bytes png = encode([&](Bytes* out) { return stbi_write_png_to_func(append_to, out, 13, 9, 1, px.data(), 13); });
  const nl::Tensor t = nl::preprocess(png, arch, pre);
  REQUIRE(t.shape() == nl::Shape{1, 4, 6, 3});

  const nl::GreyImage src = make_image(w, h, [&](size_t x, size_t y) { return px[y * w + x] / 255.0f; });
  for (size_t y = 0; y < 4; ++y)
    for (size_t x = 0; x < 6; ++x) {
      const double expected = (ref_pixel(src, 6, 4, x, y) - 0.25) / 0.5;
      for (size_t c = 0; c < 3; ++c) CHECK(t[(y * 6 + x) * 3 + c] == doctest::Approx(expected).epsilon(1e-5));
    }

  nl::GreyImage wrong = make_image(5, 4, [](size_t, size_t) { return 0.0f; });
  std::vector<float> out(4 * 6 * 3);
  CHECK_THROWS_WITH_AS(nl::to_input(wrong, arch, pre, out.data()), doctest::Contains("image is 5x4 but the model takes 6x4"),
                       std::invalid_argument);
  CHECK_THROWS_AS(nl::preprocess(Bytes{1, 2, 3}, arch, pre), std::invalid_argument);
}

// --- cropping to the head --------------------------------------------------------------------

namespace {

// A scene drawn at any resolution from coordinates in [0,1]: a bright "head" (an ellipse
// with a dark ventricle-like hole and a dimmer ring of fluid between skull and brain), and,
// when asked, things beside it that are not the head: a speck, a ruler line, a block of
// letter-like marks and faint noise below a tenth of the brightest value.
float head_scene(double u, double v, bool clutter) {
  const double cx = 0.45, cy = 0.55, rx = 0.25, ry = 0.3;
  const double d = std::hypot((u - cx) / rx, (v - cy) / ry);
  float value = 0.0f;
  if (d < 0.86) value = 0.6f;                 // brain
  else if (d < 0.9) value = 0.02f;            // dark fluid: must not split skull from brain
  else if (d < 1.0) value = 0.9f;             // skull
  if (d < 0.2) value = 0.05f;                 // dark hole inside
  if (clutter) {
    if (std::abs(u - 0.92) < 0.006 && std::abs(v - 0.1) < 0.006) value = 1.0f;     // speck
    if (std::abs(v - 0.96) < 0.004 && u > 0.05 && u < 0.6) value = 0.8f;           // ruler
    if (u > 0.8 && u < 0.95 && v > 0.8 && v < 0.84 && int(u * 200) % 3 == 0) value = 0.9f;  // letters
    if (value == 0.0f) value = 0.05f * float((int(u * 977) * 31 + int(v * 733) * 17) % 100) / 100.0f;
  }
  return value;
}

nl::GreyImage draw(size_t w, size_t h, bool clutter) {
  return make_image(w, h, [&](size_t x, size_t y) {
    return head_scene((x + 0.5) / double(w), (y + 0.5) / double(h), clutter);
  });
}

}  // namespace

TEST_CASE("head_box: a square a little larger than the head, about its centre") {
  for (const auto& size : {std::pair<size_t, size_t>{200, 200}, {257, 190}, {61, 47}, {640, 512}}) {
    const size_t w = size.first, h = size.second;  // not a structured binding: clang 14 cannot capture those
    CAPTURE(w);
    CAPTURE(h);
    const nl::CropBox box = nl::head_box(draw(w, h, false));
    CHECK(box.width == box.height);
    // The head's extent in pixels (the skull's outer edge).
    const double left = (0.45 - 0.25) * w, right = (0.45 + 0.25) * w;
    const double top = (0.55 - 0.3) * h, bottom = (0.55 + 0.3) * h;
    // Found on a copy at most 64 pixels a side, grown by one of its pixels: the box may
    // exceed the head's by about two such pixels each side, plus the 3% margin.
    const double cell = std::max(w, h) / 64.0 > 1.0 ? std::max(w, h) / 64.0 : 1.0;
    const double longest_side = std::max(right - left, bottom - top);
    CHECK(double(box.width) >= 1.06 * longest_side - 1.0);
    CHECK(double(box.width) <= 1.06 * (longest_side + 4.0 * cell) + 1.0);
    CHECK(double(box.x) <= left);
    CHECK(double(box.y) <= top);
    CHECK(double(box.x + long(box.width)) >= right);
    CHECK(double(box.y + long(box.height)) >= bottom);
    CHECK(std::abs(box.x + box.width / 2.0 - (left + right) / 2) <= cell + 1.0);
    CHECK(std::abs(box.y + box.height / 2.0 - (top + bottom) / 2) <= cell + 1.0);
  }
}

TEST_CASE("head_box: specks, rulers, letters and faint noise beside the head do not move it") {
  for (const auto& size : {std::pair<size_t, size_t>{200, 200}, {257, 190}, {512, 512}}) {
    const size_t w = size.first, h = size.second;
    CAPTURE(w);
    const nl::CropBox plain = nl::head_box(draw(w, h, false));
    const nl::CropBox cluttered = nl::head_box(draw(w, h, true));
    CHECK(cluttered.x == plain.x);
    CHECK(cluttered.y == plain.y);
    CHECK(cluttered.width == plain.width);
  }
}

TEST_CASE("head_box: blank images, tiny heads and heads at the border") {
  // Nothing bright: the square around the whole image.
  const nl::CropBox blank = nl::head_box(make_image(90, 60, [](size_t, size_t) { return 0.0f; }));
  CHECK(blank.width == 90);
  CHECK(blank.height == 90);
  CHECK(blank.x == 0);
  CHECK(blank.y == -15);
  // A 6x6 spot in a 300x300 image: at least a third of the image, centred on the spot.
  const nl::CropBox tiny = nl::head_box(make_image(300, 300, [](size_t x, size_t y) {
    return x >= 200 && x < 206 && y >= 50 && y < 56 ? 1.0f : 0.0f;
  }));
  CHECK(tiny.width == 100);
  const double cell = 300 / 64.0;  // the spot is found on a copy 64 pixels a side
  CHECK(std::abs(tiny.x + 50 - 203.0) <= cell);
  CHECK(std::abs(tiny.y + 50 - 53.0) <= cell);
  // A head cut by the left edge (60 wide in view, 80 tall): the box reaches past the edge
  // instead of squeezing the head.
  const nl::GreyImage cut = make_image(120, 100, [](size_t x, size_t y) {
    return std::hypot((double(x) - 10) / 50, (double(y) - 50) / 40) < 1.0 ? 0.7f : 0.0f;
  });
  const nl::CropBox box = nl::head_box(cut);
  CHECK(box.x < 0);
  CHECK(box.x + long(box.width) >= 60);
  CHECK(box.width >= 85);
}

TEST_CASE("crop: the box's pixels, black outside the image; bad boxes refused") {
  const nl::GreyImage img = make_image(7, 5, [](size_t x, size_t y) { return float(y * 7 + x + 1); });
  for (const nl::CropBox& b : {nl::CropBox{-2, -3, 6, 9}, nl::CropBox{3, 1, 8, 2}, nl::CropBox{0, 0, 7, 5},
                               nl::CropBox{9, 0, 2, 2}, nl::CropBox{-4, 6, 3, 3}}) {
    CAPTURE(b.x);
    CAPTURE(b.y);
    const nl::GreyImage c = nl::crop(img, b);
    REQUIRE(c.width == b.width);
    REQUIRE(c.height == b.height);
    for (size_t y = 0; y < b.height; ++y)
      for (size_t x = 0; x < b.width; ++x) {
        const long sx = b.x + long(x), sy = b.y + long(y);
        const float expected = sx >= 0 && sx < 7 && sy >= 0 && sy < 5 ? float(sy * 7 + sx + 1) : 0.0f;
        CHECK(c.pixels[y * b.width + x] == expected);
      }
  }
  CHECK_THROWS_WITH_AS(nl::crop(img, nl::CropBox{0, 0, 0, 3}), doctest::Contains("box 0x3"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::crop(img, nl::CropBox{0, 0, 15, 15}),
                       doctest::Contains("outside 1..2 times the image's longer side"), std::invalid_argument);
}

TEST_CASE("preprocess with crop_to_head: decode, crop to head_box, resize, normalize") {
  nl::Architecture arch;
  arch.height = arch.width = 24;
  arch.channels = 1;
  const nl::GreyImage scene = draw(150, 110, true);
  Bytes px;
  for (float v : scene.pixels) px.push_back(static_cast<uint8_t>(std::lround(v * 255.0f)));
  const Bytes png = encode([&](Bytes* out) { return stbi_write_png_to_func(append_to, out, 150, 110, 1, px.data(), 150); });
  const nl::GreyImage decoded = nl::decode_grey(png);

  nl::InputRegion used;
  const nl::Tensor t = nl::preprocess(png, arch, nl::Preprocessing{0.5f, 0.25f, true}, &used);
  const nl::CropBox expected_box = nl::head_box(decoded);
  CHECK(used.image_width == 150);
  CHECK(used.image_height == 110);
  CHECK(used.box.x == expected_box.x);
  CHECK(used.box.y == expected_box.y);
  CHECK(used.box.width == expected_box.width);
  CHECK(used.box.width < 110);  // the clutter did not make it the whole image
  const nl::GreyImage cropped = nl::crop(decoded, expected_box);
  for (size_t y = 0; y < 24; ++y)
    for (size_t x = 0; x < 24; ++x)
      CHECK(t[y * 24 + x] == doctest::Approx((ref_pixel(cropped, 24, 24, x, y) - 0.5) / 0.25).epsilon(1e-5));

  // Without cropping the region is the whole image.
  nl::preprocess(png, arch, nl::Preprocessing{0.5f, 0.25f, false}, &used);
  CHECK(used.box.x == 0);
  CHECK(used.box.y == 0);
  CHECK(used.box.width == 150);
  CHECK(used.box.height == 110);
}
