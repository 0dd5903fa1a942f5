// Loading a folder-per-class image set from disk into a Dataset (native; the browser
// builds its Dataset from bytes instead).
//
//   DIR/glioma/*.jpg, DIR/meningioma/*.png, ...   class = folder name
//
// Files are read in sorted path order (so splits are reproducible), decoded in parallel on
// the runtime's thread pool, and resized once to the model's input size. Unreadable files
// are recorded in Dataset::skipped() and the rest still load.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "formats/file_io.h"  // read_file_bytes, write_file_atomic: users of this header rely on it
#include "train/dataset.h"

namespace nl {

struct ImageFolderOptions {
  size_t width = 0, height = 0;
  bool crop_to_head = false;  // as the model's Preprocessing says
  // Empty: the classes are the class folders, sorted by name. Otherwise the class order to
  // use: every folder must be one of these (else std::invalid_argument naming it); a class
  // without a folder simply has no images.
  std::vector<std::string> classes;
  std::function<void(size_t done, size_t total)> progress;  // may be empty
};

// Throws std::invalid_argument when dir does not exist, is not a folder, has no class
// folders, or has a folder that is not among the given classes.
Dataset load_image_folder(Runtime& rt, const std::string& dir, const ImageFolderOptions& options);

}  // namespace nl
