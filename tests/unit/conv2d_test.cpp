// Conv2D against naive loops (reference.h): forward, fused ReLU, every gradient by finite
// differences, the backward on a large case, re-packing, reshaping, errors, init.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "layers/conv2d.h"
#include "layers/init.h"
#include "reference.h"

namespace {

using nl::Activation;
using nl::Conv2D;
using nl::LayerSpec;
using nl::Runtime;
using nl::Shape;
using nl::Tensor;
using nl::ref::ConvGeometry;

struct ConvCase {
  const char* label;
  ConvGeometry g;
  bool bias;
  bool relu;
};

// The odd-sized cases every test runs over.
const ConvCase kCases[] = {
    {"k3 s2 p1", {2, 7, 5, 3, 5, 3, 2, 1}, true, false},
    {"k3 s2 p1 relu", {2, 7, 5, 3, 5, 3, 2, 1}, true, true},
    {"k1 s1 p0 (pointwise)", {2, 7, 5, 3, 5, 1, 1, 0}, true, false},
    {"k1 s1 p0 relu no-bias", {2, 7, 5, 3, 5, 1, 1, 0}, false, true},
    {"k5 s1 p2", {2, 7, 5, 3, 5, 5, 1, 2}, true, false},
    {"k5 s1 p2 relu no-bias", {1, 6, 9, 2, 7, 5, 1, 2}, false, true},
    {"k2 s3 p0", {3, 8, 7, 4, 3, 2, 3, 0}, true, false},
    {"k3 s1 p2 (taps wholly in padding)", {2, 4, 5, 2, 3, 3, 1, 2}, true, true},
    {"k4 s2 p1 on a 2x3 image", {2, 2, 3, 2, 3, 4, 2, 1}, true, false},
    {"k3 s1 p1 relu, 19 filters (bias sums in two blocks)", {1, 5, 4, 2, 19, 3, 1, 1}, true, true},
    {"k3 s2 p1 relu on one channel, 33 filters", {2, 9, 7, 1, 33, 3, 2, 1}, false, true},
};

LayerSpec conv_spec(const ConvGeometry& g, bool bias, bool relu, const char* name = "conv") {
  LayerSpec spec;
  spec.name = name;
  spec.type = "conv2d";
  spec.filters = g.f;
  spec.kernel = g.k;
  spec.stride = g.stride;
  spec.padding = g.pad;
  spec.bias = bias;
  spec.activation = relu ? Activation::relu : Activation::none;
  return spec;
}

// A layer with seeded random weights and bias (wider spread than He init, so the ReLU
// clamps a fair share of outputs).
std::unique_ptr<Conv2D> make_conv(const ConvCase& cc, uint64_t seed) {
  auto layer = std::make_unique<Conv2D>(conv_spec(cc.g, cc.bias, cc.relu));
  layer->create_params({{1, cc.g.h, cc.g.w, cc.g.c}});
  nl::ref::fill_uniform(layer->params()[0].value.values(), seed, -0.5f, 0.5f);
  if (cc.bias) nl::ref::fill_uniform(layer->params()[1].value.values(), seed + 1, -0.5f, 0.5f);
  layer->params_changed();
  return layer;
}

std::vector<double> bias_of(const Conv2D& layer) {
  if (layer.params().size() < 2) return {};
  return nl::ref::to_double(layer.params()[1].value.values());
}

std::vector<double> reference_forward(const Conv2D& layer, const ConvGeometry& g,
                                      const Tensor& x, bool relu) {
  return nl::ref::conv2d(g, nl::ref::to_double(x.values()),
                         nl::ref::to_double(layer.params()[0].value.values()), bias_of(layer),
                         relu);
}

Shape input_shape(const ConvGeometry& g) { return {g.n, g.h, g.w, g.c}; }

}  // namespace

TEST_CASE("conv2d forward matches naive loops") {
  Runtime rt(1);
  for (const ConvCase& cc : kCases) {
    CAPTURE(cc.label);
    auto layer = make_conv(cc, 11);
    const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 12);
    Tensor y;
    layer->forward(rt, {&x}, y, false);
    CHECK(y.shape() == Shape{cc.g.n, cc.g.out_h(), cc.g.out_w(), cc.g.f});
    CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, cc.g, x, cc.relu), 1e-5,
                            1e-4) == "");
  }
}

