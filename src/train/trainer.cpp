#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <pthreadpool.h>

#include "formats/image.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "train/loss.h"
#include "core/rng.h"

namespace nl {

namespace {

constexpr const char* kCheckpointFormat = "neurolens-checkpoint/1";
constexpr const char* kModelFormat = "neurolens/1";  // model_io.h
const std::string kEmaPrefix = "trainer.ema.";
const std::string kBestPrefix = "trainer.best.";

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

void check_model_fits(const Model& model, const Dataset& data, const char* what) {
  if (model.classes() != data.classes()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& c : v) s += (s.empty() ? "" : ", ") + c;
      return s;
    };
    throw std::invalid_argument(std::string(what) + ": the model's classes (" +
                                list(model.classes()) + ") differ from the data's (" +
                                list(data.classes()) + ")");
  }
  const Architecture& a = model.architecture();
  if (a.width != data.width() || a.height != data.height())
    throw std::invalid_argument(std::string(what) + ": the model takes " +
                                std::to_string(a.width) + "x" + std::to_string(a.height) +
                                " images but the data was loaded at " +
                                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  if (model.preprocessing().crop_to_head != data.crop_to_head())
    throw std::invalid_argument(std::string(what) + ": the model " +
                                (model.preprocessing().crop_to_head ? "crops" : "does not crop") +
                                " images to the head but the data was loaded " +
                                (data.crop_to_head() ? "cropped" : "uncropped"));
}

struct BatchJob {
  const Dataset* data;
  const Architecture* arch;
  const Preprocessing* pre;
  std::span<const size_t> items;
  const AugmentOptions* augment;
  uint64_t seed;
  size_t epoch;
  std::vector<GreyImage>* slots;
  float* input;
  std::atomic<bool> failed{false};
  std::string error;
};

void make_one(void* context, size_t k) {
  auto* job = static_cast<BatchJob*>(context);
  try {
    const Dataset& data = *job->data;
    const size_t item = job->items[k];
    GreyImage& slot = (*job->slots)[k];
    slot.width = data.width();
    slot.height = data.height();
    slot.pixels.resize(data.width() * data.height());
    if (job->augment) {
      Rng rng(derive_seed(job->seed, {0xA06ull, job->epoch, item}));
      const AugmentParams p = sample_augment(*job->augment, data.width(), data.height(), rng);
      augment_image(data.image(item), data.width(), data.height(), p, slot.pixels.data());
    } else {
      std::copy(data.image(item), data.image(item) + slot.pixels.size(), slot.pixels.begin());
    }
    const size_t per_image = data.width() * data.height() * job->arch->channels;
    to_input(slot, *job->arch, *job->pre, job->input + k * per_image);
  } catch (const std::exception& e) {
    if (!job->failed.exchange(true)) job->error = e.what();
  }
}

bool better(const EpochRecord& r, const EpochRecord* best) {
  if (best == nullptr) return true;
  if (!r.has_validation) return true;  // nothing to compare on: keep the latest
  if (r.val_accuracy != best->val_accuracy) return r.val_accuracy > best->val_accuracy;
  return r.val_loss < best->val_loss;
}

}  // namespace

// ----------------------------------------------------------------------------- options

