#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "core/rng.h"
#include "train/batches.h"
#include "train/evaluate.h"
#include "train/loss.h"

namespace nl {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Each layer's distance from the output counted in layers with parameters: the fewest such
// layers (itself included) on any path from it to the last layer; SIZE_MAX when no path
// leads there. A chain's dense head is 1, the layer with parameters below it 2, ...; the
// branches of an ensemble count alike, so "the last K" means the last K of every branch.
std::vector<size_t> parameter_depths(const Model& model) {
  const Architecture named = explicit_inputs(model.architecture());
  const size_t n = named.layers.size();
  std::vector<size_t> depth(n, SIZE_MAX);
  for (size_t i = n; i-- > 0;) {
    size_t below = i + 1 == n ? 0 : SIZE_MAX;
    for (size_t j = i + 1; j < n; ++j)
      for (const std::string& in : named.layers[j].inputs)
        if (in == named.layers[i].name) below = std::min(below, depth[j]);
    if (below == SIZE_MAX) continue;
    bool has_params = false;
    for (const Param& p : model.layer(i).params()) has_params = has_params || p.trainable;
    depth[i] = below + (has_params ? 1 : 0);
  }
  return depth;
}

// Whether epoch r beats the best so far (null: none yet): validation accuracy, ties by loss.
bool better(const EpochRecord& r, const EpochRecord* best) {
  if (best == nullptr) return true;
  if (!r.has_validation) return true;  // nothing to compare on: keep the latest
  if (r.val_accuracy != best->val_accuracy) return r.val_accuracy > best->val_accuracy;
  return r.val_loss < best->val_loss;
}

// Whether the options change images at all; if not, batches skip the augmentation pass.
bool augments(const AugmentOptions& a) {
  return a.flip || a.rotation_deg > 0 || a.shift > 0 || a.scale > 0 || a.brightness > 0 ||
         a.contrast > 0;
}

}  // namespace

Trainer::Trainer(Runtime& rt, Model& model, const Dataset& data, std::vector<size_t> train,
                 std::vector<size_t> validation, TrainOptions options)
    : rt_(rt), model_(model), data_(data), train_(std::move(train)),
      validation_(std::move(validation)), options_(options) {
  options_.validate();
  check_model_fits(model_, data_, "train");
  if (train_.empty()) throw std::invalid_argument("train: no training images");
  for (const std::vector<size_t>* set : {&train_, &validation_})
    for (size_t i : *set)
      if (i >= data_.size())
        throw std::invalid_argument("train: item " + std::to_string(i) + " is outside the " +
                                    std::to_string(data_.size()) + " images");

  // Fine-tuning: only the last K layers that have trainable parameters learn.
  std::vector<size_t> with_params;
  for (size_t i = 0; i < model_.layer_count(); ++i) {
    Layer& layer = model_.layer(i);
    layer.frozen = false;
    for (const Param& p : layer.params())
      if (p.trainable) {
        with_params.push_back(i);
        break;
      }
  }
  if (options_.trainable_layers > 0) {
    if (options_.trainable_layers > with_params.size())
      throw std::invalid_argument("train: " + std::to_string(options_.trainable_layers) +
                                  " trainable layers requested but the model has only " +
                                  std::to_string(with_params.size()) + " layers with parameters");
    const std::vector<size_t> depth = parameter_depths(model_);
    for (size_t i : with_params) model_.layer(i).frozen = depth[i] > options_.trainable_layers;
  }

  OptimizerOptions optimizer;
  optimizer.kind = options_.optimizer;
  optimizer.momentum = options_.momentum;
  optimizer.weight_decay = options_.weight_decay;
  optimizer.max_grad_norm = options_.max_grad_norm;
  optimizer_ = Optimizer(optimizer);
  const size_t per_epoch = batches_per_epoch();
  schedule_.base_lr = options_.lr;
  schedule_.min_lr = options_.min_lr;
  schedule_.warmup_steps = static_cast<size_t>(std::llround(options_.warmup_epochs * per_epoch));
  schedule_.total_steps = options_.epochs * per_epoch;
}

