// Dense against naive loops (reference.h): forward on [N,C] and NHWC input, fused ReLU,
// every gradient by finite differences, re-packing, reshaping, errors, init.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <stdexcept>

#include "layers/dense.h"
#include "reference.h"

namespace {

using nl::Activation;
using nl::Dense;
using nl::LayerSpec;
using nl::Runtime;
using nl::Shape;
using nl::Tensor;

struct DenseCase {
  const char* label;
  Shape input;
  size_t units;
  bool bias;
  bool relu;
};

const DenseCase kCases[] = {
    {"[3,7] -> 5", {3, 7}, 5, true, false},
    {"[3,7] -> 5 relu", {3, 7}, 5, true, true},
    {"[2,3,2,4] NHWC -> 6", {2, 3, 2, 4}, 6, true, false},
    {"[2,3,2,4] NHWC -> 6 relu no-bias", {2, 3, 2, 4}, 6, false, true},
    {"[1,13] -> 1", {1, 13}, 1, true, false},
    {"[5,37] -> 19 relu", {5, 37}, 19, true, true},
};

LayerSpec dense_spec(size_t units, bool bias, bool relu, const char* name = "fc") {
  LayerSpec spec;
  spec.name = name;
  spec.type = "dense";
  spec.units = units;
  spec.bias = bias;
  spec.activation = relu ? Activation::relu : Activation::none;
  return spec;
}

Shape batch_one(Shape s) {
  s[0] = 1;
  return s;
}

std::unique_ptr<Dense> make_dense(const DenseCase& dc, uint64_t seed) {
  auto layer = std::make_unique<Dense>(dense_spec(dc.units, dc.bias, dc.relu));
  layer->create_params({batch_one(dc.input)});
  nl::ref::fill_uniform(layer->params()[0].value.values(), seed, -0.5f, 0.5f);
  if (dc.bias) nl::ref::fill_uniform(layer->params()[1].value.values(), seed + 1, -0.5f, 0.5f);
  layer->params_changed();
  return layer;
}

size_t features(const Shape& s) { return nl::numel(s) / s[0]; }

std::vector<double> bias_of(const Dense& layer) {
  if (layer.params().size() < 2) return {};
  return nl::ref::to_double(layer.params()[1].value.values());
}

std::vector<double> reference_forward(const Dense& layer, const Tensor& x, size_t units,
                                      bool relu) {
  return nl::ref::dense(x.dim(0), features(x.shape()), units, nl::ref::to_double(x.values()),
                        nl::ref::to_double(layer.params()[0].value.values()), bias_of(layer),
                        relu);
}

}  // namespace

TEST_CASE("dense forward matches naive loops") {
  Runtime rt(1);
  for (const DenseCase& dc : kCases) {
    CAPTURE(dc.label);
    auto layer = make_dense(dc, 101);
    const Tensor x = nl::ref::random_tensor(dc.input, 102);
    Tensor y;
    layer->forward(rt, {&x}, y, false);
    CHECK(y.shape() == Shape{dc.input[0], dc.units});
    CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, x, dc.units, dc.relu), 1e-5,
                            1e-4) == "");
  }
}

TEST_CASE("dense gradients match finite differences") {
  Runtime rt(1);
  for (const DenseCase& dc : kCases) {
    CAPTURE(dc.label);
    auto layer = make_dense(dc, 111);
    const Tensor x = nl::ref::random_tensor(dc.input, 112);
    Tensor y;
    layer->forward(rt, {&x}, y, true);
    const Tensor r = nl::ref::random_tensor(y.shape(), 113);
    Tensor dx;
    layer->backward(rt, {&x}, y, r, {&dx});
    REQUIRE(dx.shape() == x.shape());

    const size_t n = dc.input[0], c = features(dc.input), u = dc.units;
    const std::vector<double> xd = nl::ref::to_double(x.values());
    const std::vector<double> wd = nl::ref::to_double(layer->params()[0].value.values());
    const std::vector<double> bd = bias_of(*layer);
    const std::vector<double> rd = nl::ref::to_double(r.values());
    auto f = [&](const std::vector<double>& xv, const std::vector<double>& wv,
                 const std::vector<double>& bv, bool relu) {
      return nl::ref::dense(n, c, u, xv, wv, bv, relu);
    };
    auto pre = [&](auto&& fn) {  // the unclamped output, to locate ReLU kinks
      return [&, fn](const std::vector<double>& v) {
        return dc.relu ? fn(v, false) : std::vector<double>{};
      };
    };
    auto clamped = [&](auto&& fn) {
      return [&, fn](const std::vector<double>& v) { return fn(v, dc.relu); };
    };
    const double eps = 1e-4, abs_tol = 1e-4, rel_tol = 1e-3;
    auto by_x = [&](const std::vector<double>& v, bool relu) { return f(v, wd, bd, relu); };
    auto by_w = [&](const std::vector<double>& v, bool relu) { return f(xd, v, bd, relu); };
    auto by_b = [&](const std::vector<double>& v, bool relu) { return f(xd, wd, v, relu); };
    CHECK(nl::ref::gradient_mismatch(
              dx.values(), nl::ref::numeric_gradient(xd, rd, clamped(by_x), pre(by_x), eps),
              abs_tol, rel_tol) == "");
    CHECK(nl::ref::gradient_mismatch(
              layer->params()[0].grad.values(),
              nl::ref::numeric_gradient(wd, rd, clamped(by_w), pre(by_w), eps), abs_tol,
              rel_tol) == "");
    if (dc.bias)
      CHECK(nl::ref::gradient_mismatch(
                layer->params()[1].grad.values(),
                nl::ref::numeric_gradient(bd, rd, clamped(by_b), pre(by_b), eps), abs_tol,
                rel_tol) == "");
  }
}

