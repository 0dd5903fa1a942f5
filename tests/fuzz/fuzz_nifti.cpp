// libFuzzer target: NIfTI-1/2 reading (nifti_clib for the header, zlib for .nii.gz) on
// arbitrary bytes. Bad input must end in std::invalid_argument (nl::scans::ScanError);
// anything else (crash, sanitizer report, other exception, a volume whose sizes disagree with
// its voxels or break the budgets) is a finding.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nl::scans;
  const std::span<const uint8_t> bytes(data, size);
  (void)sniff(bytes, "fuzz.nii.gz");
  try {
    const Volume v = read_nifti(bytes, "fuzz.nii");
    require(v.width() > 0 && v.height() > 0 && v.slices() > 0);
    require(v.width() <= kMaxSide && v.height() <= kMaxSide && v.slices() <= kMaxSlices);
    require(v.voxels.size() == v.width() * v.height() * v.slices());
    require(std::isfinite(v.info.minimum) && std::isfinite(v.info.maximum) && v.info.minimum <= v.info.maximum);
    for (float x : v.voxels) require(std::isfinite(x));
    for (size_t z : {size_t{0}, v.slices() - 1})
      require(v.slice_grey8(z, v.default_window()).size() == v.width() * v.height());
    (void)describe(v).dump();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