size_t Trainer::batches_per_epoch() const {
  // Full batches only (a last, smaller batch would give batch-norm noisier statistics and
  // make the operators reshape twice per epoch); every image still comes round because the
  // order is reshuffled each epoch. A set smaller than one batch is one batch.
  const size_t batch = std::min(options_.batch_size, train_.size());
  return std::max<size_t>(1, train_.size() / batch);
}

TrainStatus Trainer::run(const TrainCallbacks& callbacks, const std::atomic<bool>* cancel) {
  const bool averaging = options_.ema_decay > 0.0;
  while (history_.size() < options_.epochs) {
    const auto start = Clock::now();
    EpochRecord record;
    if (!train_epoch(callbacks, cancel, record)) return TrainStatus::cancelled;
    if (averaging) swap_ema();  // validate, report and keep the averaged weights
    if (options_.bn_recalibration_images > 0) {
      std::vector<size_t> subset = train_;
      Rng(derive_seed(options_.seed, {0xB4ull})).shuffle(subset);
      subset.resize(std::min(subset.size(), options_.bn_recalibration_images));
      recalibrate_batch_norm(rt_, model_, data_, subset, options_.batch_size);
    }
    if (!validation_.empty()) {
      const Evaluation ev = evaluate(rt_, model_, data_, validation_, options_.eval_batch_size, cancel);
      if (ev.cancelled) {
        if (averaging) swap_ema();
        return TrainStatus::cancelled;
      }
      record.has_validation = true;
      record.val_loss = ev.loss;
      record.val_accuracy = ev.accuracy;
    }
    record.seconds = seconds_since(start);
    const EpochRecord* best = best_epoch_ > 0 ? &history_[best_epoch_ - 1] : nullptr;
    record.best = better(record, best);
    history_.push_back(record);
    if (record.best) {
      best_epoch_ = static_cast<int>(record.epoch);
      for (ParamRef& p : model_.parameters()) best_[p.name] = p.param->value;
    }
    if (callbacks.on_epoch) callbacks.on_epoch(record);
    if (record.best && callbacks.on_best) callbacks.on_best(model_, record);
    const bool last = history_.size() == options_.epochs;
    if (averaging && !last) swap_ema();  // back to the live weights to go on training
    if (callbacks.on_checkpoint) callbacks.on_checkpoint();
  }
  if (averaging && !swapped_ && !ema_.empty()) swap_ema();  // resumed after the last epoch
  return TrainStatus::finished;
}

void Trainer::update_ema() {
  const double t = static_cast<double>(optimizer_.steps());
  const double d = std::min(options_.ema_decay, (1.0 + t) / (10.0 + t));
  for (ParamRef& p : model_.parameters()) {
    const Tensor& value = p.param->value;
    auto [it, inserted] = ema_.try_emplace(p.name, value);
    if (inserted) continue;
    float* e = it->second.data();
    const float* v = value.data();
    for (size_t i = 0, n = value.size(); i < n; ++i)
      e[i] = static_cast<float>(d * e[i] + (1.0 - d) * v[i]);
  }
}

void Trainer::swap_ema() {
  for (ParamRef& p : model_.parameters()) {
    auto it = ema_.find(p.name);
    if (it != ema_.end()) std::swap(p.param->value, it->second);
  }
  model_.params_changed();
  swapped_ = !swapped_;
}