TEST_CASE("conv2d forward on two threads matches naive loops") {
  Runtime rt(2);
  const ConvCase cc{"big", {3, 19, 17, 6, 9, 3, 1, 1}, true, true};
  auto layer = make_conv(cc, 21);
  const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 22);
  Tensor y;
  layer->forward(rt, {&x}, y, false);
  CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, cc.g, x, true), 1e-5, 1e-4) ==
        "");
}

TEST_CASE("conv2d slices its output channels when the weights are large, and matches naive loops") {
  // The slice arithmetic: all filters when they fit, else equal slices rounded up to 32.
  CHECK(nl::conv_slice_filters(64, 100, 1 << 20) == 64);
  CHECK(nl::conv_slice_filters(256, 2304, 256 * 1024) == 32);  // 2.25 MB: 9 slices of 29 -> 32
  CHECK(nl::conv_slice_filters(256, 1152, 256 * 1024) == 64);  // 1.125 MB: 5 slices of 52 -> 64
  CHECK(nl::conv_slice_filters(100, 2304, 256 * 1024) == 32);  // 900 KB: 4 slices of 25 -> 32
  CHECK(nl::conv_slice_filters(7, 1000000, 1024) == 7);         // never more than the filters
  // 100 filters of 3x3x256 (900 KB): slices of 32, 32, 32 and 4 filters, on odd sizes, with
  // bias and fused ReLU, batch 2, on one and two threads; then a new image size (reshaped).
  // Stride 2: the WebAssembly builds run 3x3 stride-1 convolutions as Winograd, not slices.
  REQUIRE(nl::conv_slice_filters(100, 9 * 256, nl::kConvSliceBytes) < 100);
  for (size_t threads : {size_t{1}, size_t{2}}) {
    CAPTURE(threads);
    Runtime rt(threads);
    for (bool relu : {false, true}) {
      CAPTURE(relu);
      ConvCase cc{"sliced", {2, 7, 5, 256, 100, 3, 2, 1}, true, relu};
      auto layer = make_conv(cc, 41);
      for (size_t h : {size_t{7}, size_t{4}}) {
        cc.g.h = h;
        const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 42 + h);
        Tensor y;
        layer->forward(rt, {&x}, y, false);
        CHECK(y.shape() == Shape{cc.g.n, cc.g.out_h(), cc.g.out_w(), cc.g.f});
        const std::string err = nl::ref::mismatch(y.values(), reference_forward(*layer, cc.g, x, relu), 1e-4, 1e-4);
        CHECK_MESSAGE(err.empty(), err);
      }
    }
  }
}

TEST_CASE("conv2d gradients match finite differences") {
  Runtime rt(1);
  for (const ConvCase& cc : kCases) {
    CAPTURE(cc.label);
    const ConvGeometry& g = cc.g;
    auto layer = make_conv(cc, 31);
    const Tensor x = nl::ref::random_tensor(input_shape(g), 32);
    Tensor y;
    layer->forward(rt, {&x}, y, true);
    // loss = sum(y * r): dLoss/dy = r.
    const Tensor r = nl::ref::random_tensor(y.shape(), 33);
    Tensor dx;
    layer->backward(rt, {&x}, y, r, {&dx});
    REQUIRE(dx.shape() == x.shape());

    const std::vector<double> xd = nl::ref::to_double(x.values());
    const std::vector<double> wd = nl::ref::to_double(layer->params()[0].value.values());
    const std::vector<double> bd = bias_of(*layer);
    const std::vector<double> rd = nl::ref::to_double(r.values());
    const double eps = 1e-4, abs_tol = 1e-4, rel_tol = 1e-3;
    auto out = [&](bool relu) {
      return [&, relu](const std::vector<double>& xv, const std::vector<double>& wv,
                       const std::vector<double>& bv) {
        return nl::ref::conv2d(g, xv, wv, bv, relu);
      };
    };
    auto fx = [&](const std::vector<double>& v) { return out(cc.relu)(v, wd, bd); };
    auto px = [&](const std::vector<double>& v) {
      return cc.relu ? out(false)(v, wd, bd) : std::vector<double>{};
    };
    CHECK(nl::ref::gradient_mismatch(dx.values(),
                                     nl::ref::numeric_gradient(xd, rd, fx, px, eps), abs_tol,
                                     rel_tol) == "");
    auto fw = [&](const std::vector<double>& v) { return out(cc.relu)(xd, v, bd); };
    auto pw = [&](const std::vector<double>& v) {
      return cc.relu ? out(false)(xd, v, bd) : std::vector<double>{};
    };
    CHECK(nl::ref::gradient_mismatch(layer->params()[0].grad.values(),
                                     nl::ref::numeric_gradient(wd, rd, fw, pw, eps), abs_tol,
                                     rel_tol) == "");
    if (cc.bias) {
      auto fb = [&](const std::vector<double>& v) { return out(cc.relu)(xd, wd, v); };
      auto pb = [&](const std::vector<double>& v) {
        return cc.relu ? out(false)(xd, wd, v) : std::vector<double>{};
      };
      CHECK(nl::ref::gradient_mismatch(layer->params()[1].grad.values(),
                                       nl::ref::numeric_gradient(bd, rd, fb, pb, eps), abs_tol,
                                       rel_tol) == "");
    }
  }
}

