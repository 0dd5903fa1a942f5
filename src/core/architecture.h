// Architecture: what a model is, as its file's JSON says: the input size and the layers in
// execution order, each with its type and settings. Preprocessing: how an image becomes the
// model's input. Their JSON form, with strict validation, and the bounds on what an
// architecture may ask for (so that a malicious or corrupt model file cannot make the
// runtime allocate without limit). Below the model and the layers: nothing here runs.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nl {

enum class Activation { none, relu };

// What a layer is, as written in the model's architecture JSON.
struct LayerSpec {
  std::string name;
  std::string type;  // conv2d, dense, relu, max_pool, avg_pool, global_avg_pool,
                     // batch_norm, add, dropout, softmax, flip
  std::vector<std::string> inputs;  // node names; "input" is the image batch;
                                    // empty = the previous layer (the input for the first)
  size_t filters = 0;               // conv2d output channels
  size_t units = 0;                 // dense outputs
  size_t kernel = 1, stride = 1, padding = 0;  // conv2d and pools; square, symmetric padding
  bool bias = true;                 // conv2d, dense
  Activation activation = Activation::none;  // fused: conv2d, dense, add
  float rate = 0.0f;                // dropout probability
  float epsilon = 1e-5f;            // batch_norm
  float momentum = 0.1f;            // batch_norm: running = (1-m)*running + m*batch
};

struct Architecture {
  size_t height = 0, width = 0, channels = 1;  // input image, NHWC without the batch
  std::vector<LayerSpec> layers;               // in execution order (topological)
};

// How an image becomes the model's input: decoded, converted to grey, optionally cropped
// to the head (image.h: head_box), resized to height x width (architecture input), scaled
// to [0,1], then (x - mean) / std.
struct Preprocessing {
  float mean = 0.0f;
  float std = 1.0f;
  // Scans come framed differently (wide black borders, tight crops, off-centre heads);
  // cropping to the head first makes the model see every head at the same scale.
  bool crop_to_head = false;
};

// The same architecture with every layer's inputs named (an empty list means the previous
// layer, or the image for the first).
Architecture explicit_inputs(const Architecture& arch);

nlohmann::json to_json(const Architecture& arch);
nlohmann::json to_json(const Preprocessing& pre);
// Both validate and throw std::invalid_argument naming the field and what is wrong
// (unknown layer type, missing/negative/absurd sizes, unknown input name, ...).
Architecture architecture_from_json(const nlohmann::json& j);
Preprocessing preprocessing_from_json(const nlohmann::json& j);

struct ArchitectureLimits {
  static constexpr size_t max_layers = 1000;
  static constexpr size_t max_image_side = 4096;    // input height and width
  static constexpr size_t max_channels = 16;        // input channels
  static constexpr size_t max_kernel = 64;          // conv2d and pools (stride too)
  static constexpr size_t max_filters = 65536;      // conv2d filters, dense units
  static constexpr size_t max_name_length = 64;     // layer names
  static constexpr size_t max_classes = 65536;
  static constexpr size_t max_class_name_length = 256;
  static constexpr double max_parameters = 64e6;    // floats over all layers (256 MB)
  static constexpr double max_activations = 256e6;  // floats per image, summed over layers (1 GB)
};

// Throws std::invalid_argument naming the field ("architecture.layers[3] ('conv1').kernel")
// and the rule: input size, layer count, names (1-64 of A-Z a-z 0-9 _ -, unique, not
// "input"), known types, per-type value ranges, input references (the image or an earlier
// layer) and input counts. Shapes are checked by Model, which knows each layer's rules.
void validate_architecture(const Architecture& arch);

}  // namespace nl
