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
  std::vector<float> probabilities;  // one per class, in model.classes() order, calibrated
                                     // (softmax of the logits / the model's temperature)
  size_t class_index = 0;            // argmax(probabilities): the first on ties
  bool uncertain = false;            // top probability below the model's uncertain_below
  // With the model's outlier detector (Confidence::has_detector): its score, and whether it
  // is above the threshold, i.e. the image does not look like the training images.
  bool has_outlier_score = false;
  double outlier_score = 0.0;
  bool out_of_distribution = false;
  InputRegion region;                // where in the image `input` came from
};

// The calibrated probabilities, uncertainty and outlier verdict of image `row` of the
// model's last forward pass (how classify_grey fills them; the evaluators use it per item).
void read_answer(const Model& model, size_t row, Classification& out);

// Throws std::invalid_argument (from the image decoder) when the bytes are not an image it
// reads. `model` is normally model.folded() (the same outputs, faster).
Classification classify_image(Runtime& rt, Model& model, std::span<const uint8_t> image);

// The same for an image already decoded (e.g. grey_from_levels of a scan slice).
Classification classify_grey(Runtime& rt, Model& model, GreyImage image);

}  // namespace nl
