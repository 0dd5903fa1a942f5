// Files the readers must refuse, each with a message that names the problem: the transfer
// syntax (UID and name), "truncated", "no pixel data", the budget a size breaks.
#include <doctest/doctest.h>

#include "scan_fixtures.h"

using namespace scantest;

namespace {

std::string dicom_error(const std::string& relative) {
  const std::vector<uint8_t> bytes = read_bytes(fixture(relative));
  return error_of([&] { nl::scans::read_dicom(bytes, relative); });
}
std::string nifti_error(const std::string& relative) {
  const std::vector<uint8_t> bytes = read_bytes(fixture(relative));
  return error_of([&] { nl::scans::read_nifti(bytes, relative); });
}

}  // namespace

TEST_CASE("DICOM unsupported transfer syntaxes are named by UID and name") {
  const std::string htj2k = dicom_error("errors/htj2k.dcm");
  CAPTURE(htj2k);
  CHECK(mentions(htj2k, "1.2.840.10008.1.2.4.201"));
  CHECK(mentions(htj2k, "High-Throughput JPEG 2000"));
  CHECK(mentions(htj2k, "not supported"));
  const std::string mpeg2 = dicom_error("errors/mpeg2.dcm");
  CAPTURE(mpeg2);
  CHECK(mentions(mpeg2, "1.2.840.10008.1.2.4.100"));
  CHECK(mentions(mpeg2, "MPEG2"));
  CHECK(mentions(mpeg2, "not supported"));
}

TEST_CASE("DICOM truncated files are refused as truncated") {
  SUBCASE("cut inside the pixel data") {
    const std::string e = dicom_error("errors/truncated.dcm");
    CAPTURE(e);
    CHECK(mentions(e, "truncated"));
  }
  SUBCASE("complete elements, but Pixel Data shorter than Rows x Columns") {
    const std::string e = dicom_error("errors/short_pixels.dcm");
    CAPTURE(e);
    CHECK(mentions(e, "truncated pixel data"));
    CHECK(mentions(e, "173x151x1 needs 26123 bytes"));
  }
  SUBCASE("cut inside a deflated data set") {
    const std::string e = dicom_error("errors/truncated_deflated.dcm");
    CAPTURE(e);
    CHECK(mentions(e, "truncated"));
  }
  SUBCASE("cut inside the meta header") {
    const std::string e = dicom_error("errors/truncated_header.dcm");
    CAPTURE(e);
    CHECK(!e.empty());
    CHECK(mentions(e, "truncated"));
  }
  SUBCASE("empty") {
    CHECK(error_of([] { nl::scans::read_dicom({}, "empty.dcm"); }) == "empty file");
  }
}

TEST_CASE("DICOM objects without pixels: an SR document, a DICOMDIR") {
  const std::string sr = dicom_error("errors/sr.dcm");
  CAPTURE(sr);
  CHECK(mentions(sr, "no pixel data"));
  CHECK(mentions(sr, "Basic Text SR"));
  const std::string dir = dicom_error("dicomdir/DICOMDIR");
  CHECK(mentions(dir, "DICOMDIR"));
}

TEST_CASE("DICOM hostile sizes are refused from the header, naming the budget") {
  const std::string rows = dicom_error("errors/huge_rows.dcm");
  CAPTURE(rows);
  CHECK(mentions(rows, "65535x65535"));
  CHECK(mentions(rows, "8192-pixel side limit"));
  const std::string frames = dicom_error("errors/huge_frames.dcm");
  CAPTURE(frames);
  CHECK(mentions(frames, "512x512x4000"));
  CHECK(mentions(frames, "134217728-voxel limit"));
}

TEST_CASE("DICOM element declaring more bytes than the file holds is refused before GDCM allocates it") {
  // (0040,A160) UT, its length patched to 0x6708006D; its value starts 12 bytes after the tag.
  const std::vector<uint8_t> bytes = read_bytes(fixture("errors/overlong_element.dcm"));
  const uint8_t tag[] = {0x40, 0x00, 0x60, 0xA1, 'U', 'T'};
  const auto at = std::search(bytes.begin(), bytes.end(), std::begin(tag), std::end(tag));
  REQUIRE(at != bytes.end());
  const size_t follow = bytes.size() - static_cast<size_t>(at - bytes.begin()) - 12;
  const std::string e = dicom_error("errors/overlong_element.dcm");
  CHECK(e == "truncated or damaged DICOM file: element (0040,A160) declares 1728577645 bytes, only " +
                 std::to_string(follow) + " follow");
}

TEST_CASE("DICOM element declaring more bytes than the file holds, where only GDCM reaches it, is refused") {
  // Behind an undefined-length UN element the length walk above stops; GDCM's own length check
  // (cmake/patches/gdcm-declared-length.patch) refuses the 1.7 GB claim instead of allocating it.
  // A deflated data set is not walked at all: GDCM inflates it into memory first so that the
  // same check applies (its inflating stream cannot seek).
  for (const char* file : {"errors/overlong_after_un.dcm", "errors/overlong_deflated.dcm"}) {
    CAPTURE(file);
    const std::vector<uint8_t> bytes = read_bytes(fixture(file));
    CHECK(dicom_error(file) == "truncated or damaged DICOM file: GDCM could not parse its data set (" +
                                   std::to_string(bytes.size()) + " bytes)");
  }
}

TEST_CASE("DICOM JPEG 2000 tile-part header running past its fragment is not read past") {
  // GDCM 3.0.24's marker walk trusted SOT's length (cmake/patches/gdcm-j2k-markers.patch).
  CHECK(dicom_error("errors/j2k_sot_overlong.dcm") ==
        "could not decode the pixel data (JPEG 2000 Image Compression (Lossless Only))");
}

