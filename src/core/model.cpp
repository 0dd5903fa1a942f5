// Model: the layer graph, its activations and gradients. Nodes are kept in the
// architecture's (topological) order; node inputs are indices, kImage for the image batch.
#include "core/model.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "core/architecture.h"
#include "core/rng.h"

namespace nl {

namespace {

constexpr int kImage = -1;

bool has_trainable_params(const Layer& layer) {
  if (layer.frozen) return false;
  for (const Param& p : layer.params())
    if (p.trainable) return true;
  return false;
}

std::string millions(double n) { return std::to_string(static_cast<long long>(n / 1e6)) + "M"; }

}  // namespace

struct Model::Graph {
  struct Node {
    std::unique_ptr<Layer> layer;
    std::vector<int> inputs;         // node indices or kImage
    std::vector<Shape> input_shapes;  // at batch 1
    Shape shape;                      // output at batch 1
    Tensor out, grad;
    bool grad_valid = false;
    // Training passes fold a ReLU into the layer before it when that layer can apply it and
    // has no other consumer (Layer::can_fuse_relu): on the producer, relu is the ReLU's node;
    // on the ReLU, producer is that layer. -1 otherwise.
    int relu = -1, producer = -1;
  };
  std::vector<Node> nodes;
  std::map<std::string, size_t> index;
  int logits = 0;  // node feeding the final softmax (or the last node); kImage: the image
  Tensor input;    // copy of the last forward's input (the first layers' backward needs it)
  bool forwarded = false;
  bool fused = false;  // the last forward was a training pass, with the ReLUs folded in
  Tensor scratch[2];  // input gradients that must be added to an existing gradient

  const Tensor& value(int i) const { return i == kImage ? input : nodes[i].out; }
  std::vector<const Tensor*> inputs_of(const Node& n) const {
    std::vector<const Tensor*> v;
    for (int i : n.inputs) v.push_back(&value(i));
    return v;
  }
};

Model::Model(Architecture arch, std::vector<std::string> classes, Preprocessing pre)
    : arch_(std::move(arch)), classes_(std::move(classes)), pre_(pre), graph_(std::make_unique<Graph>()) {
  using L = ArchitectureLimits;
  validate_architecture(arch_);
  if (classes_.empty()) throw std::invalid_argument("classes: the model needs at least one class name");
  if (classes_.size() > L::max_classes)
    throw std::invalid_argument("classes: " + std::to_string(classes_.size()) + " names, more than the limit of " +
                                std::to_string(L::max_classes));
  std::set<std::string> seen;
  for (size_t i = 0; i < classes_.size(); ++i) {
    const std::string& c = classes_[i];
    const std::string where = "classes[" + std::to_string(i) + "]";
    if (c.empty() || c.size() > L::max_class_name_length)
      throw std::invalid_argument(where + ": a class name must have 1 to " +
                                  std::to_string(L::max_class_name_length) + " characters");
    if (!seen.insert(c).second) throw std::invalid_argument(where + ": duplicate class name '" + c + "'");
  }
  if (!std::isfinite(pre_.mean)) throw std::invalid_argument("preprocessing.mean: must be a finite number");
  if (!(std::isfinite(pre_.std) && pre_.std > 0.0f))
    throw std::invalid_argument("preprocessing.std: must be a positive finite number");

  Graph& g = *graph_;
  double parameters = 0.0, activations = numel_double(input_shape(1));
  for (size_t i = 0; i < arch_.layers.size(); ++i) {
    const LayerSpec& spec = arch_.layers[i];
    Graph::Node node;
    node.layer = make_layer(spec);
    if (spec.inputs.empty()) {
      node.inputs.push_back(i == 0 ? kImage : static_cast<int>(i) - 1);
    } else {
      for (const std::string& name : spec.inputs)
        node.inputs.push_back(name == "input" ? kImage : static_cast<int>(g.index.at(name)));
    }
    for (int j : node.inputs) node.input_shapes.push_back(j == kImage ? input_shape(1) : g.nodes[j].shape);
    node.shape = node.layer->output_shape(node.input_shapes);
    parameters += node.layer->planned_parameters(node.input_shapes);
    if (parameters > L::max_parameters)
      throw std::invalid_argument("layer '" + spec.name + "': the model would need more than " +
                                  millions(L::max_parameters) + " parameters (" + millions(parameters) +
                                  " up to this layer)");
    activations += numel_double(node.shape);
    if (activations > L::max_activations)
      throw std::invalid_argument("layer '" + spec.name + "': the model's activations would exceed " +
                                  millions(L::max_activations) + " floats per image (" +
                                  millions(activations) + " up to this layer)");
    node.layer->create_params(node.input_shapes);
    g.index[spec.name] = i;
    g.nodes.push_back(std::move(node));
  }

  const Graph::Node& last = g.nodes.back();
  const std::string& last_name = arch_.layers.back().name;
  if (last.shape.size() != 2)
    throw std::invalid_argument("the last layer '" + last_name + "' outputs shape " + to_string(last.shape) +
                                "; a classifier must output [batch, classes]");
  if (last.shape[1] != classes_.size())
    throw std::invalid_argument("the model has " + std::to_string(classes_.size()) + " classes but its last layer '" +
                                last_name + "' outputs " + std::to_string(last.shape[1]) + " values per image");
  g.logits = arch_.layers.back().type == "softmax" ? last.inputs[0] : static_cast<int>(g.nodes.size()) - 1;

  std::vector<size_t> consumers(g.nodes.size(), 0);
  for (const Graph::Node& node : g.nodes)
    for (int j : node.inputs)
      if (j != kImage) ++consumers[j];
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Graph::Node& node = g.nodes[i];
    if (arch_.layers[i].type != "relu" || node.inputs.size() != 1 || node.inputs[0] == kImage) continue;
    const int j = node.inputs[0];
    if (consumers[j] != 1 || j == g.logits || !g.nodes[j].layer->can_fuse_relu()) continue;
    node.producer = j;
    g.nodes[j].relu = static_cast<int>(i);
  }
}

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::clone() const {
  Model copy(arch_, classes_, pre_);
  copy.training_record_ = training_record_;
  copy.confidence_ = confidence_;
  for (size_t i = 0; i < layer_count(); ++i) {
    const Layer& from = layer(i);
    Layer& to = copy.layer(i);
    for (size_t p = 0; p < from.params().size(); ++p) to.params()[p].value = from.params()[p].value;
    to.frozen = from.frozen;
    to.params_changed();
  }
  return copy;
}

