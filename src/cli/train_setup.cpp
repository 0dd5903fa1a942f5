// neurolens train, setting a run up (cli/train_command.h).
#include "cli/train_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/scan_inputs.h"
#include "features/network_catalogue.h"
#include "formats/model_file.h"
#include "train/image_folder.h"

namespace nl::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The validation images as DIR/<class>/<file> symlinks, so `neurolens evaluate --data DIR`
// evaluates exactly them. DIR is only ever replaced when it is one we made (marker file).
void write_validation_links(const std::string& dir, const std::string& data_dir, const Dataset& data,
                            const Split& split) {
  const fs::path root(dir);
  const fs::path marker = root / ".neurolens-validation-links";
  std::error_code ec;
  if (fs::exists(root, ec)) {
    if (!fs::exists(marker, ec) && !fs::is_empty(root, ec))
      throw std::runtime_error("--val-dir '" + dir +
                               "' exists and was not made by neurolens train; not touching it");
    fs::remove_all(root);
  }
  fs::create_directories(root);
  for (size_t i : split.validation) {
    const fs::path link = root / data.item(i).path;
    fs::create_directories(link.parent_path());
    fs::create_symlink(fs::absolute(fs::path(data_dir) / data.item(i).path), link);
  }
  write_text_atomic(marker.string(), "validation images of a neurolens train split\n");
}

// "lr 0.001 (checkpoint 0.002), augment.flip false (checkpoint true)": the options that differ.
std::string option_differences(const nlohmann::json& now, const nlohmann::json& then,
                               const std::string& prefix = "") {
  std::string out;
  for (const auto& [key, value] : now.items()) {
    const std::string name = prefix + key;
    if (!then.contains(key)) {
      out += (out.empty() ? "" : ", ") + name + " (not in the checkpoint)";
    } else if (value.is_object() && then[key].is_object()) {
      const std::string inner = option_differences(value, then[key], name + ".");
      if (!inner.empty()) out += (out.empty() ? "" : ", ") + inner;
    } else if (value != then[key]) {
      out += (out.empty() ? "" : ", ") + name + " " + value.dump() + " (checkpoint " + then[key].dump() + ")";
    }
  }
  return out;
}

}  // namespace

std::optional<Checkpoint> open_checkpoint(const TrainSettings& s) {
  std::error_code ec;
  if (!s.resume || !fs::exists(s.checkpoint_path, ec)) return std::nullopt;
  const std::string& path = s.checkpoint_path;
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  std::optional<Checkpoint> checkpoint;
  try {
    checkpoint.emplace(load_checkpoint(bytes));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("cannot resume from '" + path + "': " + e.what());
  }
  nlohmann::json asked = to_json(s.options), made = to_json(checkpoint->options);
  asked["val_fraction"] = s.val_fraction;
  made["val_fraction"] = checkpoint->extra.value("val_fraction", s.val_fraction);
  asked["folds"] = s.folds;
  made["folds"] = checkpoint->extra.value("folds", size_t{0});
  asked["fold"] = s.fold;
  made["fold"] = checkpoint->extra.value("fold", size_t{0});
  asked["split_seed"] = s.split_seed;
  made["split_seed"] = checkpoint->extra.value("split_seed", checkpoint->options.seed);
  if (!s.init_path) {
    asked["arch"] = s.arch_name;
    made["arch"] = checkpoint->extra.value("arch", s.arch_name);
    if (s.input_size != 0) {
      asked["input_size"] = s.input_size;
      made["input_size"] = checkpoint->model.architecture().width;
    }
    asked["crop"] = s.crop_name;
    made["crop"] = checkpoint->model.preprocessing().crop_to_head ? "head" : "none";
  }
  const std::string diff = option_differences(asked, made);
  if (!diff.empty())
    throw std::runtime_error("cannot resume from '" + path + "': it was made with other options: " +
                             diff + ". Rerun with the checkpoint's options, or delete it to start afresh");
  std::fprintf(stderr, "resuming from %s (%zu of %zu epochs done)\n", path.c_str(),
               checkpoint->state.at("history").size(), checkpoint->options.epochs);
  return checkpoint;
}