TEST_CASE("DICOM JPEG with a precision past 16 bits is refused (GDCM would dereference a null codec)") {
  CHECK(dicom_error("errors/jpeg_precision_230.dcm") ==
        "JPEG data precision 230 is not supported (2 to 16 bits; JPEG Lossless, Non-Hierarchical, First-Order "
        "Prediction (Process 14 [Selection Value 1]))");
}

TEST_CASE("DICOM RLE fragments claiming more than 15 segments, or none, are refused, not read past") {
  // GDCM 3.0.24 trusted the count (a read past the 64-byte header; a division by zero):
  // cmake/patches/gdcm-rle-segments.patch refuses both.
  for (const char* file : {"errors/rle_segments_655361.dcm", "errors/rle_segments_0.dcm"}) {
    CAPTURE(file);
    CHECK(dicom_error(file) == "could not decode the pixel data (RLE Lossless)");
  }
}

TEST_CASE("NIfTI hostile sizes and truncated data are refused, naming the problem") {
  const std::string dims = nifti_error("errors/huge_dims.nii.gz");
  CAPTURE(dims);
  CHECK(mentions(dims, "30000x30000"));
  CHECK(mentions(dims, "8192-pixel side limit"));
  const std::string voxels = nifti_error("errors/huge_voxels.nii.gz");
  CAPTURE(voxels);
  CHECK(mentions(voxels, "8000x8000x4000"));
  CHECK(mentions(voxels, "134217728-voxel limit"));
  const std::string cut = nifti_error("errors/truncated.nii");
  CAPTURE(cut);
  CHECK(mentions(cut, "truncated NIfTI data"));
  CHECK(mentions(cut, "173x151x4 int16"));
  const std::string cut_gz = nifti_error("errors/truncated.nii.gz");
  CAPTURE(cut_gz);
  CHECK(mentions(cut_gz, "truncated"));
  CHECK(mentions(error_of([] { nl::scans::read_nifti({}, "empty.nii"); }), "truncated NIfTI header"));
  // 64-bit NIfTI-2 dimensions are checked before they become size_t (32-bit in wasm).
  const std::string wide = nifti_error("errors/nifti2_huge_dims.nii");
  CAPTURE(wide);
  CHECK(mentions(wide, "4294967301x2"));
  CHECK(mentions(wide, "8192-pixel side limit"));
  CHECK(nifti_error("errors/nifti2_bad_dim0.nii") == "NIfTI-2 dim[0] 1000 is not 1..7");
  const std::string offset = nifti_error("errors/vox_offset_beyond.nii");
  CAPTURE(offset);
  CHECK(mentions(offset, "vox_offset 1099511627776"));
  CHECK(mentions(offset, "beyond"));
}

TEST_CASE("DICOM inputs that crashed GDCM or ran it out of memory under fuzz_dicom are refused with a message") {
  // Kept as fuzz seeds (tests/fuzz/corpus/fuzz_dicom); each crashed GDCM 3.0.24 before the
  // patches named below, or before dicom.cpp caught GDCM's std::string throws.
  const std::string dir = NEUROLENS_SOURCE_DIR "/tests/fuzz/corpus/fuzz_dicom/";
  auto error_in = [&](const char* name) {
    const std::vector<uint8_t> bytes = read_bytes(dir + name);
    REQUIRE(!bytes.empty());
    return error_of([&] { nl::scans::read_dicom(bytes, name); });
  };
  // JPEG-LS Pixel Data with no fragment at all: GDCM took the first one (SEGV;
  // cmake/patches/gdcm-missing-fragment.patch, as the next one).
  CHECK(error_in("jpegls-no-fragments.dcm") == "could not decode the pixel data (JPEG-LS Lossy (Near-Lossless))");
  // A fragment whose value a cut-short read never set: GDCM measured it (SEGV).
  CHECK(error_in("fragment-without-value.dcm").starts_with("no pixel data (7FE0,0010)"));
  // A 16 x 6 image whose JPEG-LS stream claims 30000 x 30000 at 16 bits: GDCM allocated and
  // zeroed 1.8 GB before decoding (out of memory; cmake/patches/gdcm-jpegls-stream-size.patch).
  CHECK(error_in("jpegls-stream-30000x30000.dcm") == "could not decode the pixel data (JPEG-LS Lossless)");
  // The same in a JPEG 2000 SIZ marker: OpenJPEG asked for 3.6 GB (cmake/patches/gdcm-j2k-size.patch).
  CHECK(error_in("j2k-siz-30000x30000.dcm") == "could not decode the pixel data (JPEG 2000 Image Compression (Lossless Only))");
  // GDCM's always-on assertion throws a std::string, which ended the program.
  // (The function's signature after it is spelled by the compiler: GCC and Clang differ.)
  CHECK(error_in("gdcm-assert-string.dcm")
            .starts_with("not a readable DICOM file (GDCM: internal check failed: Assert: In gdcmPixmapReader.cxx, "
                         "line 964, function bool gdcm::PixmapReader::ReadImageInternal("));
  // ScanSet records such a file as a problem and goes on.
  const std::vector<uint8_t> bytes = read_bytes(dir + "gdcm-assert-string.dcm");
  nl::scans::ScanSet set;
  set.add("a.dcm", bytes);
  const nl::scans::ScanResult r = set.finish();
  CHECK(r.volumes.empty());
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].file == "a.dcm");
}
