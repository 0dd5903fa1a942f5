// ScanSet: DICOM files grouped into series (by folder and SeriesInstanceUID) and ordered along
// the slice normal whatever order the files come in; InstanceNumber when there is no geometry
// (with a note); bad files become Problems while the rest goes on; DICOMDIRs are skipped quietly.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "scan_fixtures.h"

using namespace scantest;
using nl::scans::Kind;
using nl::scans::ScanResult;
using nl::scans::ScanSet;
using nl::scans::Volume;

namespace {

std::vector<std::string> files_in(const std::string& relative_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fixture(relative_dir))) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

ScanResult read_all(std::vector<std::string> paths, uint64_t shuffle_seed) {
  std::mt19937_64 rng(shuffle_seed);
  for (size_t i = paths.size(); i > 1; --i) std::swap(paths[i - 1], paths[rng() % i]);
  ScanSet set;
  for (const std::string& p : paths) set.add(p, read_bytes(p));
  return set.finish();
}

const Volume* with_slices(const ScanResult& r, size_t n) {
  for (const Volume& v : r.volumes)
    if (v.slices() == n) return &v;
  return nullptr;
}

}  // namespace

TEST_CASE("ScanSet: a shuffled tilted series comes out ordered along the slice normal") {
  // Slice k holds (g + 17 k) mod 256 at 5 mm steps along the normal; the files' names, their
  // InstanceNumbers (reversed) and their z (moved in-plane) all disagree with that order.
  for (uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    const ScanResult r = read_all(files_in("series/geometry"), seed);
    CHECK(r.problems.empty());
    REQUIRE(r.volumes.size() == 2);  // the folder also holds a 3-slice second series
    const Volume* v = with_slices(r, 10);
    REQUIRE(v != nullptr);
    CHECK(!v->single_image);
    CHECK(v->info.format == "DICOM");
    CHECK(v->source == fixture("series/geometry"));
    for (size_t z = 0; z < 10; ++z) {
      CAPTURE(z);
      CHECK(difference(v->slice_grey8(z, v->default_window()), grey_map([z](int g) { return (g + 17 * int(z)) % 256; }))
                .max == 0);
    }
    CHECK(std::fabs(v->info.spacing[2] - 5.0) < 1e-3);
    CHECK(std::fabs(v->info.spacing[0] - 0.8) < 1e-9);  // Pixel Spacing 0.9 (rows) \ 0.8 (columns)
    CHECK(std::fabs(v->info.spacing[1] - 0.9) < 1e-9);
    CHECK(mentions(v->info.orientation, "normal"));
    for (const std::string& note : v->info.notes) CHECK(!mentions(note, "InstanceNumber"));
    REQUIRE(v->slice_files.size() == 10);
    // File im%02d.dcm holds slice k for names = {3, 7, 0, 9, 5, 1, 8, 2, 6, 4}[k].
    const int names[10] = {3, 7, 0, 9, 5, 1, 8, 2, 6, 4};
    for (size_t z = 0; z < 10; ++z) {
      char expected[16];
      std::snprintf(expected, sizeof expected, "im%02d.dcm", names[z]);
      CHECK(fs::path(v->slice_files[z]).filename().string() == expected);
    }

    const Volume* other = with_slices(r, 3);
    REQUIRE(other != nullptr);
    // Written at z = 4, 2, 0 for k = 0, 1, 2: ascending along the normal (0, 0, 1) is k = 2, 1, 0.
    for (size_t z = 0; z < 3; ++z)
      CHECK(difference(other->slice_grey8(z, other->default_window()),
                       grey_map([z](int g) { return (g + 100 + 2 - int(z)) % 256; }))
                .max == 0);
    CHECK(std::fabs(other->info.spacing[2] - 2.0) < 1e-9);
  }
}

TEST_CASE("ScanSet: without position or orientation, slices follow InstanceNumber, with a note") {
  const ScanResult r = read_all(files_in("series/numbered"), 7);
  CHECK(r.problems.empty());
  REQUIRE(r.volumes.size() == 1);
  const Volume& v = r.volumes[0];
  REQUIRE(v.slices() == 6);
  for (size_t z = 0; z < 6; ++z)  // InstanceNumber n = z + 1 holds (g + 31 n) mod 256
    CHECK(difference(v.slice_grey8(z, v.default_window()), grey_map([z](int g) { return (g + 31 * int(z + 1)) % 256; }))
              .max == 0);
  const bool noted = std::any_of(v.info.notes.begin(), v.info.notes.end(),
                                 [](const std::string& n) { return mentions(n, "InstanceNumber"); });
  CHECK(noted);
  CHECK(v.info.spacing[2] == 0);  // unknown
}

