// Classifying one image: file bytes -> preprocessing (the model's) -> forward pass ->
// probabilities and the predicted class. The one path both the command line
// (neurolens classify) and the page (Engine.classify in wasm/bindings.cpp) take.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/model.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "formats/image.h"

namespace nl {

struct Classification {
  Tensor input;                      // the preprocessed [1,H,W,C] input the model saw
  std::vector<float> probabilities;  // one per class, in model.classes() order
  size_t class_index = 0;            // argmax(probabilities): the first on ties
  InputRegion region;                // where in the image `input` came from
};

// Throws std::invalid_argument (from the image decoder) when the bytes are not an image it
// reads. `model` is normally model.folded() (the same outputs, faster).
Classification classify_image(Runtime& rt, Model& model, std::span<const uint8_t> image);

// The same for an image already decoded (e.g. grey_from_levels of a scan slice).
Classification classify_grey(Runtime& rt, Model& model, GreyImage image);

}  // namespace nl
