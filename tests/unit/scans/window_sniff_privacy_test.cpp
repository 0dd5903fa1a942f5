// apply_window against the DICOM PS3.3 C.11.2.1.2 formulas written out naively here;
// sniff() on the ways files start; privacy: identifying attributes never reach describe() or
// to_json().
#include <doctest/doctest.h>

#include <cmath>

#include "formats/scans/scan_json.h"
#include "scan_fixtures.h"

using namespace scantest;
using nl::scans::apply_window;
using nl::scans::sniff;
using nl::scans::Kind;
using nl::scans::Window;
using nl::scans::WindowFunction;

namespace {

// C.11.2.1.2.1, output range 0..255, rounded to nearest.
int naive_linear(double x, double c, double w) {
  double y;
  if (x <= c - 0.5 - (w - 1) / 2) y = 0;
  else if (x > c - 0.5 + (w - 1) / 2) y = 255;
  else y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255;
  return static_cast<int>(std::floor(y + 0.5));
}
// C.11.2.1.3.2
int naive_linear_exact(double x, double c, double w) {
  double y;
  if (x <= c - w / 2) y = 0;
  else if (x > c + w / 2) y = 255;
  else y = ((x - c) / w + 0.5) * 255;
  return static_cast<int>(std::floor(y + 0.5));
}
// C.11.2.1.3.1
int naive_sigmoid(double x, double c, double w) {
  return static_cast<int>(std::floor(255 / (1 + std::exp(-4 * (x - c) / w)) + 0.5));
}

}  // namespace

TEST_CASE("apply_window LINEAR: hand-computed values of the standard's formula") {
  // Brain CT window c 40, w 80: x <= 0 is black, x > 79 white, the middle at 39.5.
  const Window brain{40, 80, WindowFunction::linear};
  CHECK(apply_window(-1000, brain) == 0);
  CHECK(apply_window(0, brain) == 0);
  CHECK(apply_window(79, brain) == 255);
  CHECK(apply_window(79.5, brain) == 255);
  CHECK(apply_window(39.5, brain) == 128);  // 127.5 rounds up
  CHECK(apply_window(20, brain) == 65);     // (20 - 39.5) / 79 + 0.5 = 0.2532 -> 64.56
  // The 8-bit identity window (c 128, w 256) maps every level onto itself.
  for (int x = 0; x < 256; ++x) CHECK(apply_window(x, {128, 256, WindowFunction::linear}) == x);
}

TEST_CASE("apply_window LINEAR / LINEAR_EXACT / SIGMOID equal the naive formulas over a sweep") {
  const double windows[][2] = {{40, 80}, {128, 256}, {1000, 2000}, {-600, 1500}, {0.5, 1}, {7.25, 3.5}};
  size_t differ[3] = {0, 0, 0};
  for (const auto& cw : windows) {
    for (double x = cw[0] - cw[1]; x <= cw[0] + cw[1]; x += cw[1] / 97) {
      differ[0] += apply_window(x, {cw[0], cw[1], WindowFunction::linear}) != naive_linear(x, cw[0], cw[1]);
      differ[1] += apply_window(x, {cw[0], cw[1], WindowFunction::linear_exact}) != naive_linear_exact(x, cw[0], cw[1]);
      differ[2] += apply_window(x, {cw[0], cw[1], WindowFunction::sigmoid}) != naive_sigmoid(x, cw[0], cw[1]);
    }
  }
  CHECK(differ[0] == 0);
  CHECK(differ[1] == 0);
  CHECK(differ[2] == 0);
  // LINEAR_EXACT hand values: c 100, w 50 spans 75..125.
  CHECK(apply_window(75, {100, 50, WindowFunction::linear_exact}) == 0);
  CHECK(apply_window(100, {100, 50, WindowFunction::linear_exact}) == 128);
  CHECK(apply_window(125, {100, 50, WindowFunction::linear_exact}) == 255);
  CHECK(apply_window(87.5, {100, 50, WindowFunction::linear_exact}) == 64);  // 63.75
  CHECK(apply_window(std::nan(""), {100, 50, WindowFunction::linear}) == 0);
}

