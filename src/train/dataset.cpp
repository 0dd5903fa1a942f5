#include "train/dataset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "formats/image.h"
#include "core/rng.h"

namespace nl {

uint64_t content_hash(std::span<const uint8_t> bytes) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a offset basis
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001B3ull;  // FNV prime
  }
  return mix64(h ^ mix64(bytes.size()));
}

Dataset::Dataset(std::vector<std::string> classes, size_t width, size_t height, bool crop_to_head)
    : classes_(std::move(classes)), width_(width), height_(height), crop_to_head_(crop_to_head) {
  if (classes_.empty()) throw std::invalid_argument("dataset: no classes");
  if (width_ == 0 || height_ == 0 || width_ > 4096 || height_ > 4096)
    throw std::invalid_argument("dataset: image size " + std::to_string(width_) + "x" +
                                std::to_string(height_) + " is outside 1..4096");
}

std::vector<size_t> Dataset::class_counts() const {
  std::vector<size_t> counts(classes_.size(), 0);
  for (const DatasetItem& it : items_) ++counts[it.label];
  return counts;
}

void Dataset::add_skipped(std::string path, const std::string& reason) {
  skipped_.push_back(std::move(path) + ": " + reason);
}

std::string decode_for_dataset(std::span<const uint8_t> bytes, size_t width, size_t height,
                               bool crop_to_head, float* out, const GreyDecoder& decode) {
  try {
    const GreyImage image =
        prepare_grey(decode ? decode(bytes) : decode_grey(bytes), width, height, crop_to_head);
    std::copy(image.pixels.begin(), image.pixels.end(), out);
    return {};
  } catch (const std::exception& e) {
    std::string reason = e.what();
    return reason.empty() ? "unreadable image" : reason;
  }
}

bool Dataset::add(std::string path, int label, std::span<const uint8_t> bytes) {
  std::vector<float> pixels(width_ * height_);
  std::string error = decode_for_dataset(bytes, width_, height_, crop_to_head_, pixels.data());
  if (!error.empty()) {
    add_skipped(std::move(path), error);
    return false;
  }
  add_decoded(std::move(path), label, content_hash(bytes), pixels);
  return true;
}

void Dataset::add_decoded(std::string path, int label, uint64_t hash,
                          std::span<const float> pixels) {
  if (label < 0 || static_cast<size_t>(label) >= classes_.size())
    throw std::invalid_argument("dataset: label " + std::to_string(label) + " of '" + path +
                                "' is outside the " + std::to_string(classes_.size()) +
                                " classes");
  if (pixels.size() != width_ * height_)
    throw std::invalid_argument("dataset: '" + path + "' has " + std::to_string(pixels.size()) +
                                " pixels, expected " + std::to_string(width_ * height_));
  items_.push_back({std::move(path), label, hash});
  pixels_.insert(pixels_.end(), pixels.begin(), pixels.end());
}

void Dataset::pixel_statistics(std::span<const size_t> indices, double& mean,
                               double& stddev) const {
  double sum = 0.0, sum_sq = 0.0;
  const size_t n = width_ * height_;
  for (size_t i : indices) {
    const float* p = image(i);
    for (size_t k = 0; k < n; ++k) {
      sum += p[k];
      sum_sq += static_cast<double>(p[k]) * p[k];
    }
  }
  const double count = static_cast<double>(indices.size() * n);
  if (count == 0) {
    mean = 0.0;
    stddev = 1.0;
    return;
  }
  mean = sum / count;
  stddev = std::sqrt(std::max(sum_sq / count - mean * mean, 0.0));
  if (stddev < 1e-6) stddev = 1.0;  // a constant data set: leave the scale alone
}

