// NIfTI: volumes come out in radiological display order whatever their affine — patient right
// on the image's left; axial: anterior up; coronal and sagittal: superior up (sagittal: anterior
// on the left); slices in stored order along the third voxel axis — for int16, uint8 and
// float32 with scl_slope/scl_inter, .nii.gz identical to .nii, NIfTI-2, qform-only, 4-D.
#include <doctest/doctest.h>

#include "scan_fixtures.h"

using namespace scantest;
using nl::scans::Volume;

namespace {

// The coded volumes: canonical voxel (x, y, z) — x toward the patient's right (9 voxels,
// 0.8 mm), y toward anterior (11, 0.9 mm), z toward superior (5, 2.5 mm) — holds
// x + 16 y + 256 z; each file stores it along other axes (nibabel axis codes in its name:
// where the stored i, j, k axes point).
constexpr int kX = 9, kY = 11, kZ = 5;
constexpr double kSpacing[3] = {0.8, 0.9, 2.5};

struct Position {
  int x, y, z;
};

// Where display voxel (slice s, row r, column c) must lie, from the third axis code.
Position expected_position(char third, int s, int r, int c) {
  switch (third) {
    case 'S': return {kX - 1 - c, kY - 1 - r, s};           // axial, slices toward superior
    case 'I': return {kX - 1 - c, kY - 1 - r, kZ - 1 - s};  // axial, stored toward inferior
    case 'A': return {kX - 1 - c, s, kZ - 1 - r};           // coronal
    case 'P': return {kX - 1 - c, kY - 1 - s, kZ - 1 - r};
    case 'R': return {s, kY - 1 - c, kZ - 1 - r};           // sagittal: anterior on the left
    default: return {kX - 1 - s, kY - 1 - c, kZ - 1 - r};   // 'L'
  }
}

struct Shape {
  int width, height, slices;
  double spacing[3];
};
Shape expected_shape(char third) {
  switch (third) {
    case 'S': case 'I': return {kX, kY, kZ, {kSpacing[0], kSpacing[1], kSpacing[2]}};
    case 'A': case 'P': return {kX, kZ, kY, {kSpacing[0], kSpacing[2], kSpacing[1]}};
    default: return {kY, kZ, kX, {kSpacing[1], kSpacing[2], kSpacing[0]}};
  }
}

// Counts display voxels whose coded position differs from the expected one.
size_t misplaced(const Volume& v, char third) {
  size_t wrong = 0;
  for (int s = 0; s < int(v.slices()); ++s)
    for (int r = 0; r < int(v.height()); ++r)
      for (int c = 0; c < int(v.width()); ++c) {
        const int code = static_cast<int>(v.voxels[(size_t(s) * v.height() + r) * v.width() + c]);
        const Position want = expected_position(third, s, r, c);
        if (code % 16 != want.x || (code / 16) % 16 != want.y || code / 256 != want.z) ++wrong;
      }
  return wrong;
}

void check_coded(const std::string& file, char third) {
  CAPTURE(file);
  const Volume v = nifti(file);
  const Shape want = expected_shape(third);
  REQUIRE(int(v.width()) == want.width);
  REQUIRE(int(v.height()) == want.height);
  REQUIRE(int(v.slices()) == want.slices);
  CHECK(misplaced(v, third) == 0);
  for (int i = 0; i < 3; ++i) CHECK(std::fabs(v.info.spacing[i] - want.spacing[i]) < 1e-5);
  const char* plane = third == 'S' || third == 'I' ? "axial" : third == 'A' || third == 'P' ? "coronal" : "sagittal";
  CHECK(mentions(v.info.orientation, plane));
  CHECK(v.info.data_type == "int16");
}

// The head volumes: display slice z (axial, radiological) is (grey + 17 z) mod 256.
std::vector<uint8_t> head_slice(int z) {
  return grey_map([z](int g) { return (g + 17 * z) % 256; });
}

size_t head_voxels_off(const Volume& v, int slices, bool reversed) {
  const std::vector<uint8_t> g = grey_pixels();
  size_t off = 0;
  for (int s = 0; s < slices; ++s) {
    const std::vector<uint8_t> want = head_slice(reversed ? slices - 1 - s : s);
    for (size_t i = 0; i < want.size(); ++i) off += v.voxels[size_t(s) * want.size() + i] != float(want[i]);
  }
  return off;
}

}  // namespace

TEST_CASE("NIfTI orientations: every flip and permutation of the axes shows in radiological order") {
  for (const std::string codes : {"RAS", "LAS", "LPS", "LPI", "RPI", "ALS", "PRI", "RSA", "LIP", "ASR", "PIL"})
    check_coded(std::string("nifti/coded_") + codes + ".nii", codes[2]);
}

TEST_CASE("NIfTI orientation from the qform when sform_code is 0, and from the nearest axes when oblique") {
  check_coded("nifti/coded_LPS_qform_only.nii", 'S');
  CHECK(mentions(nifti("nifti/coded_LPS_qform_only.nii").info.orientation, "qform"));
  check_coded("nifti/coded_LPS_oblique.nii", 'S');
  CHECK(mentions(nifti("nifti/coded_LPS.nii").info.orientation, "sform"));
}

