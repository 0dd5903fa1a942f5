// Recognising DICOM and NIfTI files from their first bytes.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "formats/scans/scan.h"

namespace nl::scans {
namespace {

bool ends_with_icase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), s.end() - suffix.size(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

std::string_view base_name(std::string_view path) {
  const size_t slash = path.find_last_of("/\\");
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

uint16_t u16le(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// A data set without the Part-10 preamble: its first element must be a group 0002 or 0008 tag
// (little endian) with either a plausible explicit VR or an implicit-VR length that fits.
bool looks_like_raw_dataset(std::span<const uint8_t> b) {
  if (b.size() < 16) return false;
  const uint16_t group = u16le(b.data());
  if (group != 0x0002 && group != 0x0008) return false;
  if (u16le(b.data() + 2) > 0x0100) return false;  // the first element numbers are small
  const bool vr_letters = std::isupper(b[4]) && std::isupper(b[5]);
  if (vr_letters) return true;
  uint32_t length = 0;
  std::memcpy(&length, b.data() + 4, 4);
  return length < b.size();
}

bool is_nifti_header(std::span<const uint8_t> b) {
  // NIfTI-1: "n+1\0" at 344 (sizeof_hdr 348); NIfTI-2: "n+2\0\r\n\032\n" at 4 (sizeof_hdr 540).
  if (b.size() >= 348 && std::memcmp(b.data() + 344, "n+1", 4) == 0) return true;
  if (b.size() >= 12 && std::memcmp(b.data() + 4, "n+2\0\r\n\032\n", 8) == 0) return true;
  return false;
}

}  // namespace

Kind sniff(std::span<const uint8_t> bytes, std::string_view name) {
  if (base_name(name) == "DICOMDIR") return Kind::dicomdir;
  if (bytes.size() >= 132 && std::memcmp(bytes.data() + 128, "DICM", 4) == 0) return Kind::dicom;
  if (is_nifti_header(bytes)) return Kind::nifti;
  const bool gzip = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
  if (gzip && (ends_with_icase(name, ".nii.gz") || ends_with_icase(name, ".nii"))) return Kind::nifti;
  if (looks_like_raw_dataset(bytes)) return Kind::dicom;
  return Kind::other;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::dicom: return "dicom";
    case Kind::dicomdir: return "dicomdir";
    case Kind::nifti: return "nifti";
    case Kind::other: return "other";
  }
  return "other";
}

}  // namespace nl::scans
