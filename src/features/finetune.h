// Fine-tuning a loaded model on a user's labelled images (the page's "Fine-tune" view, run in
// the browser's worker; nothing here knows about the browser). A session collects images
// from bytes, holds part of them out for validation (stratified, byte-identical twins kept
// on one side), measures validation accuracy before, trains a copy of the model with the
// Trainer, keeps the copy from its best epoch and measures it again. The model passed in is
// never modified, so a cancelled or failed run leaves the model in use untouched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/runtime.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/trainer.h"

namespace nl {

struct FineTuneOptions {
  size_t epochs = 5;
  size_t batch_size = 16;
  double lr = 1e-3;                 // peak learning rate; cosine decay to lr/100
  size_t trainable_layers = 2;      // the last K layers with parameters (of each branch) learn; 0 = all
  double validation_fraction = 0.2; // held out for the before/after accuracy
  bool augment = true;              // the flips/rotations/... the shipped model trained with
  uint64_t seed = 1;

  // Throws std::invalid_argument naming the option and its allowed range.
  void validate() const;
  TrainOptions train_options() const;
};

struct FineTuneResult {
  bool cancelled = false;
  size_t train_images = 0, validation_images = 0;
  bool has_validation = false;
  Evaluation before, after;           // on the validation images (empty without them)
  std::vector<EpochRecord> history;   // completed epochs
  int best_epoch = 0;                 // 1-based; 0 when no epoch completed
};

struct FineTuneCallbacks {
  // After every batch; return false to cancel (checked before the next batch).
  std::function<bool(const BatchProgress&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
};

class FineTuneSession {
 public:
  // Images will be sized for `model`'s input and labelled with its classes.
  explicit FineTuneSession(const Model& model);

  // Decodes one labelled image. Returns "" when it was added, else why it was skipped (it is
  // then listed in data().skipped()). An unknown class name throws std::invalid_argument.
  std::string add_image(std::string path, const std::string& class_name,
                        std::span<const uint8_t> bytes);
  const Dataset& data() const { return data_; }

  // Trains a copy of `base` (same classes and input size as the session). On success (not
  // cancelled, at least one epoch) tuned() is the copy from the best epoch, with the run
  // recorded under "fine_tune" in its training record.
  FineTuneResult run(Runtime& rt, const Model& base, const FineTuneOptions& options,
                     const FineTuneCallbacks& callbacks = {});

  const Model* tuned() const { return tuned_.get(); }

 private:
  Dataset data_;
  std::unique_ptr<Model> tuned_;
};

}  // namespace nl