void TrainOptions::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (epochs == 0 || epochs > 10000) fail("epochs " + std::to_string(epochs) + " is outside 1..10000");
  if (batch_size == 0 || batch_size > 4096)
    fail("batch size " + std::to_string(batch_size) + " is outside 1..4096");
  if (eval_batch_size == 0 || eval_batch_size > 4096)
    fail("evaluation batch size " + std::to_string(eval_batch_size) + " is outside 1..4096");
  if (!(lr > 0.0 && lr <= 10.0)) fail("learning rate " + std::to_string(lr) + " is outside (0, 10]");
  if (!(min_lr >= 0.0 && min_lr <= lr))
    fail("minimum learning rate " + std::to_string(min_lr) + " is outside [0, lr]");
  if (!(warmup_epochs >= 0.0 && warmup_epochs <= static_cast<double>(epochs)))
    fail("warm-up epochs " + std::to_string(warmup_epochs) + " is outside [0, epochs]");
  if (!(momentum >= 0.0 && momentum < 1.0))
    fail("momentum " + std::to_string(momentum) + " is outside [0, 1)");
  if (!(weight_decay >= 0.0 && weight_decay < 1.0))
    fail("weight decay " + std::to_string(weight_decay) + " is outside [0, 1)");
  if (!(label_smoothing >= 0.0 && label_smoothing < 1.0))
    fail("label smoothing " + std::to_string(label_smoothing) + " is outside [0, 1)");
  if (!(max_grad_norm >= 0.0 && std::isfinite(max_grad_norm)))
    fail("max gradient norm " + std::to_string(max_grad_norm) + " must be >= 0");
  if (!(ema_decay >= 0.0 && ema_decay < 1.0))
    fail("EMA decay " + std::to_string(ema_decay) + " is outside [0, 1)");
  if (!(mixup >= 0.0 && mixup <= 2.0))
    fail("mixup alpha " + std::to_string(mixup) + " is outside [0, 2]");
  if (bn_recalibration_images > 1000000)
    fail("batch-norm recalibration images " + std::to_string(bn_recalibration_images) +
         " is outside 0..1000000");
  augment.validate();
}

nlohmann::json to_json(const TrainOptions& o) {
  return {{"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"lr", o.lr},
          {"min_lr", o.min_lr},
          {"warmup_epochs", o.warmup_epochs},
          {"optimizer", optimizer_name(o.optimizer)},
          {"momentum", o.momentum},
          {"weight_decay", o.weight_decay},
          {"label_smoothing", o.label_smoothing},
          {"max_grad_norm", o.max_grad_norm},
          {"seed", o.seed},
          {"trainable_layers", o.trainable_layers},
          {"eval_batch_size", o.eval_batch_size},
          {"ema_decay", o.ema_decay},
          {"mixup", o.mixup},
          {"bn_recalibration_images", o.bn_recalibration_images},
          {"augment",
           {{"flip", o.augment.flip},
            {"rotation_deg", o.augment.rotation_deg},
            {"shift", o.augment.shift},
            {"scale", o.augment.scale},
            {"brightness", o.augment.brightness},
            {"contrast", o.augment.contrast}}}};
}

TrainOptions train_options_from_json(const nlohmann::json& j) {
  try {
    TrainOptions o;
    o.epochs = j.at("epochs").get<size_t>();
    o.batch_size = j.at("batch_size").get<size_t>();
    o.lr = j.at("lr").get<double>();
    o.min_lr = j.at("min_lr").get<double>();
    o.warmup_epochs = j.at("warmup_epochs").get<double>();
    // absent in checkpoints and models made before SGD existed, which all used AdamW
    o.optimizer = parse_optimizer(j.value("optimizer", std::string("adamw")));
    o.momentum = j.value("momentum", 0.9);
    o.weight_decay = j.at("weight_decay").get<double>();
    o.label_smoothing = j.at("label_smoothing").get<double>();
    o.max_grad_norm = j.at("max_grad_norm").get<double>();
    o.seed = j.at("seed").get<uint64_t>();
    o.trainable_layers = j.at("trainable_layers").get<size_t>();
    o.eval_batch_size = j.at("eval_batch_size").get<size_t>();
    o.ema_decay = j.value("ema_decay", 0.0);  // absent in checkpoints made before it existed
    o.mixup = j.value("mixup", 0.0);          // likewise
    o.bn_recalibration_images = j.value("bn_recalibration_images", size_t{0});  // likewise
    const nlohmann::json& a = j.at("augment");
    o.augment.flip = a.at("flip").get<bool>();
    o.augment.rotation_deg = a.at("rotation_deg").get<double>();
    o.augment.shift = a.at("shift").get<double>();
    o.augment.scale = a.at("scale").get<double>();
    o.augment.brightness = a.at("brightness").get<double>();
    o.augment.contrast = a.at("contrast").get<double>();
    o.validate();
    return o;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("training options: ") + e.what());
  }
}