StepResult Trainer::step(std::span<const size_t> items, size_t epoch, size_t batch, std::vector<double>* forward_ms,
                         std::vector<double>* backward_ms) {
  StepResult result;
  auto lap_start = Clock::now();
  auto lap = [&lap_start] {
    const double seconds = seconds_since(lap_start);
    lap_start = Clock::now();
    return seconds;
  };
  make_batch(rt_, model_, data_, items, augments(options_.augment) ? &options_.augment : nullptr,
             options_.seed, epoch, input_);
  labels_.clear();
  for (size_t i : items) labels_.push_back(data_.item(i).label);
  double mix = 1.0;  // weight of the batch's own images and labels
  if (options_.mixup > 0.0 && items.size() > 1) {
    mix = Rng(derive_seed(options_.seed, {0x313ull, epoch, batch})).beta_symmetric(options_.mixup);
    mix_with_reversed(input_, mix);
    labels_mixed_.assign(labels_.rbegin(), labels_.rend());
  }
  result.batch_seconds = lap();

  model_.zero_grad();
  model_.forward(rt_, input_, /*training=*/true, forward_ms);
  const Tensor& logits = model_.logits();
  const float smoothing = static_cast<float>(options_.label_smoothing);
  double loss = softmax_cross_entropy(logits, labels_, smoothing, &dlogits_);
  if (mix < 1.0) {
    const double other = softmax_cross_entropy(logits, labels_mixed_, smoothing, &dlogits_mixed_);
    loss = mix * loss + (1.0 - mix) * other;
    float* d = dlogits_.data();
    const float* e = dlogits_mixed_.data();
    for (size_t i = 0; i < dlogits_.size(); ++i)
      d[i] = static_cast<float>(mix * d[i] + (1.0 - mix) * e[i]);
  }
  if (!std::isfinite(loss))
    throw std::runtime_error("training diverged: the loss is " + std::to_string(loss) +
                             " at epoch " + std::to_string(epoch) + ", batch " +
                             std::to_string(batch + 1) + " (lower the learning rate)");
  result.loss = loss;
  result.correct = count_correct(logits, mix >= 0.5 ? labels_ : labels_mixed_);
  result.forward_seconds = lap();

  model_.backward(rt_, dlogits_, /*keep_all_gradients=*/false, backward_ms);
  result.backward_seconds = lap();

  result.lr = schedule_.at(optimizer_.steps());
  optimizer_.step(rt_, model_, result.lr);
  model_.prepare_operators(rt_);
  if (options_.ema_decay > 0.0) update_ema();
  result.optimizer_seconds = lap();
  return result;
}

bool Trainer::train_epoch(const TrainCallbacks& callbacks, const std::atomic<bool>* cancel,
                          EpochRecord& record) {
  const auto start = Clock::now();
  const size_t epoch = history_.size() + 1;
  std::vector<size_t> order = train_;
  Rng(derive_seed(options_.seed, {0x5E0ull, epoch})).shuffle(order);
  const size_t batch = std::min(options_.batch_size, order.size());
  const size_t batches = batches_per_epoch();

  double loss_sum = 0.0;
  size_t correct = 0, seen = 0;
  double lr = 0.0;
  for (size_t b = 0; b < batches; ++b) {
    if (cancel && cancel->load()) return false;
    const StepResult s = step(std::span<const size_t>(order.data() + b * batch, batch), epoch, b);
    loss_sum += s.loss * static_cast<double>(batch);
    correct += s.correct;
    seen += batch;
    lr = s.lr;
    if (callbacks.on_batch) {
      BatchProgress p;
      p.epoch = epoch;
      p.epochs = options_.epochs;
      p.batch = b + 1;
      p.batches = batches;
      p.loss = loss_sum / static_cast<double>(seen);
      p.accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      p.seconds = seconds_since(start);
      p.images_per_second = static_cast<double>(seen) / std::max(p.seconds, 1e-9);
      callbacks.on_batch(p);
    }
  }
  record.epoch = epoch;
  record.lr = lr;
  record.train_loss = loss_sum / static_cast<double>(seen);
  record.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
  return true;
}

bool Trainer::copy_best_into(Model& model) const {
  if (best_.empty()) return false;
  std::vector<ParamRef> params = model.parameters();
  for (ParamRef& p : params) {
    auto it = best_.find(p.name);
    if (it == best_.end() || it->second.shape() != p.param->value.shape())
      throw std::invalid_argument("copy_best_into: the model's parameter '" + p.name +
                                  "' does not match the trained model's");
  }
  for (ParamRef& p : params) p.param->value = best_.at(p.name);
  model.params_changed();
  return true;
}

nlohmann::json Trainer::record() const {
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochRecord& r : history_) epochs.push_back(to_json(r));
  return {{"options", to_json(options_)},
          {"epochs", std::move(epochs)},
          {"best_epoch", best_epoch_},
          {"steps", optimizer_.steps()},
          {"batches_per_epoch", batches_per_epoch()},
          {"train_images", train_.size()},
          {"validation_images", validation_.size()}};
}

}  // namespace nl