void Model::set_confidence(Confidence c) {
  if (c.has_detector()) {
    auto fail = [](const std::string& what) { throw std::invalid_argument("confidence: " + what); };
    auto it = graph_->index.find(c.feature_layer);
    if (it == graph_->index.end()) fail("the feature layer '" + c.feature_layer + "' is not in the model");
    const Shape& out = graph_->nodes[it->second].shape;
    if (out.size() != 2) fail("the feature layer '" + c.feature_layer + "' outputs " + to_string(out) + ", not [N, D]");
    const size_t d = out[1];
    if (c.class_means.shape() != Shape{classes_.size(), d})
      fail("class_means has shape " + to_string(c.class_means.shape()) + ", expected [" +
           std::to_string(classes_.size()) + ", " + std::to_string(d) + "]");
    if (c.precision.shape() != Shape{d, d})
      fail("precision has shape " + to_string(c.precision.shape()) + ", expected [" + std::to_string(d) +
           ", " + std::to_string(d) + "]");
    for (const Tensor* t : {&c.class_means, &c.precision})
      for (float v : t->values())
        if (!std::isfinite(v)) fail("a class mean or precision value is not finite");
  }
  confidence_ = std::move(c);
}

void Model::init_params(uint64_t seed) {
  for (size_t i = 0; i < layer_count(); ++i) {
    // An independent, well-mixed seed per layer.
    graph_->nodes[i].layer->init_params(mix64(seed ^ mix64(i + 1)));
    graph_->nodes[i].layer->params_changed();
  }
}

size_t Model::layer_count() const { return graph_->nodes.size(); }

Layer& Model::layer(size_t i) {
  if (i >= layer_count())
    throw std::out_of_range("layer index " + std::to_string(i) + " out of range (the model has " +
                            std::to_string(layer_count()) + " layers)");
  return *graph_->nodes[i].layer;
}

const Layer& Model::layer(size_t i) const { return const_cast<Model*>(this)->layer(i); }

size_t Model::layer_index(const std::string& name) const {
  auto it = graph_->index.find(name);
  if (it == graph_->index.end()) throw std::out_of_range("the model has no layer named '" + name + "'");
  return it->second;
}

Shape Model::input_shape(size_t batch) const { return {batch, arch_.height, arch_.width, arch_.channels}; }

Shape Model::output_shape(size_t i, size_t batch) const {
  layer(i);  // range check
  Shape s = graph_->nodes[i].shape;
  s[0] = batch;  // every layer maps a batch of N to a batch of N
  return s;
}

