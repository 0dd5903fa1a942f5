// Trainer: mini-batch training of a Model on a Dataset with AdamW or SGD, a warm-up + cosine
// learning-rate schedule, augmentation, per-epoch validation, best-epoch tracking and
// checkpoints that resume exactly. No filesystem and no signals: callers (the CLI, the
// browser) decide where checkpoints and the best model go, and set the cancel flag.
//
//   Trainer trainer(rt, model, data, split.train, split.validation, options);
//   TrainCallbacks callbacks;
//   callbacks.on_best = [&](const Model& best, const EpochRecord&) { save_it(best); };
//   trainer.run(callbacks, &cancel_flag);
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/runtime.h"
#include "train/augment.h"
#include "train/dataset.h"
#include "train/optimizer.h"

namespace nl {

struct TrainOptions {
  size_t epochs = 30;
  size_t batch_size = 32;
  double lr = 2e-3;            // peak learning rate (after warm-up)
  double min_lr = 1e-5;        // at the end of the cosine decay
  double warmup_epochs = 1.0;
  OptimizerKind optimizer = OptimizerKind::adamw;
  double momentum = 0.9;       // SGD's (Nesterov) momentum; unused by AdamW
  double weight_decay = 0.05;  // decoupled (p -= lr*wd*p), conv/dense weights only
  double label_smoothing = 0.1;
  double max_grad_norm = 0.0;  // 0: no clipping
  uint64_t seed = 1;
  AugmentOptions augment = AugmentOptions::mri();
  size_t trainable_layers = 0; // 0: train everything; K: only the last K layers with parameters
                               // on every path to the output (each branch of an ensemble)
  size_t eval_batch_size = 64;
  // > 0: keep an exponential moving average of the parameters (batch-norm statistics
  // included), ema = d*ema + (1-d)*value after every step with d = min(ema_decay,
  // (1+t)/(10+t)); validation, the best model and the end result use the averaged weights.
  double ema_decay = 0.0;
  // > 0: mixup. Each batch is blended with a reversed copy of itself, x = l*x + (1-l)*x_rev,
  // with l ~ Beta(mixup, mixup), and the loss is l*CE(y) + (1-l)*CE(y_rev): a regulariser for
  // small data sets, where a network otherwise learns the training images by heart.
  double mixup = 0.0;
  // > 0: before each validation, the batch-norm running statistics are recomputed as the
  // average batch statistics of this many un-augmented training images (a fixed seeded
  // subset, in batches of batch_size). The running averages made during training follow
  // augmented images (rotated black corners, brightness and contrast jitter) and lag the
  // weights; on clean images they are measurably off. 0: keep the running averages.
  size_t bn_recalibration_images = 0;

  // Throws std::invalid_argument naming the option and the allowed range.
  void validate() const;
};
nlohmann::json to_json(const TrainOptions& o);
// Mixup's blend of a batch [N,...] with itself reversed: x_i = mix*x_i + (1-mix)*x_{N-1-i}.
void mix_with_reversed(Tensor& batch, double mix);
TrainOptions train_options_from_json(const nlohmann::json& j);  // throws std::invalid_argument

struct EpochRecord {
  size_t epoch = 0;            // 1-based
  double lr = 0.0;             // at the epoch's last step
  double train_loss = 0.0, train_accuracy = 0.0;  // over the epoch (augmented, smoothed loss)
  double val_loss = 0.0, val_accuracy = 0.0;      // meaningful when has_validation
  bool has_validation = false;
  double seconds = 0.0;        // wall time of the epoch, validation included
  bool best = false;           // the best epoch so far when it ended
};
nlohmann::json to_json(const EpochRecord& r);
EpochRecord epoch_record_from_json(const nlohmann::json& j);

struct BatchProgress {
  size_t epoch = 0, epochs = 0;   // epoch is 1-based
  size_t batch = 0, batches = 0;  // batch is 1-based: batches done in this epoch
  double loss = 0.0, accuracy = 0.0;  // running means over this epoch so far
  double images_per_second = 0.0;     // this epoch so far
  double seconds = 0.0;               // since the epoch began
};

// The result of running a model over some items in inference mode.
struct Evaluation {
  std::vector<size_t> items;               // dataset indices, in the order evaluated
  std::vector<int> predicted;              // per item
  std::vector<std::vector<float>> probabilities;  // per item, softmax over the classes
  double loss = 0.0;                       // mean cross-entropy (no smoothing)
  double accuracy = 0.0;
  std::vector<std::vector<size_t>> confusion;  // [true class][predicted class]
  bool cancelled = false;
};

// model's classes must be the dataset's classes, and its input size the dataset's images.
// Checks cancel (if given) between batches and then returns with cancelled = true.
Evaluation evaluate(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                    size_t batch_size = 64, const std::atomic<bool>* cancel = nullptr);

// Sets the running statistics of every batch-norm layer that is not frozen to its average
// batch statistics over the given items (un-augmented, in consecutive batches of batch_size;
// a last, smaller batch is left out unless it is the only one). Returns the batches used.
size_t recalibrate_batch_norm(Runtime& rt, Model& model, const Dataset& data,
                              std::span<const size_t> items, size_t batch_size);

// Fills the [n,H,W,C] batch input from dataset items, with augmentation when `augment` is set
// (seeded per (seed, epoch, item), so the result does not depend on batch order or threads).
void make_batch(Runtime& rt, const Model& model, const Dataset& data, std::span<const size_t> items,
                const AugmentOptions* augment, uint64_t seed, size_t epoch, Tensor& input);

struct TrainCallbacks {
  std::function<void(const BatchProgress&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
  // The model has just become the best so far (its state at the end of that epoch).
  std::function<void(const Model&, const EpochRecord&)> on_best;
  // The end of an epoch, after on_best: a good moment to write trainer.checkpoint().
  std::function<void()> on_checkpoint;
};

enum class TrainStatus { finished, cancelled };

// A checkpoint read back: the model (parameters as at the end of an epoch) and the
// trainer's state, to pass to Trainer::resume after building the Trainer on that model.
struct Checkpoint {
  Model model;
  TrainOptions options;
  nlohmann::json state;   // epochs done, history, best, optimizer steps, ...
  nlohmann::json extra;   // what the caller stored
  std::map<std::string, Tensor> optimizer;
  std::map<std::string, Tensor> ema;  // averaged parameters by name (ema_decay > 0)
  std::map<std::string, Tensor> best; // parameters of the best epoch by name
};
// Validates like load_model (the model part goes through it) and throws
// std::invalid_argument naming what is wrong.
Checkpoint load_checkpoint(std::span<const uint8_t> bytes);

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
