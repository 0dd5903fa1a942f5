// Model::folded(): an inference copy with batch norms folded into their convolutions and
// ReLUs fused into the layer before them.
//
// Folding conv -> batch_norm (inference statistics) into the conv, per output channel f:
//   s = gamma[f] / sqrt(running_var[f] + epsilon)
//   W'[f,...] = W[f,...] * s,   b'[f] = (b[f] - running_mean[f]) * s + beta[f]
// (b = 0 when the conv had no bias; the folded conv always has one).
// A merged layer keeps the producer's name (its parameters keep their names) and takes the
// position of the layer it absorbed; that is safe because the absorbed layer was the
// producer's only consumer, so nothing between them reads the producer.
#include <cmath>
#include <stdexcept>

#include "core/model.h"

namespace nl {

namespace {

// Every layer's inputs spelled out (an empty list means "the previous layer").
size_t index_of(const std::vector<LayerSpec>& layers, const std::string& name) {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == name) return i;
  return layers.size();
}

size_t consumer_count(const std::vector<LayerSpec>& layers, const std::string& name) {
  size_t n = 0;
  for (const LayerSpec& s : layers)
    for (const std::string& in : s.inputs) n += in == name;
  return n;
}

void rename_inputs(std::vector<LayerSpec>& layers, const std::string& from, const std::string& to) {
  for (LayerSpec& s : layers)
    for (std::string& in : s.inputs)
      if (in == from) in = to;
}

// If layers[i] has a single input produced by a layer whose type passes `accept` and whose
// only consumer is layers[i], replaces layers[i] by `merge(producer)` and removes the
// producer. Returns the producer's name, or "" when nothing was merged.
template <class Accept, class Merge>
std::string merge_into_producer(std::vector<LayerSpec>& layers, size_t i, Accept accept, Merge merge) {
  if (layers[i].inputs.size() != 1) return "";
  const std::string consumer = layers[i].name;
  const size_t p = index_of(layers, layers[i].inputs[0]);
  if (p == layers.size() || !accept(layers[p]) || consumer_count(layers, layers[p].name) != 1) return "";
  LayerSpec merged = merge(layers[p]);
  layers[i] = merged;
  layers.erase(layers.begin() + static_cast<long>(p));
  rename_inputs(layers, consumer, merged.name);
  return merged.name;
}

}  // namespace

Model Model::folded() const {
  Architecture arch = explicit_inputs(arch_);
  std::vector<LayerSpec>& layers = arch.layers;
  struct Fold {
    std::string conv, bn;
  };
  std::vector<Fold> folds;

  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].type != "batch_norm") continue;
    const std::string bn = layers[i].name;
    const std::string conv = merge_into_producer(
        layers, i,
        [](const LayerSpec& p) { return p.type == "conv2d" && p.activation == Activation::none; },
        [](LayerSpec p) {
          p.bias = true;
          return p;
        });
    if (!conv.empty()) {
      folds.push_back({conv, bn});
      --i;  // the merged conv now sits at i - 1
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].type != "relu") continue;
    const std::string fused = merge_into_producer(
        layers, i,
        [](const LayerSpec& p) {
          return (p.type == "conv2d" || p.type == "dense" || p.type == "add") && p.activation == Activation::none;
        },
        [](LayerSpec p) {
          p.activation = Activation::relu;
          return p;
        });
    if (!fused.empty()) --i;
  }

  Model out(arch, classes_, pre_);
  out.training_record_ = training_record_;
  out.confidence_ = confidence_;  // folding keeps every layer that outputs [N, D]
  for (size_t i = 0; i < out.layer_count(); ++i) {
    Layer& to = out.layer(i);
    const Layer& from = layer(layer_index(to.spec().name));
    to.frozen = from.frozen;
    for (Param& p : to.params()) {
      const auto& src = from.params();
      for (const Param& q : src)
        if (q.name == p.name) p.value = q.value;
    }
  }
  for (const Fold& f : folds) {
    Layer& conv = out.layer(out.layer_index(f.conv));
    const Layer& bn = layer(layer_index(f.bn));
    Param* weight = conv.find_param("weight");
    Param* bias = conv.find_param("bias");
    bool had_bias = false;
    for (const Param& p : layer(layer_index(f.conv)).params()) had_bias = had_bias || p.name == "bias";
    auto bn_param = [&](const char* name) -> const Tensor& {
      for (const Param& p : bn.params())
        if (p.name == name) return p.value;
      throw std::logic_error("batch_norm '" + f.bn + "' has no parameter " + name);
    };
    const Tensor &gamma = bn_param("gamma"), &beta = bn_param("beta");
    const Tensor &mean = bn_param("running_mean"), &var = bn_param("running_var");
    if (weight == nullptr || bias == nullptr || weight->value.rank() == 0 ||
        weight->value.dim(0) != gamma.size() || bias->value.size() != gamma.size())
      throw std::logic_error("cannot fold batch_norm '" + f.bn + "' into conv2d '" + f.conv +
                             "': parameter shapes do not match");
    const size_t filters = gamma.size(), per_filter = weight->value.size() / filters;
    for (size_t c = 0; c < filters; ++c) {
      const double s = gamma[c] / std::sqrt(static_cast<double>(var[c]) + bn.spec().epsilon);
      float* w = weight->value.data() + c * per_filter;
      for (size_t k = 0; k < per_filter; ++k) w[k] = static_cast<float>(w[k] * s);
      const double b = had_bias ? bias->value[c] : 0.0;
      bias->value[c] = static_cast<float>((b - mean[c]) * s + beta[c]);
    }
  }
  out.params_changed();
  return out;
}

}  // namespace nl
