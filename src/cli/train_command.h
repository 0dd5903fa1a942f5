// The pieces of `neurolens train`: cli/train.cpp parses the command line, cli/train_setup.cpp
// finds where the model comes from, loads and splits the data and makes the model, and
// cli/train_run.cpp trains with stopping on Ctrl-C or SIGTERM, progress on the console and
// the files written along the way (the best model with its training record, the checkpoint,
// the curves).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/model.h"
#include "core/runtime.h"
#include "formats/safetensors.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/options.h"

namespace nl::cli {

// The command line, parsed and checked.
struct TrainSettings {
  std::string data_dir, out, checkpoint_path;
  std::string stem;  // out without .safetensors: the split, curves and checkpoint go beside it
  std::string arch_name, crop_name;
  size_t input_size = 0;  // --input-size; 0: the architecture's
  std::optional<std::string> init_path, val_dir;  // --init, --val-dir
  bool resume = false;
  double val_fraction = 0.2;
  // Cross-validation (--folds K --fold I): fold I of K is held out, only to be evaluated
  // afterwards; it does not pick an epoch, so the last one is kept. folds 0: off.
  size_t folds = 0, fold = 0;
  uint64_t split_seed = 1;  // as asked; a resumed run keeps its checkpoint's
  Dtype weights = Dtype::f32;
  size_t threads = 0;
  TrainOptions options;
};

// ----------------------------------------------------------------------------- setup

// The checkpoint to continue from (with --resume, when it exists). Resuming continues the
// same run: other options would silently mean another recipe, so they are refused.
std::optional<Checkpoint> open_checkpoint(const TrainSettings& s);

// The images, decoded and resized once (in parallel) at the input size, classes and cropping
// of the model to continue (`base`), else as asked.
Dataset load_data(Runtime& rt, const TrainSettings& s, const Model* base,
                  std::chrono::steady_clock::time_point started);

struct SplitChoice {
  Split split;
  double fraction = 0.0;
  size_t folds = 0, fold = 0;
  uint64_t seed = 0, digest = 0;
};
// The train/validation split, written beside the model (and as --val-dir links). When
// resuming, the checkpoint's fraction and seed win: same seed, same split, checked by digest.
SplitChoice split_data(const Dataset& data, const TrainSettings& s, const Checkpoint* checkpoint);

// The model to train: the checkpoint's, the --init model, or a new one (normalised by the
// training images' statistics); `label` is how the training record names it.
Model make_model(const TrainSettings& s, const Dataset& data, const Split& split,
                 std::optional<Checkpoint>& checkpoint, std::optional<Model>& init_model,
                 std::string& label);

// ----------------------------------------------------------------------------- run

// After this, the first SIGINT or SIGTERM sets stop_requested() (training stops between
// batches, everything written stays intact); a second one ends the program at once.
void install_stop_handlers();
const std::atomic<bool>& stop_requested();

// A run set up: everything training needs once the data is loaded and split and the model made.
struct TrainRun {
  Runtime& rt;
  const Dataset& data;
  std::string data_dir;
  const Split& split;
  double split_fraction = 0.0;
  size_t folds = 0, fold = 0;               // cross-validation fold (folds 0: a plain split)
  uint64_t split_seed = 0, split_digest = 0;
  Model& model;
  std::string arch_label;                   // "resnet-s", "fine-tuned from base.safetensors", ...
  TrainOptions options;                     // the checkpoint's when resuming
  const Checkpoint* resumed_from = nullptr;
  std::string out, stem, checkpoint_path;   // stem: out without .safetensors
  Dtype weights = Dtype::f32;               // how `out` stores them
  std::chrono::steady_clock::time_point started;
};

// Trains, writing as it goes. Returns the exit code: 0, or 130 when a signal stopped it.
int train_and_write(const TrainRun& run);

}  // namespace nl::cli