TEST_CASE("sniff: Part-10 preamble, raw data set, NIfTI-1/2 magic, gzip with a NIfTI name") {
  fixtures();  // fails first, with how to make them, when they are missing
  CHECK(sniff(read_bytes(fixture("dicom/base8.dcm")), "x.bin") == Kind::dicom);
  CHECK(sniff(read_bytes(fixture("dicom/raw_dataset.dcm")), "IM0001") == Kind::dicom);
  CHECK(sniff(read_bytes(fixture("nifti/head_uint8_RAS.nii")), "anything") == Kind::nifti);
  CHECK(sniff(read_bytes(fixture("nifti/head_nifti2_LAS.nii")), "anything") == Kind::nifti);
  const std::vector<uint8_t> gz = read_bytes(fixture("nifti/head_uint8_RAS.nii.gz"));
  CHECK(sniff(gz, "head.nii.gz") == Kind::nifti);
  CHECK(sniff(gz, "dir/HEAD.NII.GZ") == Kind::nifti);
  CHECK(sniff(gz, "head.tar.gz") == Kind::other);  // gzip alone says nothing
  CHECK(sniff(read_bytes(fixture("dicomdir/DICOMDIR")), "media/DICOMDIR") == Kind::dicomdir);
  // A JPEG, a PNG signature, text, nothing.
  const std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
  CHECK(sniff(jpeg, "scan.jpg") == Kind::other);
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0};
  CHECK(sniff(png, "scan.png") == Kind::other);
  const std::string text = "patient notes, nothing to see here";
  CHECK(sniff({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "notes.txt") == Kind::other);
  CHECK(sniff({}, "empty") == Kind::other);
  CHECK(std::string(nl::scans::kind_name(Kind::nifti)) == "nifti");
}

TEST_CASE("privacy: names, IDs, dates of birth, institution never reach describe() or to_json()") {
  const std::string path = fixture("dicom/privacy.dcm");
  nl::scans::ScanSet set;
  set.add(path, read_bytes(path));
  const nl::scans::ScanResult r = set.finish();
  REQUIRE(r.volumes.size() == 1);
  const std::string described = nl::scans::describe(r.volumes[0]).dump();
  const std::string info = nl::scans::to_json(r.volumes[0].info).dump();
  CHECK(mentions(described, "synthetic privacy"));  // the series description is shown
  for (const char* secret : {"Doe", "Janet", "Secretname", "PID-83920571", "19610317", "Saint Privacy", "Hospital",
                             "Referrer", "ACC77812", "Study of"}) {
    CAPTURE(secret);
    CHECK(!mentions(described, secret));
    CHECK(!mentions(info, secret));
  }
  // The file really holds them (the check above could not fail otherwise).
  const std::vector<uint8_t> bytes = read_bytes(path);
  const std::string raw(bytes.begin(), bytes.end());
  CHECK(mentions(raw, "Secretname"));
  CHECK(mentions(raw, "Saint Privacy Hospital"));
}

TEST_CASE("series descriptions in Latin-1, UTF-8 or undeclared 8-bit text reach JSON as valid UTF-8") {
  struct Case {
    const char* file;
    const char* want;
  };
  for (const Case& c : {Case{"dicom/charset_latin1.dcm", "Sch\xC3\xA4" "del axial"},        // ISO_IR 100
                        Case{"dicom/charset_utf8.dcm", "Sch\xC3\xA4" "del \xE9\xA0\xAD\xE9\x83\xA8"},  // ISO_IR 192
                        Case{"dicom/charset_undeclared.dcm", "Sch\xC3\xA4" "del \xC3\xBF\xC3\xBE"}}) {  // as Latin-1
    CAPTURE(std::string(c.file));
    const nl::scans::Volume v = dicom(c.file);
    CHECK(v.info.series_description == c.want);
    std::string json;
    CHECK_NOTHROW(json = nl::scans::describe(v).dump());
    CHECK(mentions(json, c.want));
  }
}
