// Explaining a prediction: Grad-CAM heat-maps and per-layer feature maps, for the page's
// overlay and its "Learn" view (and anything else that wants to look inside the model).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/runtime.h"
#include "core/tensor.h"

namespace nl {

// The layers Grad-CAM looks at: the deepest spatial features before the classifier head,
// i.e. each layer whose output is still an image ([N,H,W,C], more than one pixel) and is
// read by a layer whose output is not (one layer for a plain network; one per branch of an
// ensemble), keeping those of the same size as the last. Throws std::invalid_argument when
// the model has no layer with a spatial output.
std::vector<size_t> gradcam_layers(const Model& model);

struct Heatmap {
  std::string layer;           // the layer(s) whose activations were weighted, joined by "+"
  size_t width = 0, height = 0;  // that layer's output size (coarser than the input)
  std::vector<float> values;   // row-major, in [0,1]; all 0 when nothing supports the class
};

// Grad-CAM (Selvaraju et al. 2017) for class `target` of a single image input [1,H,W,C]:
// A = activations of a gradcam_layers layer, g = d(logit_target)/dA; each channel k is
// weighted by the spatial mean of g_k; cam = ReLU(sum over those layers and their channels
// of w_k A_k), scaled by its maximum. The map of a layer behind a flip layer (a branch of a
// flip-averaged model, features/ensemble.h) is mirrored back before it is added, so that every
// branch's map lies on the image as given. Runs an inference forward pass (dropout off,
// batch-norm running statistics) and a backward pass on `model`; parameter gradients
// accumulated on the way are cleared again.
Heatmap grad_cam(Runtime& rt, Model& model, const Tensor& input, size_t target);

struct FeatureMaps {
  std::string layer, type;
  size_t height = 1, width = 1, channels = 0;  // a dense output is 1 x 1 x units
  std::vector<float> values;                   // [H,W,C] row-major, as the layer produced them
};

// Runs an inference forward pass of a single image [1,H,W,C] and returns the output of the
// named layer. Throws std::out_of_range naming an unknown layer.
FeatureMaps feature_maps(Runtime& rt, Model& model, const Tensor& input,
                         const std::string& layer);

}  // namespace nl
