// Layer: one node of a model graph. Each layer has
//  - forward on XNNPACK operators (created once, weights packed; re-created only after
//    parameters change; reshaped when the batch size changes), and
//  - backward, whose heavy arithmetic (matrix products) also runs on XNNPACK
//    (dynamic fully-connected / batch matrix multiply), with light element-wise or
//    index work in plain loops.
// Activations are NHWC [N,H,W,C] or [N,C] (dense layers and their consumers).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/architecture.h"
#include "core/runtime.h"
#include "core/tensor.h"

namespace nl {

struct Param {
  std::string name;  // "weight", "bias", "gamma", "beta", "running_mean", "running_var"
  Tensor value;
  // Accumulated by backward (+=); empty until the first backward or gradient() call, and empty
  // means zero: a model loaded only to classify (the page's first seconds) allocates and
  // touches no gradient memory (the page's model load took about 40% less time in Node).
  Tensor grad;
  bool trainable = true;  // false for batch-norm running statistics

  // grad, allocated (zeros, value's shape) if it is not yet.
  Tensor& gradient() {
    if (grad.shape() != value.shape()) grad = Tensor(value.shape(), 0.0f);
    return grad;
  }
};

// A parameter as its layer declares it, before anything is allocated.
struct ParamShape {
  std::string name;
  Shape shape;
  bool trainable = true;
  float initial = 0.0f;  // the value create_params fills in (batch norm's gamma and running_var: 1)
};

class Layer {
 public:
  explicit Layer(LayerSpec spec) : spec_(std::move(spec)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const LayerSpec& spec() const { return spec_; }

  // Checks the input shapes (batch included) against the layer's rules and returns the
  // output shape. Throws std::invalid_argument naming the layer, the value and the rule,
  // e.g. "layer 'conv1' (conv2d): kernel 5 exceeds padded input height 3".
  virtual Shape output_shape(const std::vector<Shape>& inputs) const = 0;

  // The parameters the layer has for these (batch-1) input shapes, in order. Validates the
  // shapes as output_shape does and allocates nothing, so that a budget can be checked first
  // (a model file must not make us allocate what it cannot fill). A dimension too large for
  // size_t (a dense layer's H*W*C on wasm32) saturates at SIZE_MAX, which every budget refuses.
  virtual std::vector<ParamShape> param_shapes(const std::vector<Shape>& inputs) const {
    (void)inputs;
    return {};
  }
  // The number of parameter values param_shapes declares, in double: the product of the
  // sizes may not fit a 32-bit size_t.
  double planned_parameters(const std::vector<Shape>& inputs) const;
  // Creates the parameters param_shapes declares, each filled with its initial value
  // (zero / identity). Called once by Model.
  void create_params(const std::vector<Shape>& inputs);
  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  Param* find_param(const std::string& name);

  // He-normal (fan-in) weights from this seeded generator; biases zero.
  virtual void init_params(uint64_t seed) { (void)seed; }

  // Multiply-adds * 2 per image for these (batch-1) input shapes.
  virtual double flops(const std::vector<Shape>& inputs) const { (void)inputs; return 0.0; }

  // out is reshaped by the layer. training: dropout active, batch_norm uses batch
  // statistics and updates running ones.
  virtual void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
                       bool training) = 0;

  // Given in/out of the last forward and dout = dLoss/dout: adds parameter gradients
  // into Param::grad (unless frozen) and writes dLoss/din[i] (overwriting; din[i] may be
  // nullptr when that gradient is not needed).
  virtual void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                        const Tensor& dout, const std::vector<Tensor*>& din) = 0;

  // Recalibration ("precise batch norm") of statistics a layer learns in training forwards,
  // batch norm's running mean and variance. After begin_statistics_average() returned true,
  // training forwards leave the learnt statistics alone and add up each batch's;
  // end_statistics_average() makes their averages the learnt statistics (unchanged when no
  // batch came) and returns the number of batches averaged; abandon_statistics_average()
  // stops and keeps the learnt statistics as they were. A layer that learns no statistics
  // returns false from begin and is not asked again.
  virtual bool begin_statistics_average() { return false; }
  virtual size_t end_statistics_average() { return 0; }
  virtual void abandon_statistics_average() {}

  // State a layer keeps across training steps besides its parameters (dropout: the number of
  // training forwards, which seeds its next mask), for checkpoints; null when it keeps none.
  virtual nlohmann::json training_state() const { return nullptr; }
  // Restores what training_state() returned. Throws std::invalid_argument naming the layer
  // when the JSON is not such a state (or the layer keeps none).
  virtual void load_training_state(const nlohmann::json& state);

  // Parameter values changed outside forward/backward (optimizer step, load):
  // operators with packed weights must re-pack before the next forward.
  void params_changed() { params_dirty_ = true; }

  // Re-packs now what params_changed made stale, instead of at the next forward: the model
  // calls it for several layers at once on different threads (it touches only this layer).
  virtual void prepare_operators() {}

  // A ReLU that follows this layer, as its only consumer, applied by this layer in training
  // passes (Model decides; see model.h): with set_fused_relu(true), forward writes max(0, y),
  // and backward, given that output and its gradient, passes gradient only where the output is
  // positive. Saves the ReLU's own passes over the tensor. Layers that can say so.
  virtual bool can_fuse_relu() const { return false; }
  void set_fused_relu(bool on) { fused_relu_ = on; }

  bool frozen = false;  // fine-tuning: no parameter gradients

 protected:
  LayerSpec spec_;
  std::vector<Param> params_;
  bool params_dirty_ = true;
  bool fused_relu_ = false;
};

// Creates the layer for spec.type; throws std::invalid_argument for an unknown type,
// naming it and listing the known ones.
std::unique_ptr<Layer> make_layer(const LayerSpec& spec);

}  // namespace nl