size_t Model::parameter_count() const {
  size_t n = 0;
  for (const Graph::Node& node : graph_->nodes)
    for (const Param& p : node.layer->params()) n += p.value.size();
  return n;
}

double Model::flops_per_image() const {
  double total = 0.0;
  for (const Graph::Node& node : graph_->nodes) total += node.layer->flops(node.input_shapes);
  return total;
}

std::vector<ParamRef> Model::parameters() {
  std::vector<ParamRef> refs;
  for (Graph::Node& node : graph_->nodes)
    for (Param& p : node.layer->params())
      refs.push_back({node.layer->spec().name + "." + p.name, node.layer.get(), &p});
  return refs;
}

const Tensor& Model::forward(Runtime& rt, const Tensor& input, bool training, std::vector<double>* layer_ms) {
  Graph& g = *graph_;
  const Shape& s = input.shape();
  if (s.size() != 4 || s[0] == 0 || s[1] != arch_.height || s[2] != arch_.width || s[3] != arch_.channels)
    throw std::invalid_argument("model input must be [N," + std::to_string(arch_.height) + "," +
                                std::to_string(arch_.width) + "," + std::to_string(arch_.channels) +
                                "] with N >= 1, got " + to_string(s));
  // Each activation must stay addressable (a 32-bit wasm size_t holds at most 2^32 bytes).
  const double max_floats = static_cast<double>(std::numeric_limits<size_t>::max()) / sizeof(float) / 2;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (static_cast<double>(s[0]) * numel_double(g.nodes[i].shape) > max_floats)
      throw std::invalid_argument("a batch of " + std::to_string(s[0]) + " images is too large: layer '" +
                                  arch_.layers[i].name + "' would need more memory than this build can address");
  g.forwarded = false;
  g.fused = training;
  g.input = input;
  if (layer_ms != nullptr) layer_ms->resize(g.nodes.size(), 0.0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Graph::Node& node = g.nodes[i];
    node.grad_valid = false;
    if (training && node.producer >= 0) continue;  // applied by its producer, into node.out
    const bool fuse = training && node.relu >= 0;
    if (node.relu >= 0) node.layer->set_fused_relu(fuse);
    const auto start = std::chrono::steady_clock::now();  // a clock read per layer costs nothing measurable
    node.layer->forward(rt, g.inputs_of(node), fuse ? g.nodes[node.relu].out : node.out, training);
    if (layer_ms != nullptr)
      (*layer_ms)[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  g.forwarded = true;
  return g.nodes.back().out;
}

const Tensor& Model::logits() const { return graph_->value(graph_->logits); }

const Tensor& Model::activation(size_t i) const {
  layer(i);
  const Graph::Node& node = graph_->nodes[i];
  if (graph_->fused && node.relu >= 0)
    throw std::logic_error("the output of layer '" + arch_.layers[i].name + "' was not kept: the training pass applied "
                           "the ReLU '" + arch_.layers[node.relu].name + "' in place (read that layer's output)");
  return node.out;
}

void Model::backward(Runtime& rt, const Tensor& dlogits, bool keep_all_gradients, std::vector<double>* layer_ms) {
  Graph& g = *graph_;
  if (!g.forwarded) throw std::logic_error("Model::backward: call forward first (there is no pass to differentiate)");
  for (Graph::Node& node : g.nodes) node.grad_valid = false;
  const Tensor& logits_value = g.value(g.logits);
  if (dlogits.shape() != logits_value.shape())
    throw std::invalid_argument("Model::backward: dlogits has shape " + to_string(dlogits.shape()) +
                                ", the logits have shape " + to_string(logits_value.shape()));
  if (g.logits == kImage) return;  // the model has no layer before its softmax
  if (layer_ms != nullptr) layer_ms->resize(g.nodes.size(), 0.0);

  // needs[i]: the gradient at node i's output is wanted, because node i or a node upstream of
  // it has trainable parameters (or every gradient was asked for). Below the first trainable
  // layer nothing is wanted, so backward stops there.
  std::vector<char> needs(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    needs[i] = keep_all_gradients || has_trainable_params(*g.nodes[i].layer);
    for (int j : g.nodes[i].inputs)
      if (j != kImage && needs[j]) needs[i] = 1;
  }

  Graph::Node& top = g.nodes[g.logits];
  top.grad = dlogits;
  top.grad_valid = true;
  for (int i = g.logits; i >= 0; --i) {
    Graph::Node& node = g.nodes[i];
    // A ReLU folded into its producer (training passes) has no backward of its own: the
    // producer masks by the ReLU's output. Asked for every gradient, the ReLU's backward
    // still writes the producer's, which the producer then masks again (the same mask).
    if (g.fused && node.producer >= 0) {
      if (keep_all_gradients && node.grad_valid && needs[i]) {
        Graph::Node& producer = g.nodes[node.producer];
        std::vector<Tensor*> din{&producer.grad};
        node.layer->backward(rt, {&node.out}, node.out, node.grad, din);
        producer.grad_valid = true;
      }
      continue;
    }
    const Tensor* out = &node.out;
    const Tensor* dout = &node.grad;
    bool valid = node.grad_valid;
    if (g.fused && node.relu >= 0) {
      const Graph::Node& relu = g.nodes[node.relu];
      out = &relu.out;
      if (!keep_all_gradients) {
        dout = &relu.grad;
        valid = relu.grad_valid;
      }
    }
    if (!valid || !needs[i]) continue;
    // Where each input's gradient goes: straight into the input node's gradient when this is
    // its first contribution, else into scratch, added afterwards (a node feeding several
    // consumers, or feeding both inputs of one add, gets the sum).
    std::vector<Tensor*> din(node.inputs.size(), nullptr);
    std::vector<char> direct(node.inputs.size(), 0);
    std::set<int> claimed;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int j = node.inputs[k];
      if (j == kImage || !needs[j]) continue;
      if (!g.nodes[j].grad_valid && claimed.insert(j).second) {
        din[k] = &g.nodes[j].grad;
        direct[k] = 1;
      } else {
        din[k] = &g.scratch[k];
      }
    }
    const auto start = std::chrono::steady_clock::now();
    node.layer->backward(rt, g.inputs_of(node), *out, *dout, din);
    for (size_t k = 0; k < node.inputs.size(); ++k)
      if (direct[k]) g.nodes[node.inputs[k]].grad_valid = true;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (din[k] == nullptr || direct[k]) continue;
      Tensor& target = g.nodes[node.inputs[k]].grad;
      const Tensor& extra = *din[k];
      if (extra.shape() != target.shape())
        throw std::logic_error("layer '" + arch_.layers[i].name + "': input gradient shape " +
                               to_string(extra.shape()) + " differs from " + to_string(target.shape()));
      float* t = target.data();
      const float* x = extra.data();
      parallel_ranges(rt, target.size(), [&](size_t begin, size_t end) {
        for (size_t e = begin; e < end; ++e) t[e] += x[e];
      });
    }
    if (layer_ms != nullptr)  // the layer's backward and the sums of what it passed on
      (*layer_ms)[i] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
}

const Tensor& Model::gradient(size_t i) const {
  layer(i);
  const Graph::Node& node = graph_->nodes[i];
  if (!node.grad_valid)
    throw std::logic_error("the gradient at layer '" + arch_.layers[i].name +
                           "' was not computed (it is after the logits, below the first trainable layer, or "
                           "backward has not run; pass keep_all_gradients to get every layer's)");
  return node.grad;
}

void Model::zero_grad() {
  for (Graph::Node& node : graph_->nodes)
    for (Param& p : node.layer->params()) p.grad.fill(0.0f);
}

nlohmann::json Model::training_state() const {
  nlohmann::json state = nlohmann::json::object();
  for (const Graph::Node& node : graph_->nodes)
    if (nlohmann::json s = node.layer->training_state(); !s.is_null()) state[node.layer->spec().name] = std::move(s);
  return state;
}

void Model::load_training_state(const nlohmann::json& state) {
  if (!state.is_object())
    throw std::invalid_argument("layer training state must be a JSON object by layer name, got " + state.dump());
  for (const auto& [name, s] : state.items()) layer(layer_index(name)).load_training_state(s);
}

void Model::params_changed() {
  for (Graph::Node& node : graph_->nodes) node.layer->params_changed();
}

void Model::prepare_operators(Runtime& rt) {
  // Largest layers first, each to whichever thread is free next (re-packing costs about the
  // parameter count): resnet-s's last convolution is nearly half the work, and the thread
  // pool's even split of the layer list into ranges had one thread idle a third of the time
  // (measured on 2 threads: 5.5-7.6 ms a call).
  std::vector<std::pair<size_t, Layer*>> layers;
  for (Graph::Node& node : graph_->nodes) {
    size_t size = 0;
    for (const Param& param : node.layer->params()) size += param.value.size();
    layers.emplace_back(size, node.layer.get());
  }
  std::stable_sort(layers.begin(), layers.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::atomic<size_t> next{0};
  parallel_for(rt, layers.size(), [&](size_t) { layers[next++].second->prepare_operators(); });
}

}  // namespace nl
