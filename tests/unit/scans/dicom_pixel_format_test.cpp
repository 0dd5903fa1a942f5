// DICOM pixel formats: 12/16-bit signed and unsigned values, bits above BitsStored, MONOCHROME1,
// Rescale Slope/Intercept, multi-frame objects, colour (RGB planar 0/1, YBR_FULL, YBR_FULL_422,
// colour through the codecs) and a data set without preamble. Expected values are computed here
// from grey.pgm / colour.ppm with the formulas make-fixtures used to write the files.
#include <doctest/doctest.h>

#include <limits>

#include "scan_fixtures.h"

using namespace scantest;
using nl::scans::Volume;

namespace {

// Every voxel of slice z equals f(grey value) exactly; returns how many do not.
template <typename F>
size_t voxels_off(const Volume& v, size_t z, F f) {
  const std::vector<uint8_t> g = grey_pixels();
  REQUIRE(v.width() * v.height() == g.size());
  size_t off = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (v.voxels[z * g.size() + i] != static_cast<float>(f(double(g[i])))) ++off;
  return off;
}

}  // namespace

TEST_CASE("DICOM 12/16-bit, signed and unsigned: exact values, and their window gives grey.pgm within one level") {
  struct Case {
    const char* file;
    const char* data_type;
    double scale, offset;
  };
  for (const Case& c : {Case{"dicom/bits/grey12u.dcm", "uint16 (12 bits stored)", 16, 7},
                        Case{"dicom/bits/grey12u_highbits.dcm", "uint16 (12 bits stored)", 16, 7},
                        Case{"dicom/bits/grey12s.dcm", "int16 (12 bits stored)", 16, -2048},
                        Case{"dicom/bits/grey16u.dcm", "uint16 (16 bits stored)", 257, 0},
                        Case{"dicom/bits/grey16s.dcm", "int16 (16 bits stored)", 256, -32668}}) {
    CAPTURE(std::string(c.file));
    const Volume v = dicom(c.file);
    CHECK(v.info.data_type == c.data_type);
    CHECK(voxels_off(v, 0, [&](double g) { return c.scale * g + c.offset; }) == 0);
    REQUIRE(v.info.file_window.has_value());
    const Difference d = difference(v.slice_grey8(0, v.default_window()), grey_pixels());
    CHECK(d.max <= 1);
    // Same as the 8-bit file through its own identity window, within one level.
    const Volume eight = dicom("dicom/base8.dcm");
    CHECK(difference(v.slice_grey8(0, v.default_window()), eight.slice_grey8(0, eight.default_window())).max <= 1);
  }
}

TEST_CASE("DICOM MONOCHROME1 is inverted after the window: stored 255 - g shows as g") {
  const Volume v = dicom("dicom/mono1.dcm");
  CHECK(v.info.photometric == "MONOCHROME1");
  CHECK(v.info.inverted);
  CHECK(voxels_off(v, 0, [](double g) { return 255 - g; }) == 0);  // values are not inverted
  CHECK(difference(v.slice_grey8(0, v.default_window()), grey_pixels()).max == 0);
}

TEST_CASE("DICOM Rescale Slope/Intercept give real-world values, with a note") {
  SUBCASE("MR: stored 4 g + 1000, slope 0.25, intercept -250") {
    const Volume v = dicom("dicom/rescale_mr.dcm");
    CHECK(voxels_off(v, 0, [](double g) { return g; }) == 0);
    CHECK(difference(v.slice_grey8(0, v.default_window()), grey_pixels()).max == 0);
    REQUIRE(!v.info.notes.empty());
    CHECK(mentions(v.info.notes[0], "rescaled"));
    CHECK(v.info.minimum == 0);
    CHECK(v.info.maximum == 255);
  }
  SUBCASE("CT: stored g + 1024 (signed), intercept -1024") {
    const Volume v = dicom("dicom/rescale_ct.dcm");
    CHECK(v.info.modality == "CT");
    CHECK(voxels_off(v, 0, [](double g) { return g; }) == 0);
    CHECK(difference(v.slice_grey8(0, v.default_window()), grey_pixels()).max == 0);
  }
}

