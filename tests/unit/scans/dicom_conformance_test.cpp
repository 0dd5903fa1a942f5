// Real files written by other software: pydicom's conformance files (Debian python3-pydicom,
// installed by scripts/setup) and, when present, the nine Siemens files of
// /work/shared/data/dicom-transfer-syntaxes (NEUROLENS_SHARED_DICOM names that folder; it is
// not on users' machines). A missing folder is said plainly, never passed over in silence.
#include <doctest/doctest.h>

#include "scan_fixtures.h"

using namespace scantest;
using nl::scans::Volume;

namespace {

std::string pydicom_dir() {
  const std::string over = env("NEUROLENS_PYDICOM_FILES");
  return over.empty() ? "/usr/lib/python3/dist-packages/pydicom/data/test_files" : over;
}

bool have_pydicom() {
  if (fs::exists(pydicom_dir() + "/MR_small.dcm")) return true;
  WARN_MESSAGE(false, "pydicom's conformance files are absent (" << pydicom_dir()
                                                                  << "): install python3-pydicom (scripts/setup "
                                                                     "does) to run this test");
  return false;
}

Volume pydicom_file(const std::string& name) {
  const std::string path = pydicom_dir() + "/" + name;
  return nl::scans::read_dicom(read_bytes(path), name);
}

std::string pydicom_error(const std::string& name) {
  const std::vector<uint8_t> bytes = read_bytes(pydicom_dir() + "/" + name);
  return error_of([&] { nl::scans::read_dicom(bytes, name); });
}

}  // namespace

TEST_CASE("pydicom MR_small in seven transfer syntaxes decodes to identical values") {
  if (!have_pydicom()) return;
  const Volume reference = pydicom_file("MR_small.dcm");
  CHECK(reference.width() == 64);
  CHECK(reference.height() == 64);
  CHECK(reference.info.data_type == "int16 (16 bits stored)");
  CHECK(reference.info.maximum > reference.info.minimum);
  for (const std::string name : {"MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
                           "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                           "MR_small_padded.dcm"}) {
    CAPTURE(name);
    const Volume v = pydicom_file(name);
    REQUIRE(v.voxels.size() == reference.voxels.size());
    CHECK(v.voxels == reference.voxels);
  }
}

TEST_CASE("pydicom JPEG extended 12-bit, JPEG 2000, deflated: decode to plausible images") {
  if (!have_pydicom()) return;
  struct Case {
    const char* name;
    const char* syntax;
    size_t width, height;
  };
  for (const Case& c : {Case{"JPGExtended.dcm", "1.2.840.10008.1.2.4.51", 256, 1024},
                        Case{"JPEG2000.dcm", "1.2.840.10008.1.2.4.91", 256, 1024},
                        Case{"image_dfl.dcm", "1.2.840.10008.1.2.1.99", 512, 512}}) {
    CAPTURE(std::string(c.name));
    const Volume v = pydicom_file(c.name);
    CHECK(v.info.transfer_syntax.rfind(std::string(c.syntax) + " ", 0) == 0);
    CHECK(v.width() == c.width);
    CHECK(v.height() == c.height);
    CHECK(v.info.maximum > v.info.minimum);
  }
  // JPGExtended and JPEG2000 hold the same CT image (lossy both): close to each other.
  const Volume jpeg = pydicom_file("JPGExtended.dcm"), j2k = pydicom_file("JPEG2000.dcm");
  REQUIRE(jpeg.voxels.size() == j2k.voxels.size());
  double sum = 0;
  for (size_t i = 0; i < jpeg.voxels.size(); ++i) sum += std::fabs(jpeg.voxels[i] - j2k.voxels[i]);
  CHECK(sum / double(jpeg.voxels.size()) < 0.02 * (jpeg.info.maximum - jpeg.info.minimum));
}

TEST_CASE("pydicom colour: RGB RLE, JPEG in YBR, YBR_FULL_422 native agree; 2-frame RLE gives 2 slices") {
  if (!have_pydicom()) return;
  const Volume rgb = pydicom_file("SC_rgb_rle.dcm");
  CHECK(rgb.info.photometric == "RGB");
  const std::vector<uint8_t> reference = rgb.slice_grey8(0, identity8());
  for (const std::string name : {"SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_ybr_full_422_uncompressed.dcm",
                           "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_dcmtk_+eb+cy+n2.dcm"}) {
    CAPTURE(name);
    const Volume v = pydicom_file(name);
    REQUIRE(v.voxels.size() == rgb.voxels.size());
    const Difference d = difference(v.slice_grey8(0, identity8()), reference);
    CHECK(d.mean < 3);
    CHECK(d.max <= 40);
  }
  const Volume two = pydicom_file("SC_rgb_rle_2frame.dcm");
  CHECK(two.slices() == 2);
  CHECK(difference(two.slice_grey8(0, identity8()), reference).max == 0);
  const Volume sixteen = pydicom_file("SC_rgb_rle_16bit_2frame.dcm");
  CHECK(sixteen.slices() == 2);
}

TEST_CASE("pydicom refusals: an SR without pixels, the truncated MR") {
  if (!have_pydicom()) return;
  const std::string sr = pydicom_error("test-SR.dcm");
  CAPTURE(sr);
  CHECK(mentions(sr, "no pixel data"));
  const std::string truncated = pydicom_error("MR_truncated.dcm");
  CAPTURE(truncated);
  CHECK(mentions(truncated, "truncated"));
}

TEST_CASE("shared Siemens files: nine transfer syntaxes of one image decode to identical values") {
  const std::string dir = env("NEUROLENS_SHARED_DICOM");
  if (dir.empty() || !fs::exists(dir + "/In/1.dcm")) {
    MESSAGE("skipped: set NEUROLENS_SHARED_DICOM to the dicom-transfer-syntaxes folder (In/1.dcm .. In/9.dcm) to "
            "run this check"
            << (dir.empty() ? std::string() : "; '" + dir + "/In/1.dcm' does not exist"));
    return;
  }
  const std::string first = dir + "/In/1.dcm";
  const Volume reference = nl::scans::read_dicom(read_bytes(first), first);
  CHECK(reference.width() == 384);
  CHECK(reference.height() == 384);
  CHECK(reference.info.maximum > reference.info.minimum);
  for (int i = 2; i <= 9; ++i) {
    const std::string path = dir + "/In/" + std::to_string(i) + ".dcm";
    CAPTURE(path);
    const Volume v = nl::scans::read_dicom(read_bytes(path), path);
    CAPTURE(v.info.transfer_syntax);
    REQUIRE(v.voxels.size() == reference.voxels.size());
    CHECK(v.voxels == reference.voxels);
  }
}