TEST_CASE("conv2d backward on a large case matches naive gradients") {
  // 3 images of 100x100x16 with a 3x3 kernel: the weight gradient in many blocks of lines
  // (conv_weight_gradient_test.cpp covers its chunks of images).
  Runtime rt(1);
  const ConvCase cc{"chunked", {3, 100, 100, 16, 4, 3, 1, 1}, true, true};
  auto layer = make_conv(cc, 41);
  const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 42);
  Tensor y;
  layer->forward(rt, {&x}, y, true);
  const Tensor r = nl::ref::random_tensor(y.shape(), 43);
  Tensor dx;
  layer->backward(rt, {&x}, y, r, {&dx});
  std::vector<double> masked(r.size());
  for (size_t i = 0; i < r.size(); ++i) masked[i] = y[i] > 0.0f ? r[i] : 0.0;
  const nl::ref::ConvGrads want =
      nl::ref::conv2d_backward(cc.g, nl::ref::to_double(x.values()),
                               nl::ref::to_double(layer->params()[0].value.values()), masked);
  CHECK(nl::ref::mismatch(dx.values(), want.dx, 1e-4, 1e-4) == "");
  CHECK(nl::ref::mismatch(layer->params()[0].grad.values(), want.dweight, 1e-3, 1e-4) == "");
  CHECK(nl::ref::mismatch(layer->params()[1].grad.values(), want.dbias, 1e-3, 1e-4) == "");
}

TEST_CASE("conv2d backward accumulates, respects frozen and optional din") {
  Runtime rt(1);
  const ConvCase& cc = kCases[0];
  auto layer = make_conv(cc, 51);
  const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 52);
  Tensor y;
  layer->forward(rt, {&x}, y, true);
  const Tensor r = nl::ref::random_tensor(y.shape(), 53);

  layer->backward(rt, {&x}, y, r, {nullptr});  // parameter gradients only
  const Tensor dw_once = layer->params()[0].grad;
  const Tensor db_once = layer->params()[1].grad;
  layer->backward(rt, {&x}, y, r, {nullptr});
  std::vector<double> twice_w, twice_b;
  for (float v : dw_once.values()) twice_w.push_back(2.0 * v);
  for (float v : db_once.values()) twice_b.push_back(2.0 * v);
  CHECK(nl::ref::mismatch(layer->params()[0].grad.values(), twice_w, 1e-6, 1e-5) == "");
  CHECK(nl::ref::mismatch(layer->params()[1].grad.values(), twice_b, 1e-6, 1e-5) == "");

  layer->frozen = true;
  Tensor dx;
  layer->backward(rt, {&x}, y, r, {&dx});
  CHECK(nl::ref::mismatch(layer->params()[0].grad.values(), twice_w, 0, 0) == "");
  CHECK(dx.shape() == x.shape());
  std::vector<double> masked = nl::ref::to_double(r.values());
  const nl::ref::ConvGrads want = nl::ref::conv2d_backward(
      cc.g, nl::ref::to_double(x.values()),
      nl::ref::to_double(layer->params()[0].value.values()), masked);
  CHECK(nl::ref::mismatch(dx.values(), want.dx, 1e-5, 1e-4) == "");
}

