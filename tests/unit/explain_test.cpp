// Grad-CAM and feature maps (src/explain.h). For conv -> relu -> global average pool -> dense
// the gradient of logit c at the relu output is W[c,k] / pixels everywhere, so the reference
// map is ReLU(sum_k W[c,k] * A[p,k]) scaled by its maximum, computed here with plain loops.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "features/ensemble.h"
#include "features/explain.h"
#include "core/model.h"
#include "reference.h"

namespace {

using nl::Architecture;
using nl::LayerSpec;
using nl::Model;
using nl::Runtime;
using nl::Tensor;
namespace ref = nl::ref;

LayerSpec spec(const char* name, const char* type) {
  LayerSpec s;
  s.name = name;
  s.type = type;
  return s;
}

// input 9x7x2 -> conv(5, 3x3, pad 1) -> relu -> [batch_norm -> dropout] -> gap -> dense(3) -> softmax
Model small_model(bool with_bn_and_dropout, uint64_t seed = 11) {
  Architecture a;
  a.height = 9;
  a.width = 7;
  a.channels = 2;
  LayerSpec conv = spec("conv", "conv2d");
  conv.filters = 5;
  conv.kernel = 3;
  conv.padding = 1;
  a.layers.push_back(conv);
  a.layers.push_back(spec("relu", "relu"));
  if (with_bn_and_dropout) {
    a.layers.push_back(spec("bn", "batch_norm"));
    LayerSpec drop = spec("drop", "dropout");
    drop.rate = 0.5f;
    a.layers.push_back(drop);
  }
  a.layers.push_back(spec("gap", "global_avg_pool"));
  LayerSpec fc = spec("fc", "dense");
  fc.units = 3;
  a.layers.push_back(fc);
  a.layers.push_back(spec("softmax", "softmax"));
  Model m(a, {"a", "b", "c"});
  m.init_params(seed);
  return m;
}

std::vector<float> all_params(Model& m) {
  std::vector<float> out;
  for (const nl::ParamRef& p : m.parameters())
    out.insert(out.end(), p.param->value.data(), p.param->value.data() + p.param->value.size());
  return out;
}

}  // namespace

TEST_CASE("grad_cam matches the closed form for conv-relu-gap-dense") {
  Runtime rt(1);
  Model m = small_model(false);
  const Tensor input = ref::random_tensor(m.input_shape(1), 5);
  const size_t relu = m.layer_index("relu");
  CHECK(nl::gradcam_layers(m) == std::vector<size_t>{relu});

  for (size_t target = 0; target < 3; ++target) {
    CAPTURE(target);
    const nl::Heatmap map = nl::grad_cam(rt, m, input, target);
    CHECK(map.layer == "relu");
    REQUIRE(map.height == 9);
    REQUIRE(map.width == 7);

    const Tensor& a = m.activation(relu);  // [1,9,7,5] from the pass grad_cam ran
    const Tensor& w = m.layer(m.layer_index("fc")).params()[0].value;  // [3,5]
    std::vector<double> expected(63, 0.0);
    double peak = 0.0;
    for (size_t p = 0; p < 63; ++p) {
      double sum = 0.0;
      for (size_t k = 0; k < 5; ++k) sum += (w[target * 5 + k] / 63.0) * a[p * 5 + k];
      expected[p] = std::max(sum, 0.0);
      peak = std::max(peak, expected[p]);
    }
    if (peak > 0)
      for (double& v : expected) v /= peak;
    CHECK_MESSAGE(ref::mismatch(map.values, expected, 1e-5, 1e-4) == "", ref::mismatch(map.values, expected, 1e-5, 1e-4));
  }
}

TEST_CASE("grad_cam is all zero when nothing supports the class") {
  Runtime rt(1);
  Model m = small_model(false);
  Tensor& w = m.layer(m.layer_index("fc")).params()[0].value;
  for (size_t k = 0; k < 5; ++k) w[1 * 5 + k] = -0.5f;  // every channel argues against class 1
  m.params_changed();
  const Tensor input = ref::random_tensor(m.input_shape(1), 6);
  const nl::Heatmap map = nl::grad_cam(rt, m, input, 1);
  CHECK(std::all_of(map.values.begin(), map.values.end(), [](float v) { return v == 0.0f; }));
}

TEST_CASE("grad_cam runs in inference mode and leaves the model as it was") {
  Runtime rt(1);
  Model m = small_model(true);
  const Tensor input = ref::random_tensor(m.input_shape(1), 7);
  const std::vector<float> before = all_params(m);
  const Tensor probs_before = m.forward(rt, input, false);

  const nl::Heatmap first = nl::grad_cam(rt, m, input, 2);
  const nl::Heatmap second = nl::grad_cam(rt, m, input, 2);
  CHECK(first.values == second.values);  // no dropout noise, no batch statistics
  CHECK(all_params(m) == before);        // running statistics untouched
  for (const nl::ParamRef& p : m.parameters())
    for (float g : p.param->grad.values()) REQUIRE(g == 0.0f);
  const Tensor& probs_after = m.forward(rt, input, false);
  CHECK(std::equal(probs_after.values().begin(), probs_after.values().end(), probs_before.values().begin()));
}

TEST_CASE("grad_cam and feature_maps reject wrong inputs with clear messages") {
  Runtime rt(1);
  Model m = small_model(false);
  const Tensor batch2 = ref::random_tensor(m.input_shape(2), 8);
  CHECK_THROWS_WITH_AS(nl::grad_cam(rt, m, batch2, 0), doctest::Contains("single-image shape"),
                       std::invalid_argument);
  const Tensor one = ref::random_tensor(m.input_shape(1), 8);
  CHECK_THROWS_WITH_AS(nl::grad_cam(rt, m, one, 3), doctest::Contains("class index 3"), std::invalid_argument);
  CHECK_THROWS_AS(nl::feature_maps(rt, m, one, "no_such_layer"), std::out_of_range);
}

