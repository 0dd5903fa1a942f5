// Loading a labelled image folder from disk into a Dataset (native; the browser builds its
// Dataset from bytes instead).
//
//   DIR/glioma/*.jpg, DIR/Training/No Tumor/*.png, ...
//
// A file's class is the nearest enclosing folder (below DIR) that names one, by the rule in
// train/labelled_folders.h, which the page follows too. Files under no such folder, and
// unreadable ones, are recorded in Dataset::skipped() with the reason and the rest still load;
// hidden files and folders and OS clutter (Thumbs.db, desktop.ini) are passed over.
// Files are read in sorted path order (so splits are reproducible), decoded in parallel on
// the runtime's thread pool, and resized once to the model's input size.
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
  // Empty: the classes are DIR's sub-folders, sorted by name. Otherwise the classes (and
  // their order) to use, e.g. the model's; a class without a folder simply has no images.
  std::vector<std::string> classes;
  std::function<void(size_t done, size_t total)> progress;  // may be empty
  GreyDecoder decode;  // empty: decode_grey (see decode_for_dataset)
};

// Throws std::invalid_argument when dir does not exist, is not a folder, has no sub-folders,
// or (given classes) has no folder at any depth that names one of them.
Dataset load_image_folder(Runtime& rt, const std::string& dir, const ImageFolderOptions& options);

}  // namespace nl
