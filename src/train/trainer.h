// Trainer: mini-batch training of a Model on a Dataset with AdamW or SGD, a warm-up + cosine
// learning-rate schedule, augmentation, per-epoch validation, best-epoch tracking and
// checkpoints that resume exactly. No filesystem and no signals: callers (the CLI, the
// browser) decide where checkpoints and the best model go, and set the cancel flag.
//
//   Trainer trainer(rt, model, data, split.train, split.validation, options);
//   TrainCallbacks callbacks;
//   callbacks.on_best = [&](const Model& best, const EpochRecord&) { save_it(best); };
//   trainer.run(callbacks, &cancel_flag);
//
// Its parts: options.h (the recipe, the epoch record), batches.h (assembling a batch),
// evaluate.h (validation, batch-norm recalibration), checkpoint.h (the checkpoint format).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/runtime.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/optimizer.h"
#include "train/options.h"

namespace nl {

struct BatchProgress {
  size_t epoch = 0, epochs = 0;   // epoch is 1-based
  size_t batch = 0, batches = 0;  // batch is 1-based: batches done in this epoch
  double loss = 0.0, accuracy = 0.0;  // running means over this epoch so far
  double images_per_second = 0.0;     // this epoch so far
  double seconds = 0.0;               // since the epoch began
};

// What one optimisation step did (Trainer::step).
struct StepResult {
  double loss = 0.0;   // the batch's mean loss (smoothed; with mixup, the blend of both terms)
  size_t correct = 0;  // images predicted as their label (with mixup, the dominant label)
  double lr = 0.0;     // the learning rate the optimizer stepped with
  // Wall time of the step's phases, so that bench-train can say where the time goes.
  double batch_seconds = 0.0;      // assembly, augmentation, mixup
  double forward_seconds = 0.0;    // forward in training mode and the loss
  double backward_seconds = 0.0;
  double optimizer_seconds = 0.0;  // the optimizer step and the weight average
};

struct TrainCallbacks {
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
  // The model has just become the best so far (its state at the end of that epoch).
  std::function<void(const Model&, const EpochRecord&)> on_best;
  // The end of an epoch, after on_best: a good moment to write trainer.checkpoint().
  std::function<void()> on_checkpoint;
};

enum class TrainStatus { finished, cancelled };

class Trainer {
 public:
  // Sets Layer::frozen from options.trainable_layers. Throws std::invalid_argument when the
  // model does not fit the data (classes, input size) or the options are invalid.
  Trainer(Runtime& rt, Model& model, const Dataset& data, std::vector<size_t> train,
          std::vector<size_t> validation, TrainOptions options);

  // Trains the remaining epochs. Between batches, a set cancel flag abandons the epoch in
  // progress and returns cancelled (the model then holds a partly trained epoch; the last
  // checkpoint and the best model written by the callbacks are what to keep). With
  // ema_decay, on_epoch/on_best see the model holding the averaged weights, and after a
  // finished run the model keeps them.
  TrainStatus run(const TrainCallbacks& callbacks, const std::atomic<bool>* cancel = nullptr);

  // Checkpoint of the state after the last completed epoch (call from on_checkpoint or after
  // run): model tensors, optimizer state, and the state as metadata. `extra` is stored as is.
  std::vector<uint8_t> checkpoint(const nlohmann::json& extra = nlohmann::json::object()) const;
  // Continues from a checkpoint whose model this trainer was built on. Throws
  // std::invalid_argument when the checkpoint's options differ from this trainer's.
  void resume(const Checkpoint& checkpoint);

  // One optimisation step on the given training items: batch assembly (augmented, mixed up),
  // forward, loss, backward, an optimizer step at the scheduled learning rate and the weight
  // average. `epoch` (1-based) and `batch` (0-based within it) seed the augmentation and
  // mixup and name the step when the loss is not finite (std::runtime_error). run() trains
  // with it; called directly (bench-train), it touches no epoch bookkeeping. forward_ms and
  // backward_ms, when given, get each layer's time added (Model::forward and backward).
  StepResult step(std::span<const size_t> items, size_t epoch, size_t batch,
                  std::vector<double>* forward_ms = nullptr, std::vector<double>* backward_ms = nullptr);

  const TrainOptions& options() const { return options_; }
  size_t epochs_done() const { return history_.size(); }
  const std::vector<EpochRecord>& history() const { return history_; }
  int best_epoch() const { return best_epoch_; }  // 1-based; 0 before any epoch
  uint64_t steps() const { return optimizer_.steps(); }
  size_t batches_per_epoch() const;
  const LrSchedule& schedule() const { return schedule_; }

  // The options and per-epoch figures as JSON, for the model's training record.
  nlohmann::json record() const;

  // Copies the parameters of the best epoch (as validated: averaged with ema_decay) into
  // `model` (same architecture). False when no epoch has completed, or when resumed from a
  // checkpoint that did not hold them and no better epoch came since.
  bool copy_best_into(Model& model) const;

 private:
  bool train_epoch(const TrainCallbacks& callbacks, const std::atomic<bool>* cancel,
                   EpochRecord& record);
  void update_ema();
  void swap_ema();  // exchanges the model's parameter values with the averaged ones

  Runtime& rt_;
  Model& model_;
  const Dataset& data_;
  std::vector<size_t> train_, validation_;
  TrainOptions options_;
  Optimizer optimizer_;
  LrSchedule schedule_;
  std::vector<EpochRecord> history_;
  int best_epoch_ = 0;
  std::map<std::string, Tensor> ema_;  // by parameter name; empty unless options_.ema_decay > 0
  bool swapped_ = false;               // the model holds the averaged weights, ema_ the live ones
  std::map<std::string, Tensor> best_; // parameter values of the best epoch, by name
  // Work buffers, kept between batches.
  Tensor input_, dlogits_;
  std::vector<int> labels_;
  Tensor dlogits_mixed_;           // mixup: the gradient of the reversed batch's term
  std::vector<int> labels_mixed_;  // mixup: the labels of the reversed batch
};

}  // namespace nl
