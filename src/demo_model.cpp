#include "demo_model.h"

#include <stdexcept>

namespace nl {

namespace {

LayerSpec layer(std::string name, std::string type) {
  LayerSpec s;
  s.name = std::move(name);
  s.type = std::move(type);
  return s;
}

LayerSpec conv(std::string name, size_t filters) {
  LayerSpec s = layer(std::move(name), "conv2d");
  s.filters = filters;
  s.kernel = 3;
  s.padding = 1;
  return s;
}

LayerSpec pool(std::string name) {
  LayerSpec s = layer(std::move(name), "max_pool");
  s.kernel = 2;
  s.stride = 2;
  return s;
}

// splitmix64: a tiny generator whose output is the same on every platform (the standard
// library's distributions are not).
double uniform(uint64_t& state, double lo, double hi) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

const std::vector<std::string>& demo_classes() {
  static const std::vector<std::string> classes{"glioma", "meningioma", "notumor", "pituitary"};
  return classes;
}

Model make_demo_model(size_t input_size, uint64_t seed) {
  if (input_size < 4)
    throw std::invalid_argument("demo model: input size " + std::to_string(input_size) +
                                " is smaller than 4 (it pools twice)");
  Architecture arch;
  arch.height = arch.width = input_size;
  arch.channels = 1;
  auto& L = arch.layers;
  L.push_back(conv("conv1", 8));
  L.push_back(layer("bn1", "batch_norm"));
  L.push_back(layer("relu1", "relu"));
  L.push_back(pool("pool1"));
  L.push_back(conv("conv2", 16));
  L.push_back(layer("bn2", "batch_norm"));
  L.push_back(layer("relu2", "relu"));
  L.push_back(pool("pool2"));
  L.push_back(conv("conv3", 16));
  L.push_back(layer("bn3", "batch_norm"));
  LayerSpec add = layer("res3", "add");
  add.inputs = {"pool2", "bn3"};
  add.activation = Activation::relu;
  L.push_back(add);
  L.push_back(layer("gap", "global_avg_pool"));
  LayerSpec drop = layer("drop", "dropout");
  drop.rate = 0.2f;
  L.push_back(drop);
  LayerSpec fc = layer("fc", "dense");
  fc.units = demo_classes().size();
  L.push_back(fc);
  L.push_back(layer("prob", "softmax"));

  Model model(std::move(arch), demo_classes(), Preprocessing{0.5f, 0.25f});
  model.init_params(seed);
  uint64_t state = seed ^ 0x6e6c646d6f64656cull;
  for (ParamRef& p : model.parameters()) {
    const std::string& n = p.param->name;
    double lo = 0, hi = 0;
    if (n == "gamma") lo = 0.8, hi = 1.2;
    else if (n == "beta" || n == "running_mean") lo = -0.1, hi = 0.1;
    else if (n == "running_var") lo = 0.5, hi = 1.5;
    else if (n == "bias") lo = -0.05, hi = 0.05;
    else continue;
    for (float& v : p.param->value.values()) v = static_cast<float>(uniform(state, lo, hi));
  }
  model.params_changed();
  return model;
}

}  // namespace nl