nlohmann::json to_json(const EpochRecord& r) {
  nlohmann::json j = {{"epoch", r.epoch},
                      {"lr", r.lr},
                      {"train_loss", r.train_loss},
                      {"train_accuracy", r.train_accuracy},
                      {"seconds", r.seconds},
                      {"best", r.best}};
  if (r.has_validation) {
    j["val_loss"] = r.val_loss;
    j["val_accuracy"] = r.val_accuracy;
  }
  return j;
}

EpochRecord epoch_record_from_json(const nlohmann::json& j) {
  try {
    EpochRecord r;
    r.epoch = j.at("epoch").get<size_t>();
    r.lr = j.at("lr").get<double>();
    r.train_loss = j.at("train_loss").get<double>();
    r.train_accuracy = j.at("train_accuracy").get<double>();
    r.seconds = j.at("seconds").get<double>();
    r.best = j.at("best").get<bool>();
    r.has_validation = j.contains("val_accuracy");
    if (r.has_validation) {
      r.val_loss = j.at("val_loss").get<double>();
      r.val_accuracy = j.at("val_accuracy").get<double>();
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("epoch record: ") + e.what());
  }
}

// ----------------------------------------------------------------------------- batches

void make_batch(Runtime& rt, const Model& model, const Dataset& data, std::span<const size_t> items,
                const AugmentOptions* augment, uint64_t seed, size_t epoch, Tensor& input) {
  const Architecture& arch = model.architecture();
  if (arch.width != data.width() || arch.height != data.height())
    throw std::invalid_argument("make_batch: the model takes " + std::to_string(arch.width) +
                                "x" + std::to_string(arch.height) + " images, the data holds " +
                                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  for (size_t i : items)
    if (i >= data.size())
      throw std::invalid_argument("make_batch: item " + std::to_string(i) + " is outside the " +
                                  std::to_string(data.size()) + " images");
  input.reshape({items.size(), arch.height, arch.width, arch.channels});
  std::vector<GreyImage> slots(items.size());
  BatchJob job;
  job.data = &data;
  job.arch = &arch;
  job.pre = &model.preprocessing();
  job.items = items;
  job.augment = augment;
  job.seed = seed;
  job.epoch = epoch;
  job.slots = &slots;
  job.input = input.data();
  pthreadpool_parallelize_1d(rt.threadpool(), make_one, &job, items.size(), 0);
  if (job.failed) throw std::invalid_argument("make_batch: " + job.error);
}

// ----------------------------------------------------------------------------- evaluation

Evaluation evaluate(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                    size_t batch_size, const std::atomic<bool>* cancel) {
  check_model_fits(model, data, "evaluate");
  if (batch_size == 0) throw std::invalid_argument("evaluate: batch size 0");
  const size_t classes = data.classes().size();
  Evaluation ev;
  ev.confusion.assign(classes, std::vector<size_t>(classes, 0));
  Tensor input;
  std::vector<int> labels;
  double loss_sum = 0.0;
  size_t correct = 0;
  for (size_t begin = 0; begin < items.size(); begin += batch_size) {
    if (cancel && cancel->load()) {
      ev.cancelled = true;
      break;
    }
    const std::span<const size_t> chunk = items.subspan(begin, std::min(batch_size, items.size() - begin));
    make_batch(rt, model, data, chunk, nullptr, 0, 0, input);
    model.forward(rt, input, /*training=*/false);
    const Tensor& logits = model.logits();
    labels.clear();
    for (size_t i : chunk) labels.push_back(data.item(i).label);
    loss_sum += softmax_cross_entropy(logits, labels) * static_cast<double>(chunk.size());
    const Tensor probs = softmax_rows(logits);
    const std::vector<int> predicted = argmax_rows(probs);
    for (size_t k = 0; k < chunk.size(); ++k) {
      ev.items.push_back(chunk[k]);
      ev.predicted.push_back(predicted[k]);
      ev.probabilities.emplace_back(probs.data() + k * classes, probs.data() + (k + 1) * classes);
      ++ev.confusion[labels[k]][predicted[k]];
      correct += predicted[k] == labels[k];
    }
  }
  if (!ev.items.empty()) {
    ev.loss = loss_sum / static_cast<double>(ev.items.size());
    ev.accuracy = static_cast<double>(correct) / static_cast<double>(ev.items.size());
  }
  return ev;
}

size_t recalibrate_batch_norm(Runtime& rt, Model& model, const Dataset& data,
                              std::span<const size_t> items, size_t batch_size) {
  check_model_fits(model, data, "batch-norm recalibration");
  if (batch_size == 0) throw std::invalid_argument("batch-norm recalibration: batch size 0");
  if (items.empty()) return 0;
  std::vector<Layer*> layers;  // those that learn statistics (batch norm), frozen ones excluded
  for (size_t i = 0; i < model.layer_count(); ++i)
    if (Layer& l = model.layer(i); !l.frozen && l.begin_statistics_average()) layers.push_back(&l);
  if (layers.empty()) return 0;
  const size_t batch = std::min(batch_size, items.size());
  size_t batches = 0;
  Tensor input;
  try {
    for (size_t begin = 0; begin + batch <= items.size(); begin += batch, ++batches) {
      make_batch(rt, model, data, items.subspan(begin, batch), nullptr, 0, 0, input);
      model.forward(rt, input, /*training=*/true);
    }
  } catch (...) {
    for (Layer* l : layers) l->abandon_statistics_average();
    throw;
  }
  for (Layer* l : layers) l->end_statistics_average();
  return batches;
}

// ----------------------------------------------------------------------------- trainer

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

// Mixup: image i becomes mix*x_i + (1-mix)*x_{n-1-i} (pairs swap, so no copy is needed).
void mix_with_reversed(Tensor& batch, double mix) {
  const size_t n = batch.dim(0), per = batch.size() / n;
  const float a = static_cast<float>(mix), b = static_cast<float>(1.0 - mix);
  for (size_t i = 0; i < n / 2; ++i) {
    float* x = batch.data() + i * per;
    float* y = batch.data() + (n - 1 - i) * per;
    for (size_t k = 0; k < per; ++k) {
      const float xi = x[k], yi = y[k];
      x[k] = a * xi + b * yi;
      y[k] = a * yi + b * xi;
    }
  }
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

bool Trainer::train_epoch(const TrainCallbacks& callbacks, const std::atomic<bool>* cancel,
                          EpochRecord& record) {
  const auto start = Clock::now();
  const size_t epoch = history_.size() + 1;
  std::vector<size_t> order = train_;
  Rng(derive_seed(options_.seed, {0x5E0ull, epoch})).shuffle(order);
  const size_t batch = std::min(options_.batch_size, order.size());
  const size_t batches = batches_per_epoch();
  const bool augmenting = options_.augment.flip || options_.augment.rotation_deg > 0 ||
                          options_.augment.shift > 0 || options_.augment.scale > 0 ||
                          options_.augment.brightness > 0 || options_.augment.contrast > 0;

  double loss_sum = 0.0;
  size_t correct = 0, seen = 0;
  double lr = 0.0;
  for (size_t b = 0; b < batches; ++b) {
    if (cancel && cancel->load()) return false;
    const std::span<const size_t> items(order.data() + b * batch, batch);
    make_batch(rt_, model_, data_, items, augmenting ? &options_.augment : nullptr,
               options_.seed, epoch, input_);
    labels_.clear();
    for (size_t i : items) labels_.push_back(data_.item(i).label);
    double mix = 1.0;  // weight of the batch's own images and labels
    if (options_.mixup > 0.0 && batch > 1) {
      mix = Rng(derive_seed(options_.seed, {0x313ull, epoch, b})).beta_symmetric(options_.mixup);
      mix_with_reversed(input_, mix);
      labels_mixed_.assign(labels_.rbegin(), labels_.rend());
    }

    model_.zero_grad();
    model_.forward(rt_, input_, /*training=*/true);
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
                               std::to_string(b + 1) + " (lower the learning rate)");
    correct += count_correct(logits, mix >= 0.5 ? labels_ : labels_mixed_);
    model_.backward(rt_, dlogits_);
    lr = schedule_.at(optimizer_.steps());
    optimizer_.step(model_, lr);
    if (options_.ema_decay > 0.0) update_ema();

    loss_sum += loss * static_cast<double>(batch);
    seen += batch;
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

// ----------------------------------------------------------------------------- checkpoints

std::vector<uint8_t> Trainer::checkpoint(const nlohmann::json& extra) const {
  // The live weights are saved under the model's names and the averaged ones (ema_decay)
  // under kEmaPrefix; after the last epoch the model holds the averaged ones (swapped_).
  std::vector<NamedTensor> tensors;
  std::vector<ParamRef> params = model_.parameters();
  for (ParamRef& p : params) {
    auto it = ema_.find(p.name);
    const bool averaged = it != ema_.end();
    tensors.push_back({p.name, swapped_ && averaged ? &it->second : &p.param->value});
    if (averaged) tensors.push_back({kEmaPrefix + p.name, swapped_ ? &p.param->value : &it->second});
  }
  const std::map<std::string, Tensor> moments = optimizer_.state_tensors();
  for (const auto& [name, t] : moments) tensors.push_back({name, &t});
  for (const auto& [name, t] : best_) tensors.push_back({kBestPrefix + name, &t});

  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : history_) history.push_back(to_json(r));
  const nlohmann::json state = {{"options", to_json(options_)},
                                {"history", std::move(history)},
                                {"best_epoch", best_epoch_},
                                {"steps", optimizer_.steps()},
                                {"layer_state", model_.training_state()},
                                {"extra", extra}};
  const std::map<std::string, std::string> metadata{
      {"format", kCheckpointFormat},
      {"architecture", to_json(model_.architecture()).dump()},
      {"classes", nlohmann::json(model_.classes()).dump()},
      {"preprocessing", to_json(model_.preprocessing()).dump()},
      {"training", model_.training_record().dump()},
      {"checkpoint", state.dump()},
  };
  return write_safetensors(std::move(tensors), metadata);
}

Checkpoint load_checkpoint(std::span<const uint8_t> bytes) {
  const SafetensorsFile file = parse_safetensors(bytes);
  auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kCheckpointFormat)
    throw std::invalid_argument(std::string("not a training checkpoint (expected format \"") +
                                kCheckpointFormat + "\")");
  auto state_text = file.metadata.find("checkpoint");
  if (state_text == file.metadata.end())
    throw std::invalid_argument("checkpoint: __metadata__ has no 'checkpoint' state");
  nlohmann::json state = parse_untrusted_json(state_text->second, 16, "checkpoint state");

  // The model part: re-assembled as a model file and loaded through load_model, which
  // validates the architecture and every tensor.
  std::vector<Tensor> model_values;
  std::vector<std::string> model_names;
  std::map<std::string, Tensor> optimizer, ema, best;
  for (const SafetensorsEntry& e : file.tensors) {
    if (e.name.rfind("adamw.", 0) == 0 || e.name.rfind("sgd.", 0) == 0) {
      optimizer.emplace(e.name, e.to_tensor());
    } else if (e.name.rfind(kEmaPrefix, 0) == 0) {
      ema.emplace(e.name.substr(kEmaPrefix.size()), e.to_tensor());
    } else if (e.name.rfind(kBestPrefix, 0) == 0) {
      best.emplace(e.name.substr(kBestPrefix.size()), e.to_tensor());
    } else {
      model_names.push_back(e.name);
      model_values.push_back(e.to_tensor());
    }
  }
  std::vector<NamedTensor> named;
  for (size_t i = 0; i < model_values.size(); ++i) named.push_back({model_names[i], &model_values[i]});
  std::map<std::string, std::string> metadata = file.metadata;
  metadata.erase("checkpoint");
  metadata["format"] = kModelFormat;
  Model model = load_model(write_safetensors(std::move(named), metadata));
  try {
    TrainOptions options = train_options_from_json(state.at("options"));
    nlohmann::json extra = state.at("extra");
    return Checkpoint{std::move(model), options, std::move(state), std::move(extra),
                      std::move(optimizer), std::move(ema), std::move(best)};
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("checkpoint state: ") + e.what());
  }
}

