#include "train/options.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace nl {

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

}  // namespace nl
