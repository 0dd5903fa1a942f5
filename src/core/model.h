// Model: a graph of layers (architecture), their parameters, the class names and the
// input preprocessing. Runs forward (inference or training) and backward.
//
//   nl::Runtime rt(1);
//   nl::Model model = nl::load_model_file("model/neurolens.safetensors");    // formats/model_file.h
//   nl::Tensor batch = nl::preprocess(bytes, model.architecture(), model.preprocessing());  // formats/image.h
//   const nl::Tensor& probs = model.forward(rt, batch, /*training=*/false);  // [1, classes]
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/architecture.h"
#include "core/confidence.h"
#include "core/layer.h"

namespace nl {

struct ParamRef {
  std::string name;  // "<layer>.<param>", the safetensors tensor name
  Layer* layer;
  Param* param;
};

class Model {
 public:
  // Validates the graph (unique names, inputs defined earlier, shapes via each layer's
  // output_shape, classes == units of the last layer) and creates the parameters
  // (zero / identity). Throws std::invalid_argument naming what is wrong.
  Model(Architecture arch, std::vector<std::string> classes, Preprocessing pre = {});
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // Same architecture and parameter values, fresh operators.
  Model clone() const;
  // A copy for inference: each batch_norm whose input is a conv2d used only by it is
  // folded into that conv's weights and bias; a relu following conv2d/dense/add (sole
  // consumer) becomes that layer's fused activation. Same outputs in inference mode.
  Model folded() const;

  void init_params(uint64_t seed);

  const Architecture& architecture() const { return arch_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const Preprocessing& preprocessing() const { return pre_; }
  // Temperature, uncertainty threshold and outlier detector (core/confidence.h); the default
  // (T = 1, no detector) for a model that has not been calibrated.
  const Confidence& confidence() const { return confidence_; }
  // Throws std::invalid_argument naming what does not fit this model: the feature layer is
  // unknown or does not output [N, D], the tensors' shapes are not [classes, D] and [D, D],
  // or a value is not finite.
  void set_confidence(Confidence c);
  nlohmann::json& training_record() { return training_record_; }
  const nlohmann::json& training_record() const { return training_record_; }

  size_t layer_count() const;
  Layer& layer(size_t i);
  const Layer& layer(size_t i) const;
  // Index of a layer by name; throws std::out_of_range naming it.
  size_t layer_index(const std::string& name) const;
  Shape input_shape(size_t batch) const;            // [batch,H,W,C]
  Shape output_shape(size_t layer, size_t batch) const;

  size_t parameter_count() const;  // trainable + running statistics
  double flops_per_image() const;

  std::vector<ParamRef> parameters();

  // input: [N,H,W,C]. Returns the last layer's output (probabilities when it is softmax).
  // A training pass folds each ReLU into the batch norm or add before it when that layer feeds
  // nothing else (Layer::can_fuse_relu): the ReLU's output is written by that layer, whose own
  // output is then not kept (activation() of it throws until an inference pass), and backward
  // masks there. Saves the ReLU's passes over the tensor (resnet-s: about 5% of a step).
  // layer_ms, when given, gets each layer's forward time in milliseconds added to its entry
  // (resized to layer_count() first): the per-layer profile of `neurolens bench --profile`.
  const Tensor& forward(Runtime& rt, const Tensor& input, bool training, std::vector<double>* layer_ms = nullptr);
  // The tensor feeding the final softmax (logits); the last output if there is no softmax.
  const Tensor& logits() const;
  const Tensor& activation(size_t layer) const;  // output of layer i after forward

  // Backpropagates dLoss/dlogits from the last forward(training=true), accumulating
  // parameter gradients. Stops early below the first non-frozen layer with parameters
  // unless keep_all_gradients (Grad-CAM needs the gradient at a conv output). layer_ms, when
  // given, gets each layer's backward time added to its entry, as forward's.
  void backward(Runtime& rt, const Tensor& dlogits, bool keep_all_gradients = false,
                std::vector<double>* layer_ms = nullptr);
  const Tensor& gradient(size_t layer) const;  // dLoss/d(output of layer i) after backward
  void zero_grad();

  // Every layer's training state (Layer::training_state) by layer name, for checkpoints;
  // layers that keep none are left out.
  nlohmann::json training_state() const;
  // Restores what training_state() returned; layers it does not name keep theirs. Throws
  // std::out_of_range for a name the model lacks, std::invalid_argument from the layer.
  void load_training_state(const nlohmann::json& state);

  // Parameter values were changed (optimizer step, load): re-pack XNNPACK weights.
  void params_changed();
  // Re-packs the stale weights now, one layer per task on rt's threads (packing is serial
  // inside XNNPACK), rather than one after another in the next forward and backward.
  void prepare_operators(Runtime& rt);

 private:
  struct Graph;
  Architecture arch_;
  std::vector<std::string> classes_;
  Preprocessing pre_;
  nlohmann::json training_record_ = nlohmann::json::object();
  Confidence confidence_;
  std::unique_ptr<Graph> graph_;
};

}  // namespace nl
