// Dataset: labelled grey images held in memory at the model's input size, decoded and
// resized once (the same decode + resize as nl::preprocess, so training sees exactly what
// classification sees). The train/validation split is stratified by class and keeps
// byte-identical files together, so twins never leak from training into validation.
// No filesystem here (the browser fills a Dataset from bytes); see image_folder.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/image.h"

namespace nl {

// 64-bit FNV-1a of the bytes, finished with the length and a SplitMix64 mix. Equal bytes
// give equal hashes; files are grouped as twins by this value.
uint64_t content_hash(std::span<const uint8_t> bytes);

struct DatasetItem {
  std::string path;  // as given (the folder loader: the path below the data folder)
  int label = 0;     // index into Dataset::classes
  uint64_t hash = 0; // content_hash of the file's bytes
};

class Dataset {
 public:
  // crop_to_head: images are cropped to the head before resizing (Preprocessing).
  Dataset(std::vector<std::string> classes, size_t width, size_t height, bool crop_to_head = false);

  const std::vector<std::string>& classes() const { return classes_; }
  size_t width() const { return width_; }
  size_t height() const { return height_; }
  bool crop_to_head() const { return crop_to_head_; }
  size_t size() const { return items_.size(); }
  const DatasetItem& item(size_t i) const { return items_.at(i); }
  const float* image(size_t i) const { return pixels_.data() + i * width_ * height_; }
  std::vector<size_t> class_counts() const;

  // Files that could not be used, as "path: reason".
  const std::vector<std::string>& skipped() const { return skipped_; }
  void add_skipped(std::string path, const std::string& reason);

  // Decodes and resizes one file's bytes and appends it. On a decoding error the file is
  // recorded in skipped() and false is returned; a label outside the classes throws
  // std::invalid_argument.
  bool add(std::string path, int label, std::span<const uint8_t> bytes);
  // Appends an image already decoded and resized (width*height grey values in [0,1]).
  void add_decoded(std::string path, int label, uint64_t hash, std::span<const float> pixels);

  // Mean and standard deviation of all pixels of the given items (grey, [0,1]).
  void pixel_statistics(std::span<const size_t> indices, double& mean, double& stddev) const;

 private:
  std::vector<std::string> classes_;
  size_t width_, height_;
  bool crop_to_head_;
  std::vector<DatasetItem> items_;
  std::vector<float> pixels_;
  std::vector<std::string> skipped_;
};

// File bytes to a grey image. Empty means decode_grey (the formats image.h reads); the CLI
// passes one that also reads single-frame DICOM files.
using GreyDecoder = std::function<GreyImage(std::span<const uint8_t>)>;

// Decodes bytes to grey (with `decode`), crops to the head if asked and resizes to
// width x height into out (width*height floats), as nl::preprocess does. Returns an empty
// string on success, else the reason.
std::string decode_for_dataset(std::span<const uint8_t> bytes, size_t width, size_t height,
                               bool crop_to_head, float* out, const GreyDecoder& decode = {});

struct Split {
  std::vector<size_t> train, validation;  // item indices, ascending
  size_t duplicate_groups = 0;   // groups of 2+ byte-identical files
  size_t duplicate_files = 0;    // files in those groups
  size_t cross_class_groups = 0; // identical files found under different classes
};

// Groups items by content hash; per class (a group belongs to the class of its first item),
// shuffles its groups with a generator seeded from (seed, class) and moves whole groups to
// validation until it holds round(val_fraction * class size) files (it may exceed that by
// less than one group). val_fraction in [0, 0.9], else std::invalid_argument.
Split split_dataset(const Dataset& data, double val_fraction, uint64_t seed);

// Cross-validation: the same twin groups and per-class shuffle, each class's groups dealt in
// turn to the fold with the fewest of that class's files; fold `fold` of `folds` is the
// validation side. folds in 2..20 and fold < folds, else std::invalid_argument. Over
// fold = 0..folds-1 every item is in validation exactly once.
Split split_fold(const Dataset& data, size_t folds, size_t fold, uint64_t seed);

// {"seed","val_fraction","classes","counts":{...},"duplicate_groups",...,
//  "train":[paths],"validation":[paths]}: written next to a trained model so the
// validation files can be found again.
nlohmann::json split_to_json(const Dataset& data, const Split& split, double val_fraction,
                             uint64_t seed);

// A digest of which paths are in validation, to check that a resumed run splits alike.
uint64_t split_digest(const Dataset& data, const Split& split);

}  // namespace nl