Dataset load_data(Runtime& rt, const TrainSettings& s, const Model* base, Clock::time_point started) {
  ImageFolderOptions load;
  load.crop_to_head = s.crop_name == "head";
  if (base) {
    load.crop_to_head = base->preprocessing().crop_to_head;
    load.width = base->architecture().width;
    load.classes = base->classes();
    if (base->architecture().width != base->architecture().height)
      throw std::runtime_error("only square model inputs are supported by train");
  } else {
    load.width = s.input_size != 0 ? s.input_size : make_architecture(s.arch_name, 0, 2).width;
  }
  load.height = load.width;
  load.decode = decode_image_or_dicom;  // single-frame DICOM files beside the images
  const bool tty = isatty(STDERR_FILENO) == 1;
  load.progress = [tty](size_t done, size_t total) {
    if (tty) std::fprintf(stderr, "\r\033[Kloading images %zu/%zu", done, total);
  };
  Dataset data = load_image_folder(rt, s.data_dir, load);
  if (tty) std::fprintf(stderr, "\r\033[K");
  const double load_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::fprintf(stderr, "loaded %zu images of %zu classes at %zux%zu%s in %.1f s", data.size(),
               data.classes().size(), load.width, load.height,
               load.crop_to_head ? " (cropped to the head)" : "", load_seconds);
  if (!data.skipped().empty()) std::fprintf(stderr, "; skipped %zu files (unreadable, or under no class folder):", data.skipped().size());
  std::fprintf(stderr, "\n");
  for (size_t i = 0; i < data.skipped().size() && i < 20; ++i)
    std::fprintf(stderr, "  skipped %s\n", data.skipped()[i].c_str());
  if (data.skipped().size() > 20) std::fprintf(stderr, "  ... and %zu more\n", data.skipped().size() - 20);
  return data;
}

SplitChoice split_data(const Dataset& data, const TrainSettings& s, const Checkpoint* checkpoint) {
  SplitChoice c;
  c.seed = checkpoint ? checkpoint->extra.value("split_seed", checkpoint->options.seed) : s.split_seed;
  c.fraction = checkpoint ? checkpoint->extra.value("val_fraction", s.val_fraction) : s.val_fraction;
  c.folds = s.folds;  // open_checkpoint refused a checkpoint of another fold
  c.fold = s.fold;
  c.split = c.folds ? split_fold(data, c.folds, c.fold, c.seed) : split_dataset(data, c.fraction, c.seed);
  c.digest = split_digest(data, c.split);
  if (checkpoint && checkpoint->extra.value("split_digest", uint64_t{0}) != c.digest)
    throw std::runtime_error("cannot resume: the data in '" + s.data_dir +
                             "' no longer splits as it did when the checkpoint was made "
                             "(files added, removed or changed); start afresh without --resume");
  const Split& split = c.split;
  nlohmann::json split_json = split_to_json(data, split, c.fraction, c.seed);
  if (c.folds) {
    split_json["folds"] = c.folds;
    split_json["held_out_fold"] = c.fold;
  }
  write_text_atomic(s.stem + ".split.json", split_json.dump(1) + "\n");
  const std::string held_out = c.folds ? "fold " + std::to_string(c.fold) + " of " + std::to_string(c.folds)
                                      : std::to_string(std::lround(100.0 * c.fraction)) + "%";
  std::fprintf(stderr,
               "split: %zu train, %zu %s (%s, seed %llu); %zu groups of byte-identical "
               "files (%zu files) kept on one side%s\n",
               split.train.size(), split.validation.size(), c.folds ? "held out" : "validation", held_out.c_str(),
               static_cast<unsigned long long>(c.seed), split.duplicate_groups, split.duplicate_files,
               split.cross_class_groups
                   ? (", " + std::to_string(split.cross_class_groups) + " of them under several classes").c_str()
                   : "");
  if (s.val_dir) write_validation_links(*s.val_dir, s.data_dir, data, split);
  return c;
}

Model make_model(const TrainSettings& s, const Dataset& data, const Split& split,
                 std::optional<Checkpoint>& checkpoint, std::optional<Model>& init_model,
                 std::string& label) {
  std::optional<Model> model;
  label = s.arch_name;
  if (checkpoint) {
    model.emplace(std::move(checkpoint->model));
    label = checkpoint->extra.value("arch", std::string("?"));
  } else if (init_model) {
    model.emplace(std::move(*init_model));
    label = "fine-tuned from " + fs::path(*s.init_path).filename().string();
  } else {
    double mean = 0, stddev = 1;
    data.pixel_statistics(split.train, mean, stddev);
    Preprocessing pre{static_cast<float>(mean), static_cast<float>(stddev), data.crop_to_head()};
    model.emplace(make_architecture(s.arch_name, data.width(), data.classes().size()), data.classes(), pre);
    model->init_params(s.options.seed);
  }
  model->training_record() = nlohmann::json::object();
  std::fprintf(stderr, "model: %s, %zux%zu input, %zu parameters (%.2f MB as %s), %.1f MFLOP per image\n",
               label.c_str(), data.width(), data.height(), model->parameter_count(),
               static_cast<double>(model->parameter_count() * dtype_bytes(s.weights)) / 1e6,
               dtype_name(s.weights), model->flops_per_image() / 1e6);
  return std::move(*model);
}

}  // namespace nl::cli
