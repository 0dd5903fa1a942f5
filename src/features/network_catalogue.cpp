#include "features/network_catalogue.h"

#include <stdexcept>

#include "core/rng.h"

namespace nl {

namespace {

// Appends layers and remembers the name of the last one, so blocks chain naturally.
class Builder {
 public:
  explicit Builder(Architecture& arch) : arch_(arch) {}

  std::string add(LayerSpec spec, std::vector<std::string> inputs = {}) {
    spec.inputs = inputs.empty() ? std::vector<std::string>{last_} : std::move(inputs);
    last_ = spec.name;
    arch_.layers.push_back(std::move(spec));
    return last_;
  }
  const std::string& last() const { return last_; }

  std::string conv(const std::string& name, size_t filters, size_t kernel, size_t stride,
                   std::vector<std::string> inputs = {}) {
    LayerSpec s;
    s.name = name;
    s.type = "conv2d";
    s.filters = filters;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = kernel / 2;
    s.bias = false;  // batch norm follows and has its own shift
    return add(s, std::move(inputs));
  }
  std::string bn(const std::string& name) {
    LayerSpec s;
    s.name = name;
    s.type = "batch_norm";
    return add(s);
  }
  std::string relu(const std::string& name, std::vector<std::string> inputs = {}) {
    LayerSpec s;
    s.name = name;
    s.type = "relu";
    return add(s, std::move(inputs));
  }
  std::string conv_bn_relu(const std::string& name, size_t filters, size_t kernel, size_t stride) {
    conv(name, filters, kernel, stride);
    bn(name + "_bn");
    return relu(name + "_relu");
  }
  std::string max_pool(const std::string& name, size_t kernel, size_t stride) {
    LayerSpec s;
    s.name = name;
    s.type = "max_pool";
    s.kernel = kernel;
    s.stride = stride;
    return add(s);
  }
  // ResNet basic block: two 3x3 convolutions with batch norm, plus the input (through a
  // 1x1 strided projection when the shape changes), then ReLU.
  std::string basic_block(const std::string& name, size_t in_channels, size_t filters,
                          size_t stride) {
    const std::string input = last_;
    conv(name + "_conv1", filters, 3, stride);
    bn(name + "_bn1");
    relu(name + "_relu1");
    conv(name + "_conv2", filters, 3, 1);
    const std::string main = bn(name + "_bn2");
    std::string shortcut = input;
    if (stride != 1 || in_channels != filters) {
      conv(name + "_proj", filters, 1, stride, {input});
      shortcut = bn(name + "_proj_bn");
    }
    LayerSpec add_spec;
    add_spec.name = name + "_add";
    add_spec.type = "add";
    add(add_spec, {main, shortcut});
    return relu(name + "_relu");
  }
  void head(size_t classes, float dropout) {
    LayerSpec gap;
    gap.name = "gap";
    gap.type = "global_avg_pool";
    add(gap);
    if (dropout > 0) {
      LayerSpec d;
      d.name = "dropout";
      d.type = "dropout";
      d.rate = dropout;
      add(d);
    }
    LayerSpec fc;
    fc.name = "fc";
    fc.type = "dense";
    fc.units = classes;
    add(fc);
    LayerSpec sm;
    sm.name = "softmax";
    sm.type = "softmax";
    add(sm);
  }