TEST_CASE("feature_maps returns the named layer's output") {
  Runtime rt(1);
  Model m = small_model(false);
  const Tensor input = ref::random_tensor(m.input_shape(1), 9);
  const nl::FeatureMaps conv = nl::feature_maps(rt, m, input, "conv");
  CHECK(conv.type == "conv2d");
  CHECK(conv.height == 9);
  CHECK(conv.width == 7);
  CHECK(conv.channels == 5);
  const Tensor& a = m.activation(m.layer_index("conv"));
  CHECK(std::equal(conv.values.begin(), conv.values.end(), a.values().begin(), a.values().end()));

  const nl::FeatureMaps fc = nl::feature_maps(rt, m, input, "fc");
  CHECK(fc.height == 1);
  CHECK(fc.width == 1);
  CHECK(fc.channels == 3);
  CHECK(fc.values.size() == 3);
}

TEST_CASE("grad_cam of an ensemble weighs every branch's last feature maps") {
  // Two conv-relu-gap-dense members: the ensemble's logit c is the mean of theirs, so its
  // gradient at member j's relu output is W_j[c,k] / (2 * pixels), and the map is
  // ReLU(sum_j sum_k W_j[c,k] A_j[p,k] / 2), scaled by its maximum.
  Runtime rt(1);
  Model a = small_model(false, 21), b = small_model(false, 22);
  Model both = nl::mean_ensemble({&a, &b});
  const std::vector<size_t> layers = nl::gradcam_layers(both);
  REQUIRE(layers.size() == 2);
  CHECK(both.architecture().layers[layers[0]].name == "m1_relu");
  CHECK(both.architecture().layers[layers[1]].name == "m2_relu");
  const Tensor input = ref::random_tensor(both.input_shape(1), 12);
  a.forward(rt, input, false);
  b.forward(rt, input, false);
  for (size_t target = 0; target < 3; ++target) {
    CAPTURE(target);
    const nl::Heatmap map = nl::grad_cam(rt, both, input, target);
    CHECK(map.layer == "m1_relu+m2_relu");
    REQUIRE(map.values.size() == 63);
    std::vector<double> expected(63, 0.0);
    double peak = 0.0;
    for (Model* member : {&a, &b}) {
      const Tensor& act = member->activation(member->layer_index("relu"));
      const Tensor& w = member->layer(member->layer_index("fc")).params()[0].value;
      for (size_t p = 0; p < 63; ++p)
        for (size_t k = 0; k < 5; ++k) expected[p] += w[target * 5 + k] / (2.0 * 63.0) * act[p * 5 + k];
    }
    for (double& v : expected) peak = std::max(peak, v = std::max(v, 0.0));
    if (peak > 0)
      for (double& v : expected) v /= peak;
    CHECK_MESSAGE(ref::mismatch(map.values, expected, 1e-5, 1e-4) == "", ref::mismatch(map.values, expected, 1e-5, 1e-4));
  }
}

TEST_CASE("grad_cam of a flip-averaged model mirrors the mirrored branch's map back onto the image") {
  // Member 2 sees the image mirrored, so its relu output A_2 is in mirrored columns: its map
  // lands at (y, W-1-x). Then the map of an image is the mirror of the map of its mirror image.
  Runtime rt(1);
  Model a = small_model(false, 23);
  Model tta = nl::flip_averaged(a);
  const std::vector<size_t> layers = nl::gradcam_layers(tta);
  REQUIRE(layers.size() == 2);
  CHECK(tta.architecture().layers[layers[1]].name == "m2_relu");
  const size_t h = 9, w = 7;
  const Tensor input = ref::random_tensor(tta.input_shape(1), 14);
  Tensor flipped(input.shape());
  const std::vector<double> f = ref::flip_width(1, h, w, 2, ref::to_double(input.values()));
  for (size_t i = 0; i < f.size(); ++i) flipped[i] = static_cast<float>(f[i]);
  a.forward(rt, input, false);
  const Tensor act = a.activation(a.layer_index("relu"));
  a.forward(rt, flipped, false);
  const Tensor act_mirror = a.activation(a.layer_index("relu"));
  const Tensor& fc = a.layer(a.layer_index("fc")).params()[0].value;
  for (size_t target = 0; target < 3; ++target) {
    CAPTURE(target);
    std::vector<double> expected(h * w, 0.0);
    for (size_t y = 0; y < h; ++y)
      for (size_t x = 0; x < w; ++x)
        for (size_t k = 0; k < 5; ++k) {
          const double scale = fc[target * 5 + k] / (2.0 * double(h * w));
          expected[y * w + x] += scale * act[(y * w + x) * 5 + k];
          expected[y * w + (w - 1 - x)] += scale * act_mirror[(y * w + x) * 5 + k];
        }
    double peak = 0.0;
    for (double& v : expected) peak = std::max(peak, v = std::max(v, 0.0));
    if (peak > 0)
      for (double& v : expected) v /= peak;
    const nl::Heatmap map = nl::grad_cam(rt, tta, input, target);
    CHECK(map.layer == "m1_relu+m2_relu");
    CHECK_MESSAGE(ref::mismatch(map.values, expected, 1e-5, 1e-4) == "", ref::mismatch(map.values, expected, 1e-5, 1e-4));
    // The mirror image's map is this map mirrored.
    const nl::Heatmap map_mirror = nl::grad_cam(rt, tta, flipped, target);
    const std::vector<double> back = ref::flip_width(1, h, w, 1, ref::to_double(map_mirror.values));
    CHECK(ref::mismatch(map.values, back, 1e-5, 1e-4) == "");
  }
}
