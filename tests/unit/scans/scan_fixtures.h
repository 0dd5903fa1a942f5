// Helpers of the scan tests (tests/unit/scans): where the fixtures are, reading files and the
// two original pictures, and comparing 8-bit images. The fixtures are made at test time by
// tests/scans/make-fixtures (ctest's `scan_fixtures` test, into build/<preset>/scan-fixtures);
// a test that needs them FAILS, saying how to make them, when they are missing.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "formats/scans/scan.h"

#ifndef NEUROLENS_SCAN_FIXTURES_DIR
#define NEUROLENS_SCAN_FIXTURES_DIR ""
#endif

namespace scantest {

namespace fs = std::filesystem;

// An environment variable, "" when unset (under node for the wasm build too: scan_fixtures.cpp).
std::string env(const char* name);

// The fixture folder: $NEUROLENS_SCAN_FIXTURES, else build/<preset>/scan-fixtures.
inline std::string fixtures() {
  std::string dir = env("NEUROLENS_SCAN_FIXTURES");
  if (dir.empty()) dir = NEUROLENS_SCAN_FIXTURES_DIR;
  if (dir.empty() || !fs::exists(fs::path(dir) / "COMPLETE"))
    FAIL("scan fixtures are missing in '" << dir << "': make them with `tests/scans/make-fixtures "
                                           << (dir.empty() ? "DIR" : dir)
                                           << "` (ctest runs it first, as test scan_fixtures), or point "
                                              "NEUROLENS_SCAN_FIXTURES at a folder it made");
  return dir;
}

inline std::string fixture(const std::string& relative) { return fixtures() + "/" + relative; }

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A binary PGM (P5) or PPM (P6) with maxval 255, as make-fixtures writes them.
struct Picture {
  size_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // row-major, channels interleaved
  int at(size_t row, size_t col, size_t ch = 0) const {
    return pixels[(row * width + col) * channels + ch];
  }
};

inline Picture read_pnm(const std::string& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  std::string head(bytes.begin(), bytes.begin() + static_cast<long>(std::min<size_t>(bytes.size(), 64)));
  std::istringstream ss(head);
  std::string magic;
  int maxval = 0;
  Picture p;
  ss >> magic >> p.width >> p.height >> maxval;
  REQUIRE_MESSAGE(((magic == "P5" || magic == "P6") && maxval == 255), path << " is not an 8-bit PGM/PPM");
  p.channels = magic == "P5" ? 1 : 3;
  const size_t start = static_cast<size_t>(ss.tellg()) + 1;  // one whitespace after maxval
  const size_t n = p.width * p.height * p.channels;
  REQUIRE(bytes.size() >= start + n);
  p.pixels.assign(bytes.begin() + static_cast<long>(start), bytes.begin() + static_cast<long>(start + n));
  return p;
}

// The head-like grey picture every grey fixture derives from (173 x 151).
inline const Picture& grey() {
  static const Picture p = read_pnm(fixture("grey.pgm"));
  return p;
}
// The colour picture of the colour fixtures (172 x 151, RGB).
inline const Picture& colour() {
  static const Picture p = read_pnm(fixture("colour.ppm"));
  return p;
}

inline nl::scans::Volume dicom(const std::string& relative) {
  return nl::scans::read_dicom(read_bytes(fixture(relative)), relative);
}
inline nl::scans::Volume nifti(const std::string& relative) {
  return nl::scans::read_nifti(read_bytes(fixture(relative)), relative);
}

// LINEAR, center 128, width 256: maps 0..255 onto itself.
inline nl::scans::Window identity8() { return {128, 256, nl::scans::WindowFunction::linear}; }

// How far two 8-bit images are apart.
struct Difference {
  int max = 0;
  double mean = 0;
  size_t over1 = 0;  // pixels more than one grey level apart
};
inline Difference difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  Difference d;
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int e = std::abs(int(a[i]) - int(b[i]));
    d.max = std::max(d.max, e);
    sum += e;
    if (e > 1) ++d.over1;
  }
  d.mean = a.empty() ? 0 : sum / static_cast<double>(a.size());
  return d;
}

// Expected images, computed here from the pictures with plain loops.
template <typename F>
std::vector<uint8_t> grey_map(F f) {
  const Picture& g = grey();
  std::vector<uint8_t> out(g.width * g.height);
  for (size_t r = 0; r < g.height; ++r)
    for (size_t c = 0; c < g.width; ++c) out[r * g.width + c] = static_cast<uint8_t>(f(g.at(r, c)));
  return out;
}
inline std::vector<uint8_t> grey_pixels() {
  return grey_map([](int v) { return v; });
}

// Colour to grey as stb_image converts a colour PNG/JPEG (the model's other input path):
// (77 R + 150 G + 29 B) >> 8.
inline std::vector<uint8_t> colour_as_grey() {
  const Picture& p = colour();
  std::vector<uint8_t> out(p.width * p.height);
  for (size_t r = 0; r < p.height; ++r)
    for (size_t c = 0; c < p.width; ++c)
      out[r * p.width + c] = static_cast<uint8_t>((77 * p.at(r, c, 0) + 150 * p.at(r, c, 1) + 29 * p.at(r, c, 2)) >> 8);
  return out;
}

// True when `haystack` mentions `needle` (for messages that must name a problem).
inline bool mentions(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The message a reader throws, "" when it does not throw.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const nl::scans::ScanError& e) {
    return e.what();
  }
  return "";
}

}  // namespace scantest