 private:
  Architecture& arch_;
  std::string last_ = "input";
};

// stem: 3x3 stride-2 convolution and 2x2 max pooling (input / 4), then one basic block per
// stage, each later stage halving the resolution and doubling the width.
Architecture resnet(size_t input_size, size_t classes, const std::vector<size_t>& widths,
                    size_t blocks_per_stage, float dropout) {
  Architecture arch;
  arch.height = arch.width = input_size;
  arch.channels = 1;
  Builder b(arch);
  b.conv_bn_relu("stem", widths[0], 3, 2);
  b.max_pool("stem_pool", 2, 2);
  size_t channels = widths[0];
  for (size_t s = 0; s < widths.size(); ++s) {
    for (size_t k = 0; k < blocks_per_stage; ++k) {
      const size_t stride = (s > 0 && k == 0) ? 2 : 1;
      std::string name = "s";  // s<stage>b<block>, e.g. s2b1
      name += std::to_string(s + 1);
      name += 'b';
      name += std::to_string(k + 1);
      b.basic_block(name, channels, widths[s], stride);
      channels = widths[s];
    }
  }
  b.head(classes, dropout);
  return arch;
}

// A small plain CNN, for tests and quick experiments.
Architecture tiny_cnn(size_t input_size, size_t classes) {
  Architecture arch;
  arch.height = arch.width = input_size;
  arch.channels = 1;
  Builder b(arch);
  b.conv_bn_relu("c1", 8, 3, 1);
  b.max_pool("p1", 2, 2);
  b.conv_bn_relu("c2", 16, 3, 1);
  b.max_pool("p2", 2, 2);
  b.head(classes, 0.0f);
  return arch;
}

// The demo network: conv/batch-norm/ReLU/pool blocks, one residual add, global average
// pooling, dropout, dense and softmax. Layers name no inputs (each takes the previous one).
Architecture demo_cnn(size_t input_size, size_t classes) {
  auto layer = [](std::string name, std::string type) {
    LayerSpec s;
    s.name = std::move(name);
    s.type = std::move(type);
    return s;
  };
  auto conv = [&](std::string name, size_t filters) {
    LayerSpec s = layer(std::move(name), "conv2d");
    s.filters = filters;
    s.kernel = 3;
    s.padding = 1;
    return s;
  };
  auto pool = [&](std::string name) {
    LayerSpec s = layer(std::move(name), "max_pool");
    s.kernel = 2;
    s.stride = 2;
    return s;
  };
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
  fc.units = classes;
  L.push_back(fc);
  L.push_back(layer("prob", "softmax"));
  return arch;
}

}  // namespace

const std::vector<ArchitectureInfo>& architecture_catalogue() {
  static const std::vector<ArchitectureInfo> list = {
      {"resnet-s", "ResNet-style: 3x3/2 stem + max pool, 4 stages of one basic block "
                   "(32, 64, 128, 256 channels), global average pooling, dense; the shipped model "
                   "(at 160x160)",
       128, 32},
      {"resnet-m", "as resnet-s with two basic blocks per stage", 128, 32},
      {"resnet-w", "as resnet-s with 48, 96, 192, 384 channels", 128, 32},
      {"resnet-xs", "as resnet-s with 24, 48, 96, 192 channels", 112, 32},
      {"tiny", "two conv + batch norm + ReLU + max pool layers, global average pooling, dense "
               "(tests, quick experiments)", 32, 8},
      {"demo", "three conv + batch norm blocks with one residual add, dropout, dense: the untrained "
               "seeded model of the tests and benchmarks (make_demo_model)", 64, 4},
  };
  return list;
}

Architecture make_architecture(const std::string& name, size_t input_size, size_t classes) {
  const ArchitectureInfo* info = nullptr;
  for (const ArchitectureInfo& a : architecture_catalogue())
    if (a.name == name) info = &a;
  if (info == nullptr) {
    std::string known;
    for (const ArchitectureInfo& a : architecture_catalogue())
      known += (known.empty() ? "" : ", ") + a.name;
    throw std::invalid_argument("unknown architecture '" + name + "' (known: " + known + ")");
  }
  if (input_size == 0) input_size = info->default_input_size;
  if (classes < 2 || classes > 1000)
    throw std::invalid_argument("architecture '" + name + "': " + std::to_string(classes) +
                                " classes is outside 2..1000");
  if (input_size < info->min_input_size || input_size > 1024)
    throw std::invalid_argument("architecture '" + name + "': input size " +
                                std::to_string(input_size) + " is outside " +
                                std::to_string(info->min_input_size) + "..1024");
  if (name == "resnet-s") return resnet(input_size, classes, {32, 64, 128, 256}, 1, 0.1f);
  if (name == "resnet-m") return resnet(input_size, classes, {32, 64, 128, 256}, 2, 0.1f);
  if (name == "resnet-w") return resnet(input_size, classes, {48, 96, 192, 384}, 1, 0.1f);
  if (name == "resnet-xs") return resnet(input_size, classes, {24, 48, 96, 192}, 1, 0.1f);
  if (name == "tiny") return tiny_cnn(input_size, classes);
  return demo_cnn(input_size, classes);
}

const std::vector<std::string>& demo_classes() {
  static const std::vector<std::string> classes{"glioma", "meningioma", "notumor", "pituitary"};
  return classes;
}

Model make_demo_model(size_t input_size, uint64_t seed) {
  if (input_size < 4)
    throw std::invalid_argument("demo model: input size " + std::to_string(input_size) +
                                " is smaller than 4 (it pools twice)");
  Model model(demo_cnn(input_size, demo_classes().size()), demo_classes(), Preprocessing{0.5f, 0.25f});
  model.init_params(seed);
  // Batch-norm statistics and biases away from their identity values, so that folding them
  // is exercised.
  Rng rng = Rng::with_state(seed ^ 0x6e6c646d6f64656cull);
  for (ParamRef& p : model.parameters()) {
    const std::string& n = p.param->name;
    double lo = 0, hi = 0;
    if (n == "gamma") lo = 0.8, hi = 1.2;
    else if (n == "beta" || n == "running_mean") lo = -0.1, hi = 0.1;
    else if (n == "running_var") lo = 0.5, hi = 1.5;
    else if (n == "bias") lo = -0.05, hi = 0.05;
    else continue;
    for (float& v : p.param->value.values()) v = static_cast<float>(rng.uniform(lo, hi));
  }
  model.params_changed();
  return model;
}

}  // namespace nl