TEST_CASE("conv2d re-packs weights after params_changed") {
  Runtime rt(1);
  const ConvCase& cc = kCases[1];
  auto layer = make_conv(cc, 61);
  const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 62);
  Tensor y;
  layer->forward(rt, {&x}, y, false);
  const std::vector<double> before = reference_forward(*layer, cc.g, x, cc.relu);
  CHECK(nl::ref::mismatch(y.values(), before, 1e-5, 1e-4) == "");

  nl::ref::fill_uniform(layer->params()[0].value.values(), 63, -0.5f, 0.5f);
  nl::ref::fill_uniform(layer->params()[1].value.values(), 64, -0.5f, 0.5f);
  layer->params_changed();
  layer->forward(rt, {&x}, y, false);
  const std::vector<double> after = reference_forward(*layer, cc.g, x, cc.relu);
  CHECK(nl::ref::mismatch(y.values(), after, 1e-5, 1e-4) == "");
  CHECK(nl::ref::mismatch(y.values(), before, 1e-5, 1e-4) != "");  // the change is visible
}

TEST_CASE("conv2d backward re-packs the input-gradient weights after params_changed") {
  // dX comes from an XNNPACK deconvolution holding its own packed copy of the weights: a
  // step that changes them must not leave dX computed with the old ones, whether or not a
  // forward came in between.
  Runtime rt(1);
  for (bool forward_between : {true, false}) {
    CAPTURE(forward_between);
    const ConvCase& cc = kCases[0];
    auto layer = make_conv(cc, 65);
    const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 66);
    Tensor y, dx;
    layer->forward(rt, {&x}, y, true);
    const Tensor r = nl::ref::random_tensor(y.shape(), 67);
    layer->backward(rt, {&x}, y, r, {&dx});
    nl::ref::fill_uniform(layer->params()[0].value.values(), 68, -0.5f, 0.5f);
    layer->params_changed();
    if (forward_between) layer->forward(rt, {&x}, y, true);
    layer->backward(rt, {&x}, y, r, {&dx});
    const nl::ref::ConvGrads want = nl::ref::conv2d_backward(
        cc.g, nl::ref::to_double(x.values()),
        nl::ref::to_double(layer->params()[0].value.values()), nl::ref::to_double(r.values()));
    CHECK(nl::ref::mismatch(dx.values(), want.dx, 1e-5, 1e-4) == "");
  }
}

TEST_CASE("conv2d backward gives the same bits on one and two threads") {
  // Training must not depend on the thread count: every gradient is summed in the same
  // order whichever thread computes it.
  for (const ConvCase& cc : {ConvCase{"s1", {3, 19, 17, 6, 9, 3, 1, 1}, true, true},
                             ConvCase{"s2", {4, 20, 21, 8, 16, 3, 2, 1}, false, false},
                             ConvCase{"k1 s2", {4, 20, 21, 8, 16, 1, 2, 0}, false, false},
                             ConvCase{"37 filters, ReLU mask over several chunks", {4, 24, 20, 5, 37, 3, 1, 1}, true, true}}) {
    CAPTURE(cc.label);
    std::vector<float> dx[2], dw[2], db[2];
    for (size_t t = 0; t < 2; ++t) {
      Runtime rt(t + 1);
      auto layer = make_conv(cc, 81);
      const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 82);
      Tensor y, d;
      layer->forward(rt, {&x}, y, true);
      const Tensor r = nl::ref::random_tensor(y.shape(), 83);
      layer->backward(rt, {&x}, y, r, {&d});
      dx[t].assign(d.values().begin(), d.values().end());
      dw[t].assign(layer->params()[0].grad.values().begin(), layer->params()[0].grad.values().end());
      if (cc.bias) db[t].assign(layer->params()[1].grad.values().begin(), layer->params()[1].grad.values().end());
    }
    CHECK(nl::ref::mismatch(dx[1], nl::ref::to_double(dx[0]), 0, 0) == "");
    CHECK(nl::ref::mismatch(dw[1], nl::ref::to_double(dw[0]), 0, 0) == "");
    CHECK(nl::ref::mismatch(db[1], nl::ref::to_double(db[0]), 0, 0) == "");
  }
}

