// libFuzzer target: DICOM reading (GDCM underneath) on arbitrary bytes, alone and, when it
// reads, as two members of a series. Bad input must end in std::invalid_argument (nl::scans::ScanError); ScanSet must
// never throw. Anything else (crash, sanitizer report, other exception, a volume whose sizes
// disagree with its voxels or break the budgets, a window producing nothing) is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "formats/scans/scan.h"
#include "formats/scans/scan_json.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_volume(const nl::scans::Volume& v) {
  using namespace nl::scans;
  require(v.width() > 0 && v.height() > 0 && v.slices() > 0);
  require(v.width() <= kMaxSide && v.height() <= kMaxSide && v.slices() <= kMaxSlices);
  require(v.voxels.size() == v.width() * v.height() * v.slices());
  require(std::isfinite(v.info.minimum) && std::isfinite(v.info.maximum) && v.info.minimum <= v.info.maximum);
  for (size_t z : {size_t{0}, v.slices() - 1}) {
    require(v.slice_grey8(z, v.default_window()).size() == v.width() * v.height());
    require(v.slice_grey8(z, v.info.auto_window).size() == v.width() * v.height());
  }
  (void)describe(v).dump();
}

}  // namespace

// GDCM 3.0.24 leaks while reading a damaged meta header: ReadExplicitDataElement and
// ReadImplicitDataElement in gdcmFileMetaInformation.cxx do `bv = new ByteValue;
// bv->SetLength(vl);` and return false without deleting it when the value is cut short (the
// 48-byte ByteValue and its declared-length buffer stay allocated). Inlined, the report's top
// GDCM frame is one of those or FileMetaInformation::ReadCompatInternal. And
// JPEGLSCodec::Decode and ::GetHeaderInfo (gdcmJPEGLSCodec.cxx) return false without delete[]
// of the fragment copy they made when CharLS cannot read it. GDCM's bundled IJG libjpeg leaks
// its memory manager (jinit_memory_mgr and the pools alloc_* fill) when GDCM's JPEG codec gives
// up on a damaged stream without jpeg_destroy_decompress, and its OpenJPEG decoder objects
// (opj_*) when a JPEG 2000 header is refused. GDCM's, not ours: reported, and
// suppressed here only. (cmake/patches/gdcm-meta-leak.patch frees the meta-header ByteValue;
// the entries for it stay for the paths the patch does not cover.)
extern "C" const char* __lsan_default_suppressions() {
  return "leak:opj_\n"
         "leak:jinit_memory_mgr\n"
         "leak:alloc_small\n"
         "leak:alloc_large\n"
         "leak:alloc_sarray\n"
         "leak:alloc_darray\n"
         "leak:gdcm::JPEGLSCodec::Decode\n"
         "leak:gdcm::JPEGLSCodec::GetHeaderInfo\n"
         "leak:gdcm::ReadExplicitDataElement\n"
         "leak:gdcm::ReadImplicitDataElement\n"
         "leak:gdcm::FileMetaInformation::ReadCompatInternal\n";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  (void)nl::scans::sniff(bytes, "fuzz.dcm");
  try {
    check_volume(nl::scans::read_dicom(bytes, "fuzz.dcm"));
  } catch (const std::invalid_argument&) {
    return 0;  // ScanSet would only record the same error (and GDCM parse the file twice more)
  }
  // The same object twice in one folder: series assembly (equal positions, equal UIDs).
  nl::scans::ScanSet set;
  set.add("series/a.dcm", bytes);
  set.add("series/b.dcm", bytes);
  const nl::scans::ScanResult r = set.finish();
  require(r.volumes.size() + r.problems.size() + r.skipped.size() >= 1);
  for (const nl::scans::Volume& v : r.volumes) check_volume(v);
  return 0;
}