TEST_CASE("NIfTI without sform or qform: stored order, and a note saying the orientation is unknown") {
  const Volume v = nifti("nifti/coded_RAS_no_orientation.nii");  // stored i toward R, j toward A
  REQUIRE(v.width() == kX);
  REQUIRE(v.height() == kY);
  REQUIRE(v.slices() == kZ);
  size_t wrong = 0;
  for (int s = 0; s < kZ; ++s)
    for (int r = 0; r < kY; ++r)
      for (int c = 0; c < kX; ++c)
        wrong += static_cast<int>(v.voxels[(size_t(s) * kY + r) * kX + c]) != c + 16 * r + 256 * s;
  CHECK(wrong == 0);
  REQUIRE(!v.info.notes.empty());
  CHECK(mentions(v.info.notes.back(), "orientation unknown"));
}

TEST_CASE("NIfTI data types: uint8, int16 with scl_slope 0.25, float32 with scl_slope 2 give the same real values") {
  struct Case {
    const char* file;
    const char* data_type;
    bool reversed;  // stored toward inferior: slices come in reverse
    bool scaled;
  };
  for (const Case& c : {Case{"nifti/head_uint8_RAS.nii", "uint8", false, false},
                        Case{"nifti/head_int16_LPS.nii", "int16", false, true},
                        Case{"nifti/head_float32_ALI.nii", "float32", true, true}}) {
    CAPTURE(std::string(c.file));
    const Volume v = nifti(c.file);
    CHECK(v.info.format == "NIfTI-1");
    CHECK(v.info.data_type == c.data_type);
    REQUIRE(v.width() == grey().width);
    REQUIRE(v.height() == grey().height);
    REQUIRE(v.slices() == 4);
    CHECK(head_voxels_off(v, 4, c.reversed) == 0);
    for (int s = 0; s < 4; ++s)
      CHECK(difference(v.slice_grey8(s, identity8()), head_slice(c.reversed ? 3 - s : s)).max == 0);
    const bool noted = std::any_of(v.info.notes.begin(), v.info.notes.end(),
                                   [](const std::string& n) { return mentions(n, "scl_slope"); });
    CHECK(noted == c.scaled);
    CHECK(std::fabs(v.info.spacing[0] - 0.9) < 1e-6);
    CHECK(std::fabs(v.info.spacing[1] - 0.8) < 1e-6);
    CHECK(std::fabs(v.info.spacing[2] - 3.0) < 1e-6);
    CHECK(v.info.minimum == 0);
    CHECK(v.info.maximum == 255);
    CHECK(!v.info.file_window.has_value());  // cal_min = cal_max = 0
  }
}

TEST_CASE("NIfTI .nii.gz reads identical to the .nii") {
  for (const std::string stem : {"nifti/head_uint8_RAS", "nifti/head_int16_LPS", "nifti/head_float32_ALI"}) {
    CAPTURE(stem);
    const Volume plain = nifti(std::string(stem) + ".nii");
    const Volume gz = nifti(std::string(stem) + ".nii.gz");
    CHECK(gz.voxels == plain.voxels);
    CHECK(gz.info.format == plain.info.format + " (gzip)");
    CHECK(gz.info.orientation == plain.info.orientation);
    CHECK(gz.info.notes == plain.info.notes);
    CHECK(gz.width() == plain.width());
    CHECK(gz.slices() == plain.slices());
  }
}

TEST_CASE("NIfTI-2 single file reads like NIfTI-1") {
  const Volume v = nifti("nifti/head_nifti2_LAS.nii");
  CHECK(v.info.format == "NIfTI-2");
  CHECK(v.info.data_type == "uint8");
  REQUIRE(v.slices() == 4);
  CHECK(head_voxels_off(v, 4, false) == 0);
}

TEST_CASE("NIfTI 4-D: the first volume is shown, with a note naming the volume count") {
  const Volume v = nifti("nifti/head4d_int16_LPS.nii.gz");
  REQUIRE(v.slices() == 4);
  CHECK(v.voxels.size() == 4 * grey().width * grey().height);
  CHECK(head_voxels_off(v, 4, false) == 0);
  const bool noted = std::any_of(v.info.notes.begin(), v.info.notes.end(),
                                 [](const std::string& n) { return mentions(n, "3-volume"); });
  CHECK(noted);
}

TEST_CASE("NIfTI NaN, infinities and float64 values beyond float's range show as 0, with a note") {
  // Stored order (identity affine: shown with both in-plane axes flipped, 2 x 2 x 2):
  // 1e300, -1e300, NaN, inf, -inf, 5, -7.5, 1e30; only 5, -7.5 and 1e30 are kept.
  const Volume v = nifti("nifti/float64_special.nii");
  REQUIRE(v.voxels.size() == 8);
  std::vector<float> sorted = v.voxels;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == std::vector<float>{-7.5f, 0, 0, 0, 0, 0, 5, 1e30f});
  REQUIRE(!v.info.notes.empty());
  CHECK(mentions(v.info.notes.back(), "5 NaN/infinite"));
  CHECK(v.info.maximum == 1e30f);
}