TEST_CASE("DICOM Rescale Slope 1e300: real-world values beyond float's range are clamped, not undefined") {
  const Volume v = dicom("dicom/rescale_huge.dcm");
  const float top = std::numeric_limits<float>::max();
  CHECK(voxels_off(v, 0, [top](double g) { return g == 0 ? 0.0 : double(top); }) == 0);
  CHECK(v.info.maximum == top);
}

TEST_CASE("DICOM multi-frame objects give one slice per frame (native, RLE, JPEG-LS)") {
  for (const std::string file : {"dicom/multiframe.dcm", "dicom/multiframe_rle.dcm", "dicom/multiframe_jpegls.dcm"}) {
    CAPTURE(file);
    const Volume v = dicom(file);
    REQUIRE(v.slices() == 3);
    CHECK(v.voxels.size() == 3 * grey().width * grey().height);
    CHECK(difference(v.slice_grey8(0, v.default_window()), grey_pixels()).max == 0);
    CHECK(difference(v.slice_grey8(1, v.default_window()), grey_map([](int g) { return 255 - g; })).max == 0);
    CHECK(difference(v.slice_grey8(2, v.default_window()), grey_map([](int g) { return g / 2; })).max == 0);
    CHECK_THROWS_AS(v.slice_grey8(3, v.default_window()), nl::scans::ScanError);
  }
}

TEST_CASE("DICOM colour becomes grey as stb_image greys the same RGB (77 R + 150 G + 29 B) >> 8") {
  const std::vector<uint8_t> want = colour_as_grey();
  SUBCASE("lossless RGB: native planar 0 and 1, RLE, JPEG lossless, JPEG-LS, JPEG 2000: identical") {
    for (const std::string file : {"dicom/colour/rgb_planar0.dcm", "dicom/colour/rgb_planar1.dcm", "dicom/colour/rgb_rle.dcm",
                             "dicom/colour/rgb_jpeg_lossless_sv1.dcm", "dicom/colour/rgb_jpegls.dcm",
                             "dicom/colour/rgb_j2k.dcm"}) {
      CAPTURE(file);
      const Volume v = dicom(file);
      REQUIRE(v.width() == colour().width);
      REQUIRE(v.height() == colour().height);
      CHECK(mentions(v.info.data_type, "colour"));
      const Difference d = difference(v.slice_grey8(0, identity8()), want);
      CHECK(d.max == 0);
    }
  }
  SUBCASE("YBR_FULL and YBR_FULL_422 (native): luma, within one level of the RGB grey") {
    // Luma (0.299 R + 0.587 G + 0.114 B, rounded) and stb's integer weights differ by rounding.
    for (const std::string file : {"dicom/colour/ybr_full.dcm", "dicom/colour/ybr_full_422.dcm"}) {
      CAPTURE(file);
      const Volume v = dicom(file);
      REQUIRE(v.width() == colour().width);
      const Difference d = difference(v.slice_grey8(0, identity8()), want);
      CHECK(d.max <= 1);
    }
  }
  SUBCASE("JPEG baseline in YBR_FULL_422 (lossy, quality 95): within 16 levels, 1.5 on average") {
    const Volume v = dicom("dicom/colour/rgb_jpeg_baseline.dcm");
    CHECK(v.info.photometric == "YBR_FULL_422");
    const Difference d = difference(v.slice_grey8(0, identity8()), want);
    CHECK(d.max <= 16);
    CHECK(d.mean <= 1.5);
  }
}

TEST_CASE("DICOM data set without preamble or meta header (implicit VR LE) reads like the Part-10 file") {
  const std::vector<uint8_t> bytes = read_bytes(fixture("dicom/raw_dataset.dcm"));
  REQUIRE(bytes.size() > 132);
  CHECK(std::string(bytes.begin() + 128, bytes.begin() + 132) != "DICM");
  CHECK(nl::scans::sniff(bytes, "raw_dataset.dcm") == nl::scans::Kind::dicom);
  const Volume v = nl::scans::read_dicom(bytes, "raw_dataset.dcm");
  CHECK(v.info.transfer_syntax.rfind("1.2.840.10008.1.2 ", 0) == 0);
  CHECK(difference(v.slice_grey8(0, v.default_window()), grey_pixels()).max == 0);
}
