// Training checkpoints: a safetensors file holding the model, the optimizer's state, the
// averaged and best-epoch parameters, and the trainer's state as metadata. Trainer writes
// them (Trainer::checkpoint) and continues from them (Trainer::resume), both defined in
// checkpoint.cpp beside the reading side so that the format is in one place.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/tensor.h"
#include "train/options.h"

namespace nl {

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

}  // namespace nl