namespace {

// Items grouped as byte-identical twins, in order of first appearance (deterministic for a
// given item order; the folder loader sorts paths), with the split's twin counts filled in.
std::vector<std::vector<size_t>> twin_groups(const Dataset& data, Split& split) {
  std::map<uint64_t, size_t> group_of_hash;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < data.size(); ++i) {
    auto [it, inserted] = group_of_hash.emplace(data.item(i).hash, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  for (const std::vector<size_t>& members : groups) {
    if (members.size() < 2) continue;
    ++split.duplicate_groups;
    split.duplicate_files += members.size();
    for (size_t i : members)
      if (data.item(i).label != data.item(members[0]).label) {
        ++split.cross_class_groups;
        break;
      }
  }
  return groups;
}

// Per class (a group belongs to the class of its first item), the class's groups in an order
// shuffled by a generator seeded from (seed, class).
std::vector<std::vector<size_t>> shuffled_groups_of_class(const Dataset& data,
                                                          const std::vector<std::vector<size_t>>& groups,
                                                          uint64_t seed) {
  std::vector<std::vector<size_t>> groups_of_class(data.classes().size());
  for (size_t g = 0; g < groups.size(); ++g)
    groups_of_class[data.item(groups[g][0]).label].push_back(g);
  for (size_t c = 0; c < groups_of_class.size(); ++c)
    Rng(derive_seed(seed, {0x5B117ull, c})).shuffle(groups_of_class[c]);
  return groups_of_class;
}

Split split_by_validation_mask(const std::vector<bool>& in_validation, Split split) {
  for (size_t i = 0; i < in_validation.size(); ++i)
    (in_validation[i] ? split.validation : split.train).push_back(i);
  return split;
}

}  // namespace

Split split_dataset(const Dataset& data, double val_fraction, uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction <= 0.9))
    throw std::invalid_argument("validation fraction " + std::to_string(val_fraction) +
                                " is outside [0, 0.9]");
  Split split;
  const std::vector<std::vector<size_t>> groups = twin_groups(data, split);
  std::vector<bool> in_validation(data.size(), false);
  for (const std::vector<size_t>& class_groups : shuffled_groups_of_class(data, groups, seed)) {
    size_t class_size = 0;
    for (size_t g : class_groups) class_size += groups[g].size();
    const auto target = static_cast<size_t>(std::llround(val_fraction * class_size));
    size_t taken = 0;
    for (size_t g : class_groups) {
      if (taken >= target) break;
      for (size_t i : groups[g]) in_validation[i] = true;
      taken += groups[g].size();
    }
  }
  return split_by_validation_mask(in_validation, std::move(split));
}

Split split_fold(const Dataset& data, size_t folds, size_t fold, uint64_t seed) {
  if (folds < 2 || folds > 20)
    throw std::invalid_argument("fold count " + std::to_string(folds) + " is outside 2..20");
  if (fold >= folds)
    throw std::invalid_argument("fold " + std::to_string(fold) + " is outside 0.." +
                                std::to_string(folds - 1));
  Split split;
  const std::vector<std::vector<size_t>> groups = twin_groups(data, split);
  std::vector<bool> in_validation(data.size(), false);
  for (const std::vector<size_t>& class_groups : shuffled_groups_of_class(data, groups, seed)) {
    // Each group (in shuffled order) goes to the fold holding the fewest of this class's
    // files so far, the lowest-numbered on a tie: folds differ by less than one group.
    std::vector<size_t> filled(folds, 0);
    for (size_t g : class_groups) {
      const size_t k = static_cast<size_t>(std::min_element(filled.begin(), filled.end()) - filled.begin());
      filled[k] += groups[g].size();
      if (k == fold)
        for (size_t i : groups[g]) in_validation[i] = true;
    }
  }
  return split_by_validation_mask(in_validation, std::move(split));
}

nlohmann::json split_to_json(const Dataset& data, const Split& split, double val_fraction,
                             uint64_t seed) {
  nlohmann::json j;
  j["seed"] = seed;
  j["val_fraction"] = val_fraction;
  j["classes"] = data.classes();
  auto counts = [&](const std::vector<size_t>& indices) {
    std::vector<size_t> per_class(data.classes().size(), 0);
    for (size_t i : indices) ++per_class[data.item(i).label];
    nlohmann::json c = nlohmann::json::object();
    for (size_t k = 0; k < per_class.size(); ++k) c[data.classes()[k]] = per_class[k];
    return c;
  };
  j["train_counts"] = counts(split.train);
  j["validation_counts"] = counts(split.validation);
  j["duplicate_groups"] = split.duplicate_groups;
  j["duplicate_files"] = split.duplicate_files;
  j["cross_class_duplicate_groups"] = split.cross_class_groups;
  j["skipped"] = data.skipped();
  nlohmann::json train = nlohmann::json::array(), val = nlohmann::json::array();
  for (size_t i : split.train) train.push_back(data.item(i).path);
  for (size_t i : split.validation) val.push_back(data.item(i).path);
  j["train"] = std::move(train);
  j["validation"] = std::move(val);
  return j;
}

uint64_t split_digest(const Dataset& data, const Split& split) {
  uint64_t h = mix64(split.validation.size() ^ (static_cast<uint64_t>(split.train.size()) << 32));
  for (size_t i : split.validation) {
    const DatasetItem& it = data.item(i);
    h = mix64(h ^ it.hash);
    for (char ch : it.path) h = mix64(h ^ static_cast<uint8_t>(ch));
  }
  return h;
}

}  // namespace nl