TEST_CASE("conv2d prepare_operators re-packs changed weights: forward and input gradient use the new ones") {
  Runtime rt(2);
  const ConvCase& cc = kCases[1];  // k3 s2 p1 relu
  auto prepared = make_conv(cc, 41);
  const Tensor x = nl::ref::random_tensor(input_shape(cc.g), 42);
  Tensor y, dx;
  prepared->forward(rt, {&x}, y, true);
  const Tensor r = nl::ref::random_tensor(y.shape(), 43);
  prepared->backward(rt, {&x}, y, r, {&dx});  // now it has an input-gradient operator
  // New weights, as an optimizer step leaves them; a twin gets them the lazy way.
  nl::ref::fill_uniform(prepared->params()[0].value.values(), 44, -0.5f, 0.5f);
  prepared->params_changed();
  prepared->prepare_operators();
  auto lazy = make_conv(cc, 41);
  std::copy(prepared->params()[0].value.values().begin(), prepared->params()[0].value.values().end(),
            lazy->params()[0].value.values().begin());
  lazy->params_changed();
  Tensor y_prepared, y_lazy, dx_prepared, dx_lazy;
  prepared->forward(rt, {&x}, y_prepared, true);
  lazy->forward(rt, {&x}, y_lazy, true);
  CHECK(nl::ref::mismatch(y_prepared.values(), reference_forward(*prepared, cc.g, x, cc.relu), 1e-5, 1e-4) == "");
  prepared->backward(rt, {&x}, y_prepared, r, {&dx_prepared});
  lazy->backward(rt, {&x}, y_lazy, r, {&dx_lazy});
  CHECK(nl::ref::mismatch(dx_prepared.values(), nl::ref::to_double(dx_lazy.values()), 0, 0) == "");
  CHECK(nl::ref::mismatch(dx_prepared.values(), nl::ref::to_double(dx.values()), 0, 0) != "");  // not the old weights'
}

TEST_CASE("conv2d reshapes when batch or image size changes") {
  Runtime rt(1);
  const ConvCase& cc = kCases[0];
  auto layer = make_conv(cc, 71);
  const ConvGeometry sizes[] = {cc.g, {3, 7, 5, 3, 5, 3, 2, 1}, {1, 7, 5, 3, 5, 3, 2, 1},
                                {2, 9, 6, 3, 5, 3, 2, 1}, cc.g};
  uint64_t seed = 72;
  for (const ConvGeometry& g : sizes) {
    CAPTURE(nl::to_string(input_shape(g)));
    const Tensor x = nl::ref::random_tensor(input_shape(g), seed++);
    Tensor y;
    layer->forward(rt, {&x}, y, false);
    CHECK(y.shape() == Shape{g.n, g.out_h(), g.out_w(), g.f});
    CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, g, x, cc.relu), 1e-5, 1e-4) ==
          "");
  }
}

TEST_CASE("conv2d rejects bad specs and shapes with a clear message") {
  ConvGeometry g{1, 1, 1, 1, 4, 5, 1, 1};
  CHECK_THROWS_WITH_AS(Conv2D(conv_spec({1, 1, 1, 1, 0, 3, 1, 1}, true, false, "c0")),
                       "layer 'c0' (conv2d): filters must be at least 1, got 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Conv2D(conv_spec({1, 1, 1, 1, 4, 3, 0, 1}, true, false, "c0")),
                       "layer 'c0' (conv2d): stride must be at least 1, got 0",
                       std::invalid_argument);
  Conv2D layer(conv_spec(g, true, false, "conv1"));
  CHECK_THROWS_WITH_AS(
      layer.output_shape({{1, 1, 8, 2}}),
      "layer 'conv1' (conv2d): kernel 5 exceeds padded input height 3 (height 1 + 2 * padding 1)",
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer.output_shape({{1, 8, 8}}),
                       "layer 'conv1' (conv2d): input must be NHWC [N,H,W,C], got shape [1,8,8]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer.output_shape({{1, 8, 8, 2}, {1, 8, 8, 2}}),
                       "layer 'conv1' (conv2d): expects 1 input, got 2", std::invalid_argument);
  Runtime rt(1);
  const Tensor x({1, 8, 8, 2});
  Tensor y;
  CHECK_THROWS_WITH_AS(layer.forward(rt, {&x}, y, false),
                       "layer 'conv1' (conv2d): forward before create_params",
                       std::invalid_argument);
  layer.create_params({{1, 8, 8, 2}});
  CHECK(layer.params()[0].value.shape() == Shape{4, 5, 5, 2});
  CHECK(layer.params()[1].value.shape() == Shape{4});
  const Tensor wrong({1, 8, 8, 3});
  CHECK_THROWS_WITH_AS(
      layer.forward(rt, {&wrong}, y, false),
      "layer 'conv1' (conv2d): input has 3 channels but the weight [4,5,5,2] expects 2",
      std::invalid_argument);
  layer.forward(rt, {&x}, y, false);
  const Tensor bad_grad({1, 3, 3, 4});
  CHECK_THROWS_WITH_AS(layer.backward(rt, {&x}, y, bad_grad, {nullptr}),
                       "layer 'conv1' (conv2d): backward: gradient shape [1,3,3,4] differs from "
                       "output shape [1,6,6,4]",
                       std::invalid_argument);
}