void Trainer::resume(const Checkpoint& ck) {
  if (to_json(ck.options) != to_json(options_))
    throw std::invalid_argument("resume: the checkpoint was made with other training options (" +
                                to_json(ck.options).dump() + ") than this run's (" +
                                to_json(options_).dump() + ")");
  try {
    std::vector<EpochRecord> history;
    for (const nlohmann::json& r : ck.state.at("history")) history.push_back(epoch_record_from_json(r));
    const int best = ck.state.at("best_epoch").get<int>();
    if (best < 0 || static_cast<size_t>(best) > history.size() || (best == 0) != history.empty())
      throw std::invalid_argument("checkpoint state: best epoch " + std::to_string(best) +
                                  " does not fit a history of " + std::to_string(history.size()));
    if (history.size() > options_.epochs)
      throw std::invalid_argument("checkpoint state: " + std::to_string(history.size()) +
                                  " epochs done but the run has only " + std::to_string(options_.epochs));
    optimizer_.load_state(model_, ck.optimizer, ck.state.at("steps").get<uint64_t>());
    // Checkpoints made when only dropout kept a state have it as "dropout_steps" (its step).
    model_.load_training_state(ck.state.at(ck.state.contains("layer_state") ? "layer_state" : "dropout_steps"));
    std::map<std::string, Shape> shapes;
    for (ParamRef& p : model_.parameters()) shapes[p.name] = p.param->value.shape();
    // Each saved tensor must name a parameter of the model and have its shape.
    auto matching = [&](const std::map<std::string, Tensor>& saved, const char* what) {
      for (const auto& [name, t] : saved) {
        auto it = shapes.find(name);
        if (it == shapes.end() || it->second != t.shape())
          throw std::invalid_argument(std::string("checkpoint state: ") + what + " tensor '" + name +
                                      "' does not match a parameter of the model");
      }
      return saved;
    };
    std::map<std::string, Tensor> ema = matching(ck.ema, "averaged");
    if (options_.ema_decay > 0.0 && ema.size() != shapes.size() && optimizer_.steps() > 0)
      throw std::invalid_argument("checkpoint state: " + std::to_string(ema.size()) + " of " +
                                  std::to_string(shapes.size()) + " averaged parameters");
    std::map<std::string, Tensor> best_values = matching(ck.best, "best-epoch");
    if (!best_values.empty() && best_values.size() != shapes.size())
      throw std::invalid_argument("checkpoint state: " + std::to_string(best_values.size()) + " of " +
                                  std::to_string(shapes.size()) + " best-epoch parameters");
    ema_ = std::move(ema);
    best_ = std::move(best_values);
    swapped_ = false;
    history_ = std::move(history);
    best_epoch_ = best;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("checkpoint state: ") + e.what());
  } catch (const std::out_of_range& e) {
    throw std::invalid_argument(std::string("checkpoint state: ") + e.what());
  }
}

}  // namespace nl
