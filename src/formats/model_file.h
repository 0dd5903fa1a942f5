// Model file: one self-describing safetensors file. Tensors are "<layer>.<param>" (F32, or
// F16 to halve the download: rounding moves each weight by at most 2^-11 of itself, and
// the values are read back into floats); __metadata__ (string -> string, as the format requires) holds
//   "format": "neurolens/1",
//   "architecture": JSON of Architecture, "classes": JSON array of names,
//   "preprocessing": JSON of Preprocessing, "training": JSON training record.
// Any safetensors reader opens the weights.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "formats/safetensors.h"

namespace nl {

std::vector<uint8_t> serialize_model(const Model& model, Dtype weights = Dtype::f32);
// Validates everything and throws std::invalid_argument naming what is wrong; never reads
// out of bounds or allocates more than the input's size (plus small constant) on bad input.
Model load_model(std::span<const uint8_t> bytes);

// Writes to "<path>.tmp" then renames, so an interrupted save never corrupts `path`.
void save_model_file(const Model& model, const std::string& path, Dtype weights = Dtype::f32);
Model load_model_file(const std::string& path);

}  // namespace nl