TEST_CASE("conv2d flops and He-normal init") {
  Conv2D layer(conv_spec({1, 32, 32, 8, 16, 3, 1, 1}, true, false));
  layer.create_params({{1, 32, 32, 8}});
  CHECK(layer.flops({{1, 32, 32, 8}}) == doctest::Approx(2.0 * 32 * 32 * 3 * 3 * 8 * 16));

  layer.init_params(7);
  const Tensor first = layer.params()[0].value;
  layer.init_params(7);
  CHECK(nl::ref::mismatch(layer.params()[0].value.values(), nl::ref::to_double(first.values()),
                          0, 0) == "");  // deterministic
  layer.init_params(8);
  CHECK(nl::ref::mismatch(layer.params()[0].value.values(), nl::ref::to_double(first.values()),
                          0, 0) != "");
  for (float b : layer.params()[1].value.values()) CHECK(b == 0.0f);

  // 1152 samples of N(0, 2/72): mean and standard deviation within a few standard errors.
  double sum = 0.0, sq = 0.0;
  for (float v : first.values()) {
    sum += v;
    sq += double(v) * v;
  }
  const double n = static_cast<double>(first.size()), want_std = std::sqrt(2.0 / 72.0);
  const double mean = sum / n, stddev = std::sqrt(sq / n - mean * mean);
  CHECK(std::fabs(mean) < 4.0 * want_std / std::sqrt(n));
  CHECK(std::fabs(stddev / want_std - 1.0) < 0.08);
}

TEST_CASE("He-normal init gives the same weights in every build") {
  // Values printed by the native build; the wasm build (libc++, musl libm) must agree, or a
  // model initialised in the browser would differ from the same seed natively.
  std::vector<float> values(6);
  nl::fill_he_normal(values, 50, 2024);
  const std::vector<double> want = {0.0548928268, -0.190208271, -0.16452682,
                                    0.281024605,  0.405881613,  0.491924942};
  CHECK(nl::ref::mismatch(values, want, 1e-8, 1e-6) == "");
}

TEST_CASE("conv2d 3x3 stride 1: Winograd and direct paths by input size, each re-packed after params_changed") {
  // 64 channels: natively a single 8x8 image runs as Winograd (16 blocks) and a batch of two
  // 40x40 images as direct convolution (its blocks exceed the cache budget); in the WebAssembly
  // builds both run as Winograd. Either way every shape, in any order, before and after new
  // weights (also packed ahead by prepare_operators), matches the naive loops.
  Runtime rt(2);
  const ConvCase small{"winograd-sized", {1, 8, 8, 64, 16, 3, 1, 1}, true, true};
  ConvCase large = small;
  large.g.n = 2;
  large.g.h = large.g.w = 40;
  auto layer = make_conv(small, 91);
  uint64_t seed = 92;
  for (int round = 0; round < 2; ++round) {
    for (const ConvCase* cc : std::initializer_list<const ConvCase*>{&small, &large, &small}) {
      CAPTURE(round);
      CAPTURE(cc->g.h);
      const Tensor x = nl::ref::random_tensor(input_shape(cc->g), seed++);
      Tensor y;
      layer->forward(rt, {&x}, y, false);
      const std::string err = nl::ref::mismatch(y.values(), reference_forward(*layer, cc->g, x, true), 1e-4, 1e-4);
      CHECK_MESSAGE(err.empty(), err);
    }
    nl::ref::fill_uniform(layer->params()[0].value.values(), seed++, -0.5f, 0.5f);
    nl::ref::fill_uniform(layer->params()[1].value.values(), seed++, -0.5f, 0.5f);
    layer->params_changed();
    if (round == 0) layer->prepare_operators();
  }
}
