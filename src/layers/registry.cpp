// make_layer: the one place that maps a LayerSpec's type to its class.
#include "layers/registry.h"

#include <functional>
#include <stdexcept>

#include "core/layer.h"
#include "layers/add.h"
#include "layers/avg_pool.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/flip.h"
#include "layers/global_avg_pool.h"
#include "layers/max_pool.h"
#include "layers/relu.h"
#include "layers/softmax.h"

namespace nl {

namespace {

using Factory = std::function<std::unique_ptr<Layer>(const LayerSpec&)>;

template <class L>
Factory factory() {
  return [](const LayerSpec& spec) { return std::make_unique<L>(spec); };
}

const std::vector<std::pair<std::string, Factory>>& factories() {
  static const std::vector<std::pair<std::string, Factory>> table = {
      {"conv2d", factory<Conv2D>()},
      {"dense", factory<Dense>()},
      {"relu", factory<ReLU>()},
      {"max_pool", factory<MaxPool>()},
      {"avg_pool", factory<AvgPool>()},
      {"global_avg_pool", factory<GlobalAvgPool>()},
      {"batch_norm", factory<BatchNorm>()},
      {"add", factory<Add>()},
      {"dropout", factory<Dropout>()},
      {"softmax", factory<Softmax>()},
      {"flip", factory<Flip>()},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& layer_types() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& entry : factories()) v.push_back(entry.first);
    return v;
  }();
  return names;
}

bool is_layer_type(const std::string& type) {
  for (const std::string& t : layer_types())
    if (t == type) return true;
  return false;
}

std::unique_ptr<Layer> make_layer(const LayerSpec& spec) {
  for (const auto& [type, make] : factories())
    if (type == spec.type) return make(spec);
  std::string known;
  for (const std::string& t : layer_types()) known += (known.empty() ? "" : ", ") + t;
  throw std::invalid_argument("layer '" + spec.name + "': unknown layer type '" + spec.type + "' (known: " +
                              known + ")");
}

}  // namespace nl
