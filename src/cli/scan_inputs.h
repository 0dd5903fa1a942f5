// What the command line accepts wherever it takes images: image files, DICOM files whatever
// their name (.dcm, .IMA, none), NIfTI volumes (.nii, .nii.gz) and directories of them, searched
// recursively (DICOM files grouped into series; a DICOMDIR is skipped quietly).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/image.h"
#include "core/model.h"
#include "formats/scans/scan.h"
#include "train/image_folder.h"

namespace nl::cli {

// One thing to classify: an image file, or a scan (a single DICOM image, a multi-frame object,
// a series, a NIfTI volume).
struct Input {
  std::string image;                    // the image file's path, when this is an image
  std::optional<scans::Volume> volume;  // the scan, otherwise
};

struct Inputs {
  std::vector<Input> items;              // in command-line order; a directory's in path order
  std::vector<scans::Problem> problems;  // scan files that could not be read, and why
  std::vector<std::string> passed_over;  // files in directories that are neither images nor scans
};

// Reads every scan (images are only listed: the caller reads and decodes them). Throws
// std::invalid_argument for a path that does not exist.
Inputs collect_inputs(const std::vector<std::string>& paths);

// A slice of a scan as the model's preprocessing takes it: through the file's window (else the
// automatic one), as 8-bit grey.
GreyImage slice_image(const scans::Volume& volume, size_t slice);

// An image file or a single-frame DICOM file to grey: the decoder `evaluate` and `train` load
// their class folders with.
GreyImage decode_image_or_dicom(std::span<const uint8_t> bytes);

// How to load a labelled folder for `model`: its input size, classes and cropping, with
// decode_image_or_dicom (evaluate, calibrate).
ImageFolderOptions folder_options_for(const Model& model);

}  // namespace nl::cli
