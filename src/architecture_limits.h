// Bounds on what an architecture may ask for, so that a malicious or corrupt model file
// cannot make the runtime allocate without limit, plus the validation shared by
// architecture_from_json and the Model constructor.
#pragma once
#include <cstddef>

#include "model.h"

namespace nl {

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