TEST_CASE("dense backward accumulates and respects frozen") {
  Runtime rt(1);
  const DenseCase& dc = kCases[0];
  auto layer = make_dense(dc, 121);
  const Tensor x = nl::ref::random_tensor(dc.input, 122);
  Tensor y;
  layer->forward(rt, {&x}, y, true);
  const Tensor r = nl::ref::random_tensor(y.shape(), 123);
  layer->backward(rt, {&x}, y, r, {nullptr});
  const Tensor once = layer->params()[0].grad;
  layer->backward(rt, {&x}, y, r, {nullptr});
  std::vector<double> twice;
  for (float v : once.values()) twice.push_back(2.0 * v);
  CHECK(nl::ref::mismatch(layer->params()[0].grad.values(), twice, 1e-6, 1e-5) == "");

  layer->frozen = true;
  Tensor dx;
  layer->backward(rt, {&x}, y, r, {&dx});
  CHECK(nl::ref::mismatch(layer->params()[0].grad.values(), twice, 0, 0) == "");
  // dX = R·W
  const std::vector<double> want = nl::ref::matmul(r.values(), layer->params()[0].value.values(),
                                                   3, 5, 7, false, false);
  CHECK(nl::ref::mismatch(dx.values(), want, 1e-5, 1e-4) == "");
}

TEST_CASE("dense re-packs after params_changed and reshapes for new batch sizes") {
  Runtime rt(1);
  const DenseCase& dc = kCases[2];
  auto layer = make_dense(dc, 131);
  uint64_t seed = 132;
  for (size_t batch : {2, 5, 1, 2}) {
    CAPTURE(batch);
    Shape s = dc.input;
    s[0] = batch;
    const Tensor x = nl::ref::random_tensor(s, seed++);
    Tensor y;
    layer->forward(rt, {&x}, y, false);
    CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, x, dc.units, dc.relu), 1e-5,
                            1e-4) == "");
  }
  const Tensor x = nl::ref::random_tensor(dc.input, 140);
  Tensor y;
  layer->forward(rt, {&x}, y, false);
  const std::vector<double> before = reference_forward(*layer, x, dc.units, dc.relu);
  nl::ref::fill_uniform(layer->params()[0].value.values(), 141, -0.5f, 0.5f);
  nl::ref::fill_uniform(layer->params()[1].value.values(), 142, -0.5f, 0.5f);
  layer->params_changed();
  layer->forward(rt, {&x}, y, false);
  CHECK(nl::ref::mismatch(y.values(), reference_forward(*layer, x, dc.units, dc.relu), 1e-5,
                          1e-4) == "");
  CHECK(nl::ref::mismatch(y.values(), before, 1e-5, 1e-4) != "");
}

TEST_CASE("dense rejects bad specs and shapes with a clear message") {
  CHECK_THROWS_WITH_AS(Dense(dense_spec(0, true, false, "fc0")),
                       "layer 'fc0' (dense): units must be at least 1, got 0",
                       std::invalid_argument);
  Dense layer(dense_spec(4, true, false, "fc1"));
  CHECK_THROWS_WITH_AS(layer.output_shape({{2, 3, 4}}),
                       "layer 'fc1' (dense): input must be [N,C] or [N,H,W,C], got shape [2,3,4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer.output_shape({{2, 0}}),
                       "layer 'fc1' (dense): input shape [2,0] has a zero dimension",
                       std::invalid_argument);
  layer.create_params({{1, 2, 2, 3}});
  CHECK(layer.params()[0].value.shape() == Shape{4, 12});
  CHECK(layer.output_shape({{7, 12}}) == Shape{7, 4});  // same features, flat
  Runtime rt(1);
  const Tensor wrong({2, 10});
  Tensor y;
  CHECK_THROWS_WITH_AS(
      layer.forward(rt, {&wrong}, y, false),
      "layer 'fc1' (dense): input [2,10] has 10 features but the weight [4,12] expects 12",
      std::invalid_argument);
}

TEST_CASE("dense flops and He-normal init") {
  Dense layer(dense_spec(10, true, false));
  layer.create_params({{1, 4, 4, 8}});
  CHECK(layer.flops({{1, 4, 4, 8}}) == doctest::Approx(2.0 * 128 * 10));
  layer.init_params(3);
  const Tensor first = layer.params()[0].value;
  layer.init_params(3);
  CHECK(nl::ref::mismatch(layer.params()[0].value.values(), nl::ref::to_double(first.values()),
                          0, 0) == "");
  for (float b : layer.params()[1].value.values()) CHECK(b == 0.0f);
  double sum = 0.0, sq = 0.0;
  for (float v : first.values()) {
    sum += v;
    sq += double(v) * v;
  }
  const double n = static_cast<double>(first.size()), want_std = std::sqrt(2.0 / 128.0);
  const double mean = sum / n, stddev = std::sqrt(sq / n - mean * mean);
  CHECK(std::fabs(mean) < 4.0 * want_std / std::sqrt(n));
  CHECK(std::fabs(stddev / want_std - 1.0) < 0.1);
}