TEST_CASE("ScanSet: bad files become Problems and the rest goes on; DICOMDIR is skipped quietly") {
  ScanSet set;
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'};
  CHECK(set.add("notes.txt", text) == Kind::other);
  CHECK(set.add(fixture("errors/truncated.dcm"), read_bytes(fixture("errors/truncated.dcm"))) == Kind::dicom);
  CHECK(set.add(fixture("dicomdir/DICOMDIR"), read_bytes(fixture("dicomdir/DICOMDIR"))) == Kind::dicomdir);
  // A DICOMDIR under another name is recognised from its SOP class.
  CHECK(set.add(fixture("dicomdir/renamed_dicomdir.dcm"), read_bytes(fixture("dicomdir/renamed_dicomdir.dcm"))) ==
        Kind::dicomdir);
  CHECK(set.add(fixture("nifti/head_uint8_RAS.nii"), read_bytes(fixture("nifti/head_uint8_RAS.nii"))) == Kind::nifti);
  CHECK(set.add(fixture("errors/sr.dcm"), read_bytes(fixture("errors/sr.dcm"))) == Kind::dicom);
  CHECK(set.add(fixture("dicom/base8.dcm"), read_bytes(fixture("dicom/base8.dcm"))) == Kind::dicom);
  CHECK(set.add(fixture("errors/truncated.nii"), read_bytes(fixture("errors/truncated.nii"))) == Kind::nifti);
  CHECK(set.add(fixture("dicom/multiframe.dcm"), read_bytes(fixture("dicom/multiframe.dcm"))) == Kind::dicom);
  const ScanResult r = set.finish();

  // Volumes in the order of their first file: the NIfTI, the single image, the multi-frame object.
  REQUIRE(r.volumes.size() == 3);
  CHECK(r.volumes[0].info.format == "NIfTI-1");
  CHECK(r.volumes[1].single_image);
  CHECK(r.volumes[1].slice_files == std::vector<std::string>{fixture("dicom/base8.dcm")});
  CHECK(difference(r.volumes[1].slice_grey8(0, r.volumes[1].default_window()), grey_pixels()).max == 0);
  CHECK(r.volumes[2].slices() == 3);
  CHECK(!r.volumes[2].single_image);

  REQUIRE(r.problems.size() == 4);
  CHECK(r.problems[0].file == "notes.txt");
  CHECK(r.problems[0].message == "not a DICOM or NIfTI file");
  CHECK(r.problems[1].file == fixture("errors/truncated.dcm"));
  CHECK(mentions(r.problems[1].message, "truncated"));
  CHECK(r.problems[2].file == fixture("errors/sr.dcm"));
  CHECK(mentions(r.problems[2].message, "no pixel data"));
  CHECK(r.problems[3].file == fixture("errors/truncated.nii"));
  CHECK(mentions(r.problems[3].message, "truncated"));

  CHECK(r.skipped == std::vector<std::string>{fixture("dicomdir/DICOMDIR"), fixture("dicomdir/renamed_dicomdir.dcm")});

  // finish() leaves the set empty and ready again.
  CHECK(set.finish().volumes.empty());
}

TEST_CASE("ScanSet: a slice whose size differs from its series is left out as a Problem") {
  // series/mismatch: three files of one series; size_b.dcm is 100 x 80, the others 173 x 151.
  // Whichever file comes first, the odd one is left out.
  for (uint64_t seed = 0; seed < 6; ++seed) {
  CAPTURE(seed);
  const ScanResult r = read_all(files_in("series/mismatch"), seed);
  REQUIRE(r.volumes.size() == 1);
  CHECK(r.volumes[0].slices() == 2);
  CHECK(r.volumes[0].width() == grey().width);
  REQUIRE(r.problems.size() == 1);
  CHECK(fs::path(r.problems[0].file).filename() == "size_b.dcm");
  CHECK(mentions(r.problems[0].message, "100x80"));
  CHECK(mentions(r.problems[0].message, "173x151"));
  }
}

TEST_CASE("ScanSet: volumes keep the order their files were added in, after a NIfTI that failed") {
  ScanSet set;
  for (const char* f : {"errors/truncated.nii", "dicom/base8.dcm", "nifti/head_uint8_RAS.nii", "dicom/mono1.dcm"})
    set.add(fixture(f), read_bytes(fixture(f)));
  const ScanResult r = set.finish();
  REQUIRE(r.volumes.size() == 3);
  CHECK(r.volumes[0].source == fixture("dicom/base8.dcm"));
  CHECK(r.volumes[1].source == fixture("nifti/head_uint8_RAS.nii"));
  CHECK(r.volumes[2].source == fixture("dicom/mono1.dcm"));
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].file == fixture("errors/truncated.nii"));
}
