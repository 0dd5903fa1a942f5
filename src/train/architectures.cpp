#include "train/architectures.h"

#include <stdexcept>

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

}  // namespace

const std::vector<ArchitectureInfo>& architecture_catalogue() {
  static const std::vector<ArchitectureInfo> list = {
      {"resnet-s", "ResNet-style: 3x3/2 stem + max pool, 4 stages of one basic block "
                   "(32, 64, 128, 256 channels), global average pooling, dense; the shipped model "
                   "(at 160x160)",
       128},
      {"resnet-m", "as resnet-s with two basic blocks per stage", 128},
      {"resnet-w", "as resnet-s with 48, 96, 192, 384 channels", 128},
      {"resnet-xs", "as resnet-s with 24, 48, 96, 192 channels", 112},
      {"tiny", "two conv + batch norm + ReLU + max pool layers, global average pooling, dense "
               "(tests, quick experiments)", 32},
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
  const size_t min_size = name == "tiny" ? 8 : 32;
  if (input_size < min_size || input_size > 1024)
    throw std::invalid_argument("architecture '" + name + "': input size " +
                                std::to_string(input_size) + " is outside " +
                                std::to_string(min_size) + "..1024");
  if (name == "resnet-s") return resnet(input_size, classes, {32, 64, 128, 256}, 1, 0.1f);
  if (name == "resnet-m") return resnet(input_size, classes, {32, 64, 128, 256}, 2, 0.1f);
  if (name == "resnet-w") return resnet(input_size, classes, {48, 96, 192, 384}, 1, 0.1f);
  if (name == "resnet-xs") return resnet(input_size, classes, {24, 48, 96, 192}, 1, 0.1f);
  return tiny_cnn(input_size, classes);
}

}  // namespace nl
