#include "features/finetune.h"

#include <atomic>
#include <stdexcept>

namespace nl {

void FineTuneOptions::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("fine-tune: " + what); };
  if (epochs == 0 || epochs > 200) fail("epochs " + std::to_string(epochs) + " is outside 1..200");
  if (batch_size == 0 || batch_size > 256)
    fail("batch size " + std::to_string(batch_size) + " is outside 1..256");
  if (!(lr > 0.0 && lr <= 1.0)) fail("learning rate " + std::to_string(lr) + " is outside (0, 1]");
  if (!(validation_fraction >= 0.0 && validation_fraction <= 0.5))
    fail("validation fraction " + std::to_string(validation_fraction) + " is outside [0, 0.5]");
}

TrainOptions FineTuneOptions::train_options() const {
  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = batch_size;
  t.lr = lr;
  t.min_lr = lr / 100.0;
  t.warmup_epochs = 0.0;  // the weights are already trained: no warm-up needed
  t.weight_decay = 0.01;
  t.label_smoothing = 0.05;
  t.seed = seed;
  t.augment = augment ? AugmentOptions::mri() : AugmentOptions{};
  // As the shipped model was trained: batch norms that learn get statistics of clean images
  // before each validation, not the running averages of augmented ones.
  t.bn_recalibration_images = augment ? 2048 : 0;
  t.trainable_layers = trainable_layers;
  t.eval_batch_size = 32;
  return t;
}

FineTuneSession::FineTuneSession(const Model& model)
    : data_(model.classes(), model.architecture().width, model.architecture().height,
            model.preprocessing().crop_to_head) {}

std::string FineTuneSession::add_image(std::string path, const std::string& class_name,
                                       std::span<const uint8_t> bytes) {
  const auto& classes = data_.classes();
  int label = -1;
  for (size_t i = 0; i < classes.size(); ++i)
    if (classes[i] == class_name) label = static_cast<int>(i);
  if (label < 0) {
    std::string known;
    for (const std::string& c : classes) known += (known.empty() ? "" : ", ") + c;
    throw std::invalid_argument("fine-tune: unknown class '" + class_name + "' (the model's classes: " +
                                known + ")");
  }
  const size_t before = data_.skipped().size();
  if (data_.add(path, label, bytes)) return "";
  // Dataset records "path: reason"; hand back just the reason.
  const std::string& entry = data_.skipped().size() > before ? data_.skipped().back() : path;
  const std::string prefix = path + ": ";
  return entry.rfind(prefix, 0) == 0 ? entry.substr(prefix.size()) : entry;
}

FineTuneResult FineTuneSession::run(Runtime& rt, const Model& base, const FineTuneOptions& options,
                                    const FineTuneCallbacks& callbacks) {
  options.validate();
  if (base.classes() != data_.classes())
    throw std::invalid_argument("fine-tune: the model's classes differ from the session's");
  if (data_.size() == 0) throw std::invalid_argument("fine-tune: no usable images were added");
  tuned_.reset();

  const Split split = split_dataset(data_, options.validation_fraction, options.seed);
  if (split.train.empty())
    throw std::invalid_argument("fine-tune: every image was held out for validation; add more images");

  FineTuneResult result;
  result.train_images = split.train.size();
  result.validation_images = split.validation.size();
  result.has_validation = !split.validation.empty();

  Model work = base.clone();
  if (result.has_validation) result.before = evaluate(rt, work, data_, split.validation, 32);

  Trainer trainer(rt, work, data_, split.train, split.validation, options.train_options());
  std::atomic<bool> cancel{false};
  std::unique_ptr<Model> best;
  TrainCallbacks hooks;
  hooks.on_batch = [&](const BatchProgress& p) {
    if (callbacks.on_batch && !callbacks.on_batch(p)) cancel = true;
  };
  hooks.on_epoch = [&](const EpochRecord& r) {
    if (callbacks.on_epoch) callbacks.on_epoch(r);
  };
  hooks.on_best = [&](const Model& m, const EpochRecord&) { best = std::make_unique<Model>(m.clone()); };

  const TrainStatus status = trainer.run(hooks, &cancel);
  result.history = trainer.history();
  result.best_epoch = trainer.best_epoch();
  if (status == TrainStatus::cancelled) {
    result.cancelled = true;
    return result;
  }
  if (!best) best = std::make_unique<Model>(work.clone());

  nlohmann::json& record = best->training_record();
  nlohmann::json run_record = trainer.record();
  run_record["validation_fraction"] = options.validation_fraction;
  run_record["classes_counts"] = data_.class_counts();
  if (!record.is_object()) record = nlohmann::json::object();
  if (!record.contains("fine_tune") || !record["fine_tune"].is_array())
    record["fine_tune"] = nlohmann::json::array();
  record["fine_tune"].push_back(std::move(run_record));

  if (result.has_validation) result.after = evaluate(rt, *best, data_, split.validation, 32);
  tuned_ = std::move(best);
  return result;
}

}  // namespace nl
