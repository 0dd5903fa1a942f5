// Reading what scanners write — DICOM files and series (GDCM), NIfTI-1/2 volumes (nifti_clib,
// zlib) — as volumes of real-world intensities, and turning slices into the 8-bit grey images
// the model's preprocessing takes (exactly as if they were decoded JPEGs).
//
//   nl::scans::ScanSet set;
//   for (auto& [name, bytes] : files) set.add(name, bytes);   // sniffs; never throws for a bad file
//   nl::scans::ScanResult r = set.finish();     // DICOM grouped into series, sorted
//   for (const nl::scans::Volume& v : r.volumes)
//     for (size_t z = 0; z < v.slices(); ++z)
//       std::vector<uint8_t> grey = v.slice_grey8(z, v.default_window());
//   for (const nl::scans::Problem& p : r.problems) ...   // files left out, and why
//
// Nothing here prints or returns patient-identifying attributes: ScanInfo holds only what is
// safe to show (see there). Errors are nl::scans::ScanError (a std::invalid_argument) whose
// message names the file's problem: the transfer syntax UID and name it cannot decode, the tag
// that is missing or inconsistent, the budget a dimension breaks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nl::scans {

struct ScanError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Budgets, checked from the header before anything is allocated.
inline constexpr size_t kMaxSide = 8192;                // columns, rows
inline constexpr size_t kMaxSlices = 4096;              // frames, series files, NIfTI slices
inline constexpr size_t kMaxVoxels = 128u * 1024 * 1024; // per volume (512 MB as float)
inline constexpr size_t kMaxInflatedBytes = 1u << 30;    // .nii.gz and deflated DICOM

// What a file looks like from its first bytes (and, for NIfTI only, its name).
enum class Kind {
  dicom,     // Part-10 ("DICM" at 128) or a raw data set whose first tags parse
  dicomdir,  // a media directory (CD/DVD export): no pixels, skipped quietly
  nifti,     // NIfTI-1/2 single file (.nii), possibly gzip-compressed (.nii.gz)
  other,     // anything else (JPEG, PNG, text...): not ours
};
Kind sniff(std::span<const uint8_t> bytes, std::string_view name);
const char* kind_name(Kind kind);

// A VOI window. LINEAR is DICOM PS3.3 C.11.2.1.2.1 (what radiology viewers drag);
// LINEAR_EXACT and SIGMOID are its other two functions, used when the file says so.
enum class WindowFunction { linear, linear_exact, sigmoid };
struct Window {
  double center = 0, width = 1;
  WindowFunction function = WindowFunction::linear;
};
// The grey level (0..255) of a real-world value under a window.
uint8_t apply_window(double value, const Window& w);

// What is safe to show about a scan. Never: names, IDs, dates of birth, addresses,
// institution, physicians, accession number, free-text comments.
struct ScanInfo {
  std::string format;               // "DICOM", "NIfTI-1", "NIfTI-2" (+ " (gzip)")
  std::string transfer_syntax;      // DICOM: "<UID> (<name>)"; empty for NIfTI
  std::string modality;             // DICOM (0008,0060), e.g. "MR"
  std::string series_description;   // DICOM (0008,103E)
  std::string photometric;          // DICOM photometric interpretation as stored
  std::string data_type;            // e.g. "uint16 (12 bits stored)", "int16", "float32"
  size_t width = 0, height = 0, slices = 0;
  double spacing[3] = {0, 0, 0};    // mm: between columns, between rows, between slices (0: unknown)
  double slice_thickness = 0;       // mm (0: unknown)
  std::optional<Window> file_window;  // DICOM's first VOI window; NIfTI cal_min..cal_max
  Window auto_window;               // 0.5th..99.5th percentile (slice: one image; else volume)
  double minimum = 0, maximum = 0;  // real-world intensity range
  bool inverted = false;            // MONOCHROME1: low values are bright (applied after the window)
  std::string orientation;          // how slices are ordered/displayed, in words
  std::vector<std::string> notes;   // what the reader decided that a user should know
};

// One scan: a single image, a multi-frame object, a series or a NIfTI volume, with its voxels
// in display order (see README "Scanner formats" for the rules).
struct Volume {
  std::string source;               // the file, or the directory holding the series
  bool single_image = false;        // one single-frame DICOM: results have no slice index
  ScanInfo info;
  std::vector<float> voxels;        // real-world values, [slice][row][column]
  std::vector<std::string> slice_files;  // DICOM: the file each slice came from

  size_t width() const { return info.width; }
  size_t height() const { return info.height; }
  size_t slices() const { return info.slices; }
  const Window& default_window() const;  // the file's window, else the automatic one
  // Slice z through window w, MONOCHROME1 inverted: width*height grey levels, row-major.
  std::vector<uint8_t> slice_grey8(size_t z, const Window& w) const;
};

struct Problem {
  std::string file;
  std::string message;
};

struct ScanResult {
  std::vector<Volume> volumes;       // in the order their first file was added
  std::vector<Problem> problems;     // files left out, and why
  std::vector<std::string> skipped;  // DICOMDIRs: left out quietly
};

// Collects files (a drop, a folder, a command line) and reads them. DICOM objects are grouped
// into series by SeriesInstanceUID and ordered along the slice normal; each NIfTI file and each
// multi-frame object is its own volume.
class ScanSet {
 public:
  ScanSet();
  ~ScanSet();
  ScanSet(ScanSet&&) noexcept;
  ScanSet& operator=(ScanSet&&) noexcept;
  // Reads one file. Returns its kind; a file that fails to read becomes a Problem and is left
  // out (Kind::other files are left out too, as a Problem "not a DICOM or NIfTI file").
  Kind add(std::string name, std::span<const uint8_t> bytes);
  ScanResult finish();

 private:
  struct Pending;
  std::vector<Pending> pending_;
  ScanResult result_;
  std::vector<size_t> order_;  // for each pending DICOM, the order it was added in
};

// Single-file readers (ScanSet uses them). They throw ScanError.
Volume read_nifti(std::span<const uint8_t> bytes, std::string name);
// A DICOM object as a volume of its frames (one slice for a single-frame object).
Volume read_dicom(std::span<const uint8_t> bytes, std::string name);

}  // namespace nl::scans
