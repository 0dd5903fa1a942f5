#include "features/explain.h"

#include <algorithm>
#include <stdexcept>

namespace nl {

namespace {

void check_single_image(const Model& model, const Tensor& input, const char* what) {
  if (input.shape() != model.input_shape(1))
    throw std::invalid_argument(std::string(what) + ": input shape " + to_string(input.shape()) +
                                " is not the model's single-image shape " +
                                to_string(model.input_shape(1)));
}

// For each layer, whether its output is mirrored left to right relative to the image: an odd
// number of flip layers lies on its path from the input (a flip-averaged ensemble's second
// branch). A layer with two inputs follows its first.
std::vector<bool> mirrored_layers(const Model& model) {
  const Architecture named = explicit_inputs(model.architecture());
  std::vector<bool> mirrored(named.layers.size(), false);
  for (size_t i = 0; i < named.layers.size(); ++i) {
    const std::string& from = named.layers[i].inputs.at(0);
    const bool in_mirrored = from != "input" && mirrored[model.layer_index(from)];
    mirrored[i] = in_mirrored != (named.layers[i].type == "flip");
  }
  return mirrored;
}

}  // namespace

std::vector<size_t> gradcam_layers(const Model& model) {
  const Architecture named = explicit_inputs(model.architecture());
  auto spatial = [&](size_t i) {
    const Shape shape = model.output_shape(i, 1);
    return shape.size() == 4 && shape[1] * shape[2] > 1;
  };
  std::vector<size_t> found;
  for (size_t i = 0; i < named.layers.size(); ++i) {
    if (!spatial(i)) continue;
    for (size_t j = i + 1; j < named.layers.size(); ++j)
      if (!spatial(j) && std::count(named.layers[j].inputs.begin(), named.layers[j].inputs.end(),
                                    named.layers[i].name)) {
        found.push_back(i);
        break;
      }
  }
  if (found.empty()) {  // every spatial output is read only by spatial layers: take the last
    for (size_t i = named.layers.size(); i-- > 0;)
      if (spatial(i)) return {i};
    throw std::invalid_argument(
        "Grad-CAM: the model has no layer with a spatial output ([N,H,W,C] with H*W > 1)");
  }
  const Shape last = model.output_shape(found.back(), 1);
  std::erase_if(found, [&](size_t i) { return model.output_shape(i, 1) != last; });
  return found;
}

Heatmap grad_cam(Runtime& rt, Model& model, const Tensor& input, size_t target) {
  check_single_image(model, input, "Grad-CAM");
  const size_t classes = model.classes().size();
  if (target >= classes)
    throw std::invalid_argument("Grad-CAM: class index " + std::to_string(target) +
                                " is not below the class count " + std::to_string(classes));
  const std::vector<size_t> layers = gradcam_layers(model);
  const std::vector<bool> mirrored = mirrored_layers(model);

  model.forward(rt, input, /*training=*/false);
  Tensor dlogits(model.logits().shape(), 0.0f);
  dlogits[target] = 1.0f;
  model.zero_grad();
  model.backward(rt, dlogits, /*keep_all_gradients=*/true);

  Heatmap map;
  std::vector<double> cam;
  for (size_t layer : layers) {
    const Tensor& a = model.activation(layer);
    const Tensor& g = model.gradient(layer);
    const size_t h = a.dim(1), w = a.dim(2), c = a.dim(3), pixels = h * w;
    // Channel weights: the spatial mean of the gradient (global-average-pooled gradient).
    std::vector<double> weight(c, 0.0);
    for (size_t p = 0; p < pixels; ++p)
      for (size_t k = 0; k < c; ++k) weight[k] += g[p * c + k];
    for (double& v : weight) v /= static_cast<double>(pixels);
    cam.resize(pixels, 0.0);
    // A branch that sees the image mirrored has its map mirrored back onto the image.
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < w; ++x) {
        const size_t p = y * w + x, at = mirrored[layer] ? y * w + (w - 1 - x) : p;
        for (size_t k = 0; k < c; ++k) cam[at] += weight[k] * a[p * c + k];
      }
    map.layer += (map.layer.empty() ? "" : "+") + model.architecture().layers[layer].name;
    map.height = h;
    map.width = w;
  }
  map.values.assign(cam.size(), 0.0f);
  float peak = 0.0f;
  for (size_t p = 0; p < cam.size(); ++p) {
    map.values[p] = static_cast<float>(std::max(cam[p], 0.0));
    peak = std::max(peak, map.values[p]);
  }
  if (peak > 0.0f)
    for (float& v : map.values) v /= peak;

  model.zero_grad();  // the backward pass was for explanation only
  return map;
}

FeatureMaps feature_maps(Runtime& rt, Model& model, const Tensor& input,
                         const std::string& layer) {
  check_single_image(model, input, "feature maps");
  const size_t index = model.layer_index(layer);
  model.forward(rt, input, /*training=*/false);
  const Tensor& out = model.activation(index);

  FeatureMaps maps;
  maps.layer = layer;
  maps.type = model.architecture().layers[index].type;
  if (out.rank() == 4) {
    maps.height = out.dim(1);
    maps.width = out.dim(2);
    maps.channels = out.dim(3);
  } else if (out.rank() == 2) {
    maps.channels = out.dim(1);
  } else {
    throw std::invalid_argument("feature maps: layer '" + layer + "' has an output of rank " +
                                std::to_string(out.rank()) + "; expected 2 or 4");
  }
  maps.values.assign(out.data(), out.data() + out.size());
  return maps;
}

}  // namespace nl
