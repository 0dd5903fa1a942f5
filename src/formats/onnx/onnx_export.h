// A model as a standard ONNX file (native builds only: ONNX's own C++ classes and checker from
// Debian's libonnx, on protobuf), so ONNX tools (onnxruntime, Netron) open what NeuroLens trained.
//
//   nl::Model model = nl::load_model_file("model/neurolens.safetensors").folded();
//   std::string bytes = nl::model_to_onnx(model);   // checked by onnx::checker before returning
//
// The graph is the model as given (pass model.folded() for what classification runs): input
// "input" [N, C, H, W] float (NCHW, as ONNX tools expect; N symbolic) holding the model's
// already-preprocessed input, output "probabilities" [N, classes] (the final softmax) and
// "logits". Opset 13. Weights are converted from the engine's NHWC/OHWI layouts; a flip layer
// is a Slice with step -1 on the width axis. The model's classes and preprocessing (mean, std,
// crop to head) are metadata_props, so a user of the file can prepare an image as NeuroLens
// does (see README, "ONNX export").
#pragma once
#include <string>

#include "core/model.h"

namespace nl {

inline constexpr int kOnnxOpset = 13;

// Throws std::invalid_argument for a layer type ONNX cannot express here, and
// std::runtime_error with ONNX's message if its checker rejects the result.
std::string model_to_onnx(Model& model);

}  // namespace nl
