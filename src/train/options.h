// The recipe of a training run (TrainOptions) and the figures of one epoch (EpochRecord),
// with their JSON forms: checkpoints store both, and a trained model's record shows them.
#pragma once
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "train/augment.h"
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

}  // namespace nl
