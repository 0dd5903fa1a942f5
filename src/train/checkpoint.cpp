#include "train/checkpoint.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "train/trainer.h"

namespace nl {

namespace {

constexpr const char* kCheckpointFormat = "neurolens-checkpoint/1";
constexpr const char* kModelFormat = "neurolens/1";  // formats/model_file.h
const std::string kEmaPrefix = "trainer.ema.";
const std::string kBestPrefix = "trainer.best.";

}  // namespace

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
