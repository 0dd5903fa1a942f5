// Pieces the scan readers share (not part of the public API in scan.h).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/scans/scan.h"

namespace nl::scans {

// One DICOM object as read, with what series assembly needs to sort it.
struct DicomObject {
  Volume volume;            // its frames as slices
  std::string series_uid;   // (0020,000E); empty when absent
  std::optional<std::array<double, 6>> orientation;  // (0020,0037) row then column cosines
  std::optional<std::array<double, 3>> position;     // (0020,0032) of the first frame
  std::optional<long> instance_number;               // (0020,0013)
  bool is_directory = false;  // a DICOMDIR (media storage directory): no pixels
};
DicomObject read_dicom_object(std::span<const uint8_t> bytes, std::string name);

// The automatic window over these values, and the volume's intensity range + auto window.
Window percentile_window(std::span<const float> values);
void finish_intensity(Volume& v);

// Refuses sizes over the budgets in scan.h, naming the dimension: "what" is e.g. "DICOM image".
// 64-bit on every target: NIfTI-2 dimensions are 64-bit and wasm's size_t is not.
void check_budget(const std::string& what, uint64_t width, uint64_t height, uint64_t slices);

// Inflates a gzip (or, with raw_deflate, a headerless deflate) stream, at most `limit` bytes of
// output: more is an error naming the cap. Stops early, without error, once `want` bytes are out.
std::vector<uint8_t> inflate_bytes(std::span<const uint8_t> compressed, size_t limit, size_t want,
                                   bool raw_deflate);
// How many bytes the stream inflates to, without keeping them; past `limit` is an error.
size_t inflated_size(std::span<const uint8_t> compressed, size_t limit, bool raw_deflate);

}  // namespace nl::scans
