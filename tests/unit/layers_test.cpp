// The non-convolution layers against naive loops (reference.h): relu, max_pool, avg_pool,
// global_avg_pool, batch_norm (both modes), add, dropout, softmax, flip. Forward at odd sizes,
// strides and paddings, re-run at other batch sizes (the reshape path); every gradient by
// finite differences of the double-precision reference; error messages; the registry.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>

#include "layers/add.h"
#include "layers/avg_pool.h"
#include "layers/batch_norm.h"
#include "layers/dropout.h"
#include "layers/flip.h"
#include "layers/global_avg_pool.h"
#include "layers/max_pool.h"
#include "layers/registry.h"
#include "layers/relu.h"
#include "layers/softmax.h"
#include "reference.h"

namespace {

using nl::Activation;
using nl::LayerSpec;
using nl::Runtime;
using nl::Shape;
using nl::Tensor;
namespace ref = nl::ref;

LayerSpec make_spec(const char* type, const char* name = "layer") {
  LayerSpec s;
  s.name = name;
  s.type = type;
  return s;
}

LayerSpec pool_spec(const char* type, size_t kernel, size_t stride, size_t padding) {
  LayerSpec s = make_spec(type, "pool");
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  return s;
}

std::vector<double> doubles(const Tensor& t) { return ref::to_double(t.values()); }

Tensor tensor_of(const Shape& shape, const std::vector<double>& v) {
  Tensor t(shape);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(v[i]);
  return t;
}

// Values that are all at least `gap` apart (a shuffled ramp): max-pool finite differences
// with a smaller step can then never change which element wins a window.
Tensor distinct_tensor(const Shape& shape, uint64_t seed, double gap = 0.01) {
  Tensor t(shape);
  std::vector<size_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 engine(seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[engine() % i]);
  for (size_t i = 0; i < t.size(); ++i)
    t[order[i]] = static_cast<float>((static_cast<double>(i) - t.size() / 2.0) * gap);
  return t;
}

std::vector<double> no_kinks(const std::vector<double>&) { return {}; }

// Runs forward then backward with dout = r (so the analytic gradient is of sum(out * r)).
Tensor forward_backward(nl::Layer& layer, Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
                        bool training, const Tensor& r, size_t grad_input = 0) {
  layer.forward(rt, in, out, training);
  std::vector<Tensor> din(in.size());
  std::vector<Tensor*> ptrs;
  for (Tensor& t : din) ptrs.push_back(&t);
  layer.backward(rt, in, out, r, ptrs);
  return din[grad_input];
}

// ---- pools ----

struct PoolCase {
  Shape input;
  size_t kernel, stride, padding;
};

const PoolCase kPoolCases[] = {
    {{2, 9, 7, 3}, 3, 2, 1},  {{1, 8, 8, 5}, 2, 2, 0},  {{3, 5, 6, 2}, 3, 1, 1},
    {{2, 11, 9, 4}, 5, 3, 2}, {{1, 7, 5, 17}, 3, 3, 0}, {{2, 6, 6, 1}, 4, 1, 3},
    {{1, 1, 1, 3}, 1, 1, 0},  {{2, 4, 9, 3}, 2, 1, 1}, {{2, 7, 6, 3}, 1, 2, 0},
};

ref::PoolGeometry geometry(const PoolCase& pc, size_t batch) {
  return {batch, pc.input[1], pc.input[2], pc.input[3], pc.kernel, pc.stride, pc.padding};
}

std::string label(const PoolCase& pc) {
  return nl::to_string(pc.input) + " k" + std::to_string(pc.kernel) + " s" + std::to_string(pc.stride) + " p" +
         std::to_string(pc.padding);
}

}  // namespace

TEST_CASE("relu forward and backward match the reference") {
  Runtime rt(1);
  nl::ReLU relu(make_spec("relu"));
  for (const Shape& shape : {Shape{3, 5, 7, 3}, Shape{2, 13}, Shape{1, 1, 1, 1}, Shape{4, 3, 3, 5}}) {
    CAPTURE(nl::to_string(shape));
    const Tensor x = ref::random_tensor(shape, 11);
    const Tensor r = ref::random_tensor(shape, 12);
    Tensor out;
    const Tensor dx = forward_backward(relu, rt, {&x}, out, false, r);
    CHECK(out.shape() == shape);
    const std::string fwd = ref::mismatch(out.values(), ref::relu(doubles(x)), 0.0, 0.0);
    CHECK_MESSAGE(fwd.empty(), fwd);
    const auto numeric = ref::numeric_gradient(
        doubles(x), doubles(r), [](const std::vector<double>& v) { return ref::relu(v); },
        [](const std::vector<double>& v) { return v; }, 1e-3);
    const std::string bwd = ref::gradient_mismatch(dx.values(), numeric, 1e-5, 1e-4);
    CHECK_MESSAGE(bwd.empty(), bwd);
  }
  CHECK(relu.flops({{1, 4, 4, 2}}) == 32.0);
}

TEST_CASE("max_pool forward matches the reference at odd sizes, strides and paddings") {
  Runtime rt(1);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
    // Batch sizes change between runs: the operator is reshaped, not re-created.
    for (size_t batch : {pc.input[0], size_t{1}, pc.input[0] + 2}) {
      Shape shape = pc.input;
      shape[0] = batch;
      const Tensor x = ref::random_tensor(shape, 100 + batch, -2.0f, 1.0f);  // negatives: padding must not win
      Tensor out;
      pool.forward(rt, {&x}, out, false);
      const ref::PoolGeometry g = geometry(pc, batch);
      CHECK(out.shape() == Shape{batch, g.out_h(), g.out_w(), g.c});
      const std::string err = ref::mismatch(out.values(), ref::max_pool(g, doubles(x)), 0.0, 0.0);
      CHECK_MESSAGE(err.empty(), err);
    }
  }
}

TEST_CASE("max_pool forward on two threads matches the reference (the unpadded loop and XNNPACK's)") {
  Runtime rt(2);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
    const Tensor x = ref::random_tensor(pc.input, 120, -2.0f, 1.0f);
    Tensor out;
    pool.forward(rt, {&x}, out, false);
    const std::string err = ref::mismatch(out.values(), ref::max_pool(geometry(pc, pc.input[0]), doubles(x)), 0.0, 0.0);
    CHECK_MESSAGE(err.empty(), err);
  }
}

TEST_CASE("max_pool backward: finite differences, and ties go to the first maximum") {
  Runtime rt(1);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
    const Tensor x = distinct_tensor(pc.input, 7);
    const ref::PoolGeometry g = geometry(pc, pc.input[0]);
    const Tensor r = ref::random_tensor({g.n, g.out_h(), g.out_w(), g.c}, 8);
    Tensor out;
    const Tensor dx = forward_backward(pool, rt, {&x}, out, true, r);
    const auto numeric = ref::numeric_gradient(
        doubles(x), doubles(r), [&](const std::vector<double>& v) { return ref::max_pool(g, v); }, no_kinks, 1e-3);
    const std::string err = ref::gradient_mismatch(dx.values(), numeric, 1e-5, 1e-4);
    CHECK_MESSAGE(err.empty(), err);
  }
  // All-equal input: every window's gradient lands on its first (top-left) input pixel.
  const PoolCase pc{{1, 5, 5, 2}, 3, 2, 1};
  nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
  const Tensor x({1, 5, 5, 2}, 0.5f);
  const ref::PoolGeometry g = geometry(pc, 1);
  const Tensor r = ref::random_tensor({1, g.out_h(), g.out_w(), 2}, 9);
  Tensor out;
  const Tensor dx = forward_backward(pool, rt, {&x}, out, true, r);
  std::vector<double> expected(x.size(), 0.0);
  const auto argmax = ref::max_pool_argmax(g, doubles(x));
  for (size_t o = 0; o < argmax.size(); ++o) expected[argmax[o]] += r[o];
  CHECK(argmax[0] == 0);  // window of output (0,0) starts at input (0,0) once padding is skipped
  const std::string err = ref::mismatch(dx.values(), expected, 1e-6, 1e-6);
  CHECK_MESSAGE(err.empty(), err);
}

TEST_CASE("max_pool backward with many ties matches the first-maximum reference, same bits on 1 and 2 threads") {
  // Values on a coarse grid (ties in most windows), -inf among them, channels not a multiple
  // of the vector width, every pool case: dx against the naive argmax scatter.
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    Shape shape = pc.input;
    shape[0] += 2;
    Tensor x = ref::random_tensor(shape, 31, -2.0f, 2.0f);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = std::round(x[i] * 2.0f) / 2.0f;
      if (i % 13 == 5) x[i] = -INFINITY;
    }
    const ref::PoolGeometry g = geometry(pc, shape[0]);
    const Tensor r = ref::random_tensor({g.n, g.out_h(), g.out_w(), g.c}, 32);
    std::vector<double> xd = doubles(x), expected(x.size(), 0.0);
    const auto argmax = ref::max_pool_argmax(g, xd);
    for (size_t o = 0; o < argmax.size(); ++o) expected[argmax[o]] += r[o];
    std::vector<double> dxs[2];
    for (size_t t = 0; t < 2; ++t) {
      Runtime rt(t + 1);
      nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
      Tensor out;
      const Tensor dx = forward_backward(pool, rt, {&x}, out, true, r);
      const std::string err = ref::mismatch(dx.values(), expected, 1e-6, 1e-6);
      CHECK_MESSAGE(err.empty(), err);
      dxs[t] = doubles(dx);
    }
    CHECK(dxs[0] == dxs[1]);
  }
}

TEST_CASE("max_pool training forward keeps the winners: the same output and gradient bits as the inference path") {
  // Training forwards run our own loop and keep each output's winning window position;
  // after an inference forward (XNNPACK), backward finds the winners from the input again.
  // Ties and -inf as above, every pool case, 2 threads.
  Runtime rt(2);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    Tensor x = ref::random_tensor(pc.input, 41, -2.0f, 2.0f);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = std::round(x[i] * 2.0f) / 2.0f;
      if (i % 11 == 3) x[i] = -INFINITY;
    }
    const ref::PoolGeometry g = geometry(pc, pc.input[0]);
    const Tensor r = ref::random_tensor({g.n, g.out_h(), g.out_w(), g.c}, 42);
    nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
    Tensor out_train, out_infer;
    const Tensor dx_train = forward_backward(pool, rt, {&x}, out_train, true, r);
    const Tensor dx_infer = forward_backward(pool, rt, {&x}, out_infer, false, r);
    CHECK(doubles(out_train) == ref::max_pool(g, doubles(x)));  // exact, -inf included
    CHECK(doubles(out_train) == doubles(out_infer));
    CHECK(doubles(dx_train) == doubles(dx_infer));
  }
  // A NaN in a window makes that output NaN in training, so a diverging run shows in its loss.
  const PoolCase pc{{1, 4, 4, 3}, 2, 2, 0};
  nl::MaxPool pool(pool_spec("max_pool", pc.kernel, pc.stride, pc.padding));
  Tensor x = ref::random_tensor(pc.input, 43);
  x[(1 * 4 + 1) * 3 + 2] = NAN;  // pixel (1,1), channel 2: in output (0,0)'s window
  Tensor out;
  pool.forward(rt, {&x}, out, true);
  CHECK(std::isnan(out[2]));
  for (size_t i = 0; i < out.size(); ++i)
    if (i != 2) CHECK(std::isfinite(out[i]));
}

TEST_CASE("avg_pool forward excludes padding from the average, like XNNPACK") {
  Runtime rt(1);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    nl::AvgPool pool(pool_spec("avg_pool", pc.kernel, pc.stride, pc.padding));
    for (size_t batch : {pc.input[0], size_t{1}, pc.input[0] + 1}) {
      Shape shape = pc.input;
      shape[0] = batch;
      const Tensor x = ref::random_tensor(shape, 200 + batch);
      Tensor out;
      pool.forward(rt, {&x}, out, false);
      const ref::PoolGeometry g = geometry(pc, batch);
      CHECK(out.shape() == Shape{batch, g.out_h(), g.out_w(), g.c});
      const std::string err = ref::mismatch(out.values(), ref::avg_pool(g, doubles(x)), 1e-6, 1e-5);
      CHECK_MESSAGE(err.empty(), err);
    }
  }
  // Corner of a 3x3 window with padding 1 on a constant image: 4 pixels, mean 1 (not 4/9).
  nl::AvgPool pool(pool_spec("avg_pool", 3, 2, 1));
  const Tensor ones({1, 5, 5, 1}, 1.0f);
  Tensor out;
  pool.forward(rt, {&ones}, out, false);
  CHECK(out[0] == doctest::Approx(1.0));
}

TEST_CASE("avg_pool backward matches finite differences") {
  Runtime rt(1);
  for (const PoolCase& pc : kPoolCases) {
    CAPTURE(label(pc));
    nl::AvgPool pool(pool_spec("avg_pool", pc.kernel, pc.stride, pc.padding));
    const Tensor x = ref::random_tensor(pc.input, 21);
    const ref::PoolGeometry g = geometry(pc, pc.input[0]);
    const Tensor r = ref::random_tensor({g.n, g.out_h(), g.out_w(), g.c}, 22);
    Tensor out;
    const Tensor dx = forward_backward(pool, rt, {&x}, out, true, r);
    const auto numeric = ref::numeric_gradient(
        doubles(x), doubles(r), [&](const std::vector<double>& v) { return ref::avg_pool(g, v); }, no_kinks, 1e-3);
    const std::string err = ref::gradient_mismatch(dx.values(), numeric, 1e-5, 1e-4);
    CHECK_MESSAGE(err.empty(), err);
  }
}

TEST_CASE("pool errors name the layer and the rule") {
  CHECK_THROWS_WITH_AS(nl::MaxPool(pool_spec("max_pool", 3, 1, 3)),
                       "layer 'pool' (max_pool): padding 3 must be smaller than kernel 3", std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::AvgPool(pool_spec("avg_pool", 2, 0, 0)), "layer 'pool' (avg_pool): stride must be at least 1",
                       std::invalid_argument);
  nl::MaxPool pool(pool_spec("max_pool", 5, 1, 1));
  CHECK_THROWS_WITH_AS(pool.output_shape({{1, 2, 9, 1}}), "layer 'pool' (max_pool): kernel 5 exceeds padded input height 4",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(pool.output_shape({{1, 9, 9}}),
                       "layer 'pool' (max_pool): input must have 4 dimensions, got [1,9,9]", std::invalid_argument);
  CHECK(pool.flops({{1, 9, 9, 2}}) == doctest::Approx(7.0 * 7.0 * 2.0 * 25.0));
}

TEST_CASE("global_avg_pool forward and backward") {
  Runtime rt(1);
  nl::GlobalAvgPool gap(make_spec("global_avg_pool", "gap"));
  for (const Shape& shape : {Shape{2, 5, 3, 7}, Shape{1, 1, 1, 4}, Shape{3, 9, 11, 2}, Shape{1, 4, 4, 33}}) {
    CAPTURE(nl::to_string(shape));
    const Tensor x = ref::random_tensor(shape, 31);
    const Tensor r = ref::random_tensor({shape[0], shape[3]}, 32);
    Tensor out;
    const Tensor dx = forward_backward(gap, rt, {&x}, out, false, r);
    const size_t pixels = shape[1] * shape[2];
    CHECK(out.shape() == Shape{shape[0], shape[3]});
    const std::string fwd =
        ref::mismatch(out.values(), ref::global_avg_pool(shape[0], pixels, shape[3], doubles(x)), 1e-6, 1e-5);
    CHECK_MESSAGE(fwd.empty(), fwd);
    const auto numeric = ref::numeric_gradient(
        doubles(x), doubles(r),
        [&](const std::vector<double>& v) { return ref::global_avg_pool(shape[0], pixels, shape[3], v); }, no_kinks,
        1e-3);
    const std::string bwd = ref::gradient_mismatch(dx.values(), numeric, 1e-6, 1e-4);
    CHECK_MESSAGE(bwd.empty(), bwd);
  }
}

TEST_CASE("batch_norm training: batch statistics, running statistics, full backward") {
  Runtime rt(1);
  for (const Shape& shape : {Shape{3, 5, 4, 3}, Shape{7, 5}, Shape{2, 3, 7, 6}}) {
    CAPTURE(nl::to_string(shape));
    LayerSpec spec = make_spec("batch_norm", "bn");
    spec.epsilon = 1e-3f;
    spec.momentum = 0.25f;
    nl::BatchNorm bn(spec);
    Shape one = shape;
    one[0] = 1;
    bn.create_params({one});
    const size_t c = shape.back(), rows = nl::numel(shape) / c;
    REQUIRE(bn.params().size() == 4);
    CHECK(bn.params()[0].name == "gamma");
    CHECK(bn.params()[3].name == "running_var");
    CHECK(bn.params()[2].trainable == false);
    ref::fill_uniform(bn.params()[0].value.values(), 41, 0.5f, 1.5f);
    ref::fill_uniform(bn.params()[1].value.values(), 42);
    ref::fill_uniform(bn.params()[2].value.values(), 43);
    ref::fill_uniform(bn.params()[3].value.values(), 44, 0.5f, 2.0f);
    const auto gamma = doubles(bn.params()[0].value), beta = doubles(bn.params()[1].value);
    const auto running_mean = doubles(bn.params()[2].value), running_var = doubles(bn.params()[3].value);

    const Tensor x = ref::random_tensor(shape, 45, -1.0f, 3.0f);
    const Tensor r = ref::random_tensor(shape, 46);
    Tensor out;
    const Tensor dx = forward_backward(bn, rt, {&x}, out, true, r);
    const auto fwd_ref = ref::batch_norm_train(rows, c, doubles(x), gamma, beta, spec.epsilon);
    const std::string fwd = ref::mismatch(out.values(), fwd_ref, 1e-5, 1e-4);
    CHECK_MESSAGE(fwd.empty(), fwd);

    // Running statistics moved by momentum towards the batch mean and unbiased variance.
    std::vector<double> mean, var;
    ref::channel_stats(rows, c, doubles(x), mean, var);
    std::vector<double> want_mean(c), want_var(c);
    for (size_t ch = 0; ch < c; ++ch) {
      want_mean[ch] = 0.75 * running_mean[ch] + 0.25 * mean[ch];
      want_var[ch] = 0.75 * running_var[ch] + 0.25 * var[ch] * rows / (rows - 1.0);
    }
    const std::string stats = ref::mismatch(bn.params()[2].value.values(), want_mean, 1e-6, 1e-5) +
                              ref::mismatch(bn.params()[3].value.values(), want_var, 1e-6, 1e-5);
    CHECK_MESSAGE(stats.empty(), stats);

    // dx through the batch statistics, dgamma, dbeta.
    const auto fx = [&](const std::vector<double>& v) { return ref::batch_norm_train(rows, c, v, gamma, beta, spec.epsilon); };
    const auto num_dx = ref::numeric_gradient(doubles(x), doubles(r), fx, no_kinks, 1e-3);
    const std::string edx = ref::gradient_mismatch(dx.values(), num_dx, 1e-4, 1e-3);
    CHECK_MESSAGE(edx.empty(), edx);
    const auto fg = [&](const std::vector<double>& v) { return ref::batch_norm_train(rows, c, doubles(x), v, beta, spec.epsilon); };
    const auto num_dg = ref::numeric_gradient(gamma, doubles(r), fg, no_kinks, 1e-3);
    const std::string edg = ref::gradient_mismatch(bn.params()[0].grad.values(), num_dg, 1e-4, 1e-3);
    CHECK_MESSAGE(edg.empty(), edg);
    const auto fb = [&](const std::vector<double>& v) { return ref::batch_norm_train(rows, c, doubles(x), gamma, v, spec.epsilon); };
    const auto num_db = ref::numeric_gradient(beta, doubles(r), fb, no_kinks, 1e-3);
    const std::string edb = ref::gradient_mismatch(bn.params()[1].grad.values(), num_db, 1e-4, 1e-3);
    CHECK_MESSAGE(edb.empty(), edb);
  }
}

TEST_CASE("batch_norm training at large odd sizes: blocked sums match double loops, same bits on 1 and 2 threads") {
  // Many row blocks and tasks, a partial last one, channels not a multiple of the vector
  // width, and an offset mean (values around 50 with spread 1: an uncentred one-pass variance
  // in float would lose most digits).
  // The last case, values around 1000 with spread 0.02: the centred one-pass sums must not lose
  // the variance there. Only the statistics are compared in that case: the output, computed as
  // x * scale + shift in float, loses digits at such an offset whatever the statistics.
  for (const Shape& shape : {Shape{5, 23, 19, 13}, Shape{3, 37, 41, 2}, Shape{1029, 7}, Shape{2, 31, 17, 5}}) {
    CAPTURE(nl::to_string(shape));
    const size_t c = shape.back(), rows = nl::numel(shape) / c;
    const bool narrow = shape[0] == 2;
    const Tensor x = ref::random_tensor(shape, 71, narrow ? 999.99f : 49.0f, narrow ? 1000.01f : 51.0f);
    const Tensor r = ref::random_tensor(shape, 72);
    std::vector<double> outs[2], dxs[2], stats[2];
    for (size_t t = 0; t < 2; ++t) {
      Runtime rt(t + 1);
      LayerSpec spec = make_spec("batch_norm", "bn");
      spec.momentum = narrow ? 1.0f : 0.5f;  // narrow: the running statistics are the batch's
      nl::BatchNorm bn(spec);
      Shape one = shape;
      one[0] = 1;
      bn.create_params({one});
      ref::fill_uniform(bn.params()[0].value.values(), 73, 0.5f, 1.5f);
      ref::fill_uniform(bn.params()[1].value.values(), 74);
      const auto gamma = doubles(bn.params()[0].value), beta = doubles(bn.params()[1].value);
      Tensor out;
      const Tensor dx = forward_backward(bn, rt, {&x}, out, true, r);
      const std::string fwd =
          ref::mismatch(out.values(), ref::batch_norm_train(rows, c, doubles(x), gamma, beta, spec.epsilon), 1e-4, 1e-4);
      if (!narrow) CHECK_MESSAGE(fwd.empty(), fwd);
      std::vector<double> mean, var, want_mean(c), want_var(c);
      ref::channel_stats(rows, c, doubles(x), mean, var);
      for (size_t ch = 0; ch < c; ++ch) {
        const double m = spec.momentum;
        want_mean[ch] = (1.0 - m) * 0.0 + m * mean[ch];
        want_var[ch] = (1.0 - m) * 1.0 + m * var[ch] * rows / (rows - 1.0);
      }
      const std::string st = ref::mismatch(bn.params()[2].value.values(), want_mean, 1e-6, 1e-6) +
                             ref::mismatch(bn.params()[3].value.values(), want_var, narrow ? 0.0 : 1e-6, 1e-5);
      CHECK_MESSAGE(st.empty(), st);
      const ref::BatchNormGrads want = ref::batch_norm_train_backward(rows, c, doubles(x), gamma, doubles(r), spec.epsilon);
      const std::string edx = ref::mismatch(dx.values(), want.dx, 1e-4, 1e-3);
      const std::string edg = ref::mismatch(bn.params()[0].grad.values(), want.dgamma, 1e-3, 1e-4) +
                              ref::mismatch(bn.params()[1].grad.values(), want.dbeta, 1e-3, 1e-4);
      if (!narrow) {
        CHECK_MESSAGE(edx.empty(), edx);
        CHECK_MESSAGE(edg.empty(), edg);
      }
      outs[t] = doubles(out);
      dxs[t] = doubles(dx);
      for (const nl::Param& p : bn.params()) {
        const std::vector<double> v = doubles(p.value), g = doubles(p.grad);
        stats[t].insert(stats[t].end(), v.begin(), v.end());
        stats[t].insert(stats[t].end(), g.begin(), g.end());
      }
    }
    CHECK(outs[0] == outs[1]);
    CHECK(dxs[0] == dxs[1]);
    CHECK(stats[0] == stats[1]);
  }
}

TEST_CASE("batch_norm statistics average: batches averaged, output unchanged, abandon keeps the old") {
  Runtime rt(1);
  LayerSpec spec = make_spec("batch_norm", "bn");
  spec.momentum = 0.25f;
  nl::BatchNorm bn(spec);
  const Shape shape{3, 2, 5, 3};
  bn.create_params({{1, 2, 5, 3}});
  ref::fill_uniform(bn.params()[2].value.values(), 61);
  ref::fill_uniform(bn.params()[3].value.values(), 62, 0.5f, 2.0f);
  const auto old_mean = doubles(bn.params()[2].value), old_var = doubles(bn.params()[3].value);
  const Tensor x1 = ref::random_tensor(shape, 63, -1.0f, 3.0f), x2 = ref::random_tensor(shape, 64, 0.0f, 1.0f);
  const size_t c = 3, rows = nl::numel(shape) / c;

  bn.begin_statistics_average();
  Tensor out1, out2;
  bn.forward(rt, {&x1}, out1, true);
  bn.forward(rt, {&x2}, out2, true);
  // The outputs are the ordinary training ones (batch statistics).
  const std::string fwd = ref::mismatch(out2.values(), ref::batch_norm_train(rows, c, doubles(x2), doubles(bn.params()[0].value),
                                                                            doubles(bn.params()[1].value), spec.epsilon), 1e-5, 1e-4);
  CHECK_MESSAGE(fwd.empty(), fwd);
  CHECK(doubles(bn.params()[2].value) == old_mean);  // untouched until the end
  CHECK(doubles(bn.params()[3].value) == old_var);
  CHECK(bn.end_statistics_average() == 2);
  std::vector<double> m1, v1, m2, v2, want_mean(c), want_var(c);
  ref::channel_stats(rows, c, doubles(x1), m1, v1);
  ref::channel_stats(rows, c, doubles(x2), m2, v2);
  for (size_t ch = 0; ch < c; ++ch) {
    want_mean[ch] = (m1[ch] + m2[ch]) / 2;
    want_var[ch] = (v1[ch] + v2[ch]) / 2 * rows / (rows - 1.0);
  }
  const std::string stats = ref::mismatch(bn.params()[2].value.values(), want_mean, 1e-6, 1e-5) +
                            ref::mismatch(bn.params()[3].value.values(), want_var, 1e-6, 1e-5);
  CHECK_MESSAGE(stats.empty(), stats);
  CHECK_THROWS_WITH_AS(bn.end_statistics_average(), doctest::Contains("not begun"), std::logic_error);

  const auto averaged_mean = doubles(bn.params()[2].value);
  bn.begin_statistics_average();
  bn.forward(rt, {&x1}, out1, true);
  bn.abandon_statistics_average();
  CHECK(doubles(bn.params()[2].value) == averaged_mean);
  bn.forward(rt, {&x1}, out1, true);  // back to momentum updates
  CHECK(doubles(bn.params()[2].value) != averaged_mean);
}

TEST_CASE("batch_norm inference: running statistics, unchanged by the pass; backward") {
  Runtime rt(1);
  LayerSpec spec = make_spec("batch_norm", "bn");
  nl::BatchNorm bn(spec);
  const Shape shape{2, 3, 5, 4};
  bn.create_params({{1, 3, 5, 4}});
  ref::fill_uniform(bn.params()[0].value.values(), 51, 0.5f, 1.5f);
  ref::fill_uniform(bn.params()[1].value.values(), 52);
  ref::fill_uniform(bn.params()[2].value.values(), 53);
  ref::fill_uniform(bn.params()[3].value.values(), 54, 0.5f, 2.0f);
  const auto gamma = doubles(bn.params()[0].value), beta = doubles(bn.params()[1].value);
  const auto mean = doubles(bn.params()[2].value), var = doubles(bn.params()[3].value);
  const size_t c = 4, rows = nl::numel(shape) / c;
  const Tensor x = ref::random_tensor(shape, 55);
  const Tensor r = ref::random_tensor(shape, 56);
  Tensor out;
  const Tensor dx = forward_backward(bn, rt, {&x}, out, false, r);
  const auto f = [&](const std::vector<double>& v) { return ref::batch_norm(rows, c, v, gamma, beta, mean, var, spec.epsilon); };
  const std::string fwd = ref::mismatch(out.values(), f(doubles(x)), 1e-5, 1e-4);
  CHECK_MESSAGE(fwd.empty(), fwd);
  CHECK(doubles(bn.params()[2].value) == mean);
  CHECK(doubles(bn.params()[3].value) == var);
  const std::string edx = ref::gradient_mismatch(dx.values(), ref::numeric_gradient(doubles(x), doubles(r), f, no_kinks, 1e-3), 1e-5, 1e-4);
  CHECK_MESSAGE(edx.empty(), edx);
  const auto fg = [&](const std::vector<double>& v) { return ref::batch_norm(rows, c, doubles(x), v, beta, mean, var, spec.epsilon); };
  const std::string edg = ref::gradient_mismatch(bn.params()[0].grad.values(), ref::numeric_gradient(gamma, doubles(r), fg, no_kinks, 1e-3), 1e-5, 1e-4);
  CHECK_MESSAGE(edg.empty(), edg);

  // Frozen: no parameter gradients accumulate, the input gradient is still produced.
  bn.params()[0].grad.fill(0.0f);
  bn.frozen = true;
  const Tensor dx2 = forward_backward(bn, rt, {&x}, out, false, r);
  CHECK(doubles(bn.params()[0].grad) == std::vector<double>(c, 0.0));
  CHECK(doubles(dx2) == doubles(dx));

  // Frozen while training (fine-tuning later layers): the running statistics normalise, as
  // in inference, and stay as they were; the input gradient is the inference one.
  Tensor out_training;
  const Tensor dx3 = forward_backward(bn, rt, {&x}, out_training, true, r);
  CHECK(doubles(out_training) == doubles(out));
  CHECK(doubles(bn.params()[2].value) == mean);
  CHECK(doubles(bn.params()[3].value) == var);
  CHECK(doubles(dx3) == doubles(dx));

  CHECK_THROWS_WITH_AS(bn.output_shape({{1, 3, 5, 6}}), "layer 'bn' (batch_norm): input has 6 channels, parameters have 4",
                       std::invalid_argument);
  LayerSpec bad = spec;
  bad.epsilon = 0.0f;
  CHECK_THROWS_AS(nl::BatchNorm{bad}, std::invalid_argument);
}

TEST_CASE("add forward and backward, with and without the fused relu") {
  Runtime rt(1);
  for (bool relu : {false, true}) {
    LayerSpec spec = make_spec("add", "res");
    spec.activation = relu ? Activation::relu : Activation::none;
    nl::Add add(spec);
    for (const Shape& shape : {Shape{2, 5, 3, 7}, Shape{1, 9}, Shape{3, 1, 1, 1}}) {
      CAPTURE(relu);
      CAPTURE(nl::to_string(shape));
      const Tensor a = ref::random_tensor(shape, 61), b = ref::random_tensor(shape, 62), r = ref::random_tensor(shape, 63);
      Tensor out;
      add.forward(rt, {&a, &b}, out, false);
      const std::string fwd = ref::mismatch(out.values(), ref::add(doubles(a), doubles(b), relu), 1e-7, 1e-6);
      CHECK_MESSAGE(fwd.empty(), fwd);
      Tensor da, db;
      add.backward(rt, {&a, &b}, out, r, {&da, &db});
      const auto fa = [&](const std::vector<double>& v) { return ref::add(v, doubles(b), relu); };
      const auto pre_a = [&](const std::vector<double>& v) { return ref::add(v, doubles(b), false); };
      const std::string ea = ref::gradient_mismatch(da.values(), ref::numeric_gradient(doubles(a), doubles(r), fa, pre_a, 1e-3), 1e-5, 1e-4);
      CHECK_MESSAGE(ea.empty(), ea);
      const auto fb = [&](const std::vector<double>& v) { return ref::add(doubles(a), v, relu); };
      const auto pre_b = [&](const std::vector<double>& v) { return ref::add(doubles(a), v, false); };
      const std::string eb = ref::gradient_mismatch(db.values(), ref::numeric_gradient(doubles(b), doubles(r), fb, pre_b, 1e-3), 1e-5, 1e-4);
      CHECK_MESSAGE(eb.empty(), eb);
      // A gradient nobody needs may be skipped.
      add.backward(rt, {&a, &b}, out, r, {nullptr, &db});
    }
  }
  nl::Add add(make_spec("add", "res"));
  CHECK_THROWS_WITH_AS(add.output_shape({{1, 4, 4, 8}, {1, 4, 4, 16}}),
                       "layer 'res' (add): input shapes [1,4,4,8] and [1,4,4,16] differ; add needs identical shapes",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(add.output_shape({{1, 4}}), "layer 'res' (add): takes 2 inputs, got 1", std::invalid_argument);
}

TEST_CASE("add forward and backward over several chunks on one and two threads match the reference") {
  // 3*17*19*29 = 28101 elements: more than one chunk of the loops, the last one partial.
  const Shape shape{3, 17, 19, 29};
  const Tensor a = ref::random_tensor(shape, 71), b = ref::random_tensor(shape, 72);
  for (size_t threads : {size_t{1}, size_t{2}})
    for (bool relu : {false, true}) {
      CAPTURE(threads);
      CAPTURE(relu);
      Runtime rt(threads);
      LayerSpec spec = make_spec("add", "res");
      spec.activation = relu ? Activation::relu : Activation::none;
      nl::Add add(spec);
      Tensor out;
      add.forward(rt, {&a, &b}, out, false);
      const std::string err = ref::mismatch(out.values(), ref::add(doubles(a), doubles(b), relu), 1e-7, 1e-6);
      CHECK_MESSAGE(err.empty(), err);
      // Both inputs get dout, masked where the fused ReLU clamped: exactly, no arithmetic.
      const Tensor dout = ref::random_tensor(shape, 73);
      std::vector<double> expected(dout.size());
      for (size_t i = 0; i < expected.size(); ++i) expected[i] = !relu || out[i] > 0.0f ? dout[i] : 0.0;
      Tensor da, db;
      add.backward(rt, {&a, &b}, out, dout, {&da, &db});
      CHECK(ref::mismatch(da.values(), expected, 0, 0) == "");
      CHECK(ref::mismatch(db.values(), expected, 0, 0) == "");
      Tensor only_b;  // one input wanted: the other slot is null
      add.backward(rt, {&a, &b}, out, dout, {nullptr, &only_b});
      CHECK(ref::mismatch(only_b.values(), expected, 0, 0) == "");
    }
}

TEST_CASE("dropout: identity at inference, deterministic inverted dropout in training") {
  Runtime rt(1);
  LayerSpec spec = make_spec("dropout", "drop");
  spec.rate = 0.3f;
  nl::Dropout drop(spec), twin(spec);
  const Shape shape{4, 10, 10, 5};
  const Tensor x = ref::random_tensor(shape, 71, 0.5f, 1.5f);  // never zero: a zero output means dropped
  const Tensor r = ref::random_tensor(shape, 72);
  Tensor out;
  Tensor dx = forward_backward(drop, rt, {&x}, out, false, r);
  CHECK(doubles(out) == doubles(x));
  CHECK(doubles(dx) == doubles(r));
  CHECK(drop.training_state() == 0);

  dx = forward_backward(drop, rt, {&x}, out, true, r);
  size_t dropped = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (out[i] == 0.0f) {
      ++dropped;
      CHECK(dx[i] == 0.0f);
    } else {
      CHECK(out[i] == doctest::Approx(x[i] / 0.7).epsilon(1e-6));
      CHECK(dx[i] == doctest::Approx(r[i] / 0.7).epsilon(1e-6));
    }
  }
  const double fraction = static_cast<double>(dropped) / x.size();
  CHECK(fraction > 0.25);
  CHECK(fraction < 0.35);
  CHECK(drop.training_state() == 1);

  // Same name and step: same mask. Next step: a different mask.
  Tensor twin_out;
  twin.forward(rt, {&x}, twin_out, true);
  CHECK(doubles(twin_out) == doubles(out));
  Tensor next;
  drop.forward(rt, {&x}, next, true);
  CHECK(doubles(next) != doubles(out));
  LayerSpec other = spec;
  other.name = "drop2";
  nl::Dropout renamed(other);
  Tensor renamed_out;
  renamed.forward(rt, {&x}, renamed_out, true);
  CHECK(doubles(renamed_out) != doubles(out));

  spec.rate = 1.0f;
  CHECK_THROWS_WITH_AS(nl::Dropout{spec}, "layer 'drop' (dropout): rate must be in [0, 1), got 1.000000",
                       std::invalid_argument);
}

TEST_CASE("softmax forward and backward over the last dimension") {
  Runtime rt(1);
  nl::Softmax softmax(make_spec("softmax", "prob"));
  for (const Shape& shape : {Shape{3, 4}, Shape{1, 1}, Shape{5, 37}, Shape{2, 1000}, Shape{2, 3, 3, 5}}) {
    CAPTURE(nl::to_string(shape));
    const size_t c = shape.back(), rows = nl::numel(shape) / c;
    const Tensor x = ref::random_tensor(shape, 81, -4.0f, 4.0f);
    const Tensor r = ref::random_tensor(shape, 82);
    Tensor out;
    const Tensor dx = forward_backward(softmax, rt, {&x}, out, false, r);
    const std::string fwd = ref::mismatch(out.values(), ref::softmax(rows, c, doubles(x)), 1e-6, 1e-4);
    CHECK_MESSAGE(fwd.empty(), fwd);
    const auto f = [&](const std::vector<double>& v) { return ref::softmax(rows, c, v); };
    const std::string bwd = ref::gradient_mismatch(dx.values(), ref::numeric_gradient(doubles(x), doubles(r), f, no_kinks, 1e-3), 1e-5, 1e-3);
    CHECK_MESSAGE(bwd.empty(), bwd);
  }
  // Large logits do not overflow.
  const Tensor big = tensor_of({1, 3}, {1000.0, 999.0, -1000.0});
  Tensor out;
  softmax.forward(rt, {&big}, out, false);
  CHECK(out[0] == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))));
  CHECK(std::isfinite(out[2]));
}

TEST_CASE("flip mirrors left to right: forward against a naive loop, backward by finite differences") {
  Runtime rt(1);
  nl::Flip flip(make_spec("flip", "mirror"));
  // Odd widths (the middle column stays), channels > 1, batch > 1, a single column, and batch
  // sizes changing between runs; inference and training alike.
  for (const Shape& shape : {Shape{2, 3, 5, 3}, Shape{1, 1, 1, 1}, Shape{3, 4, 6, 2}, Shape{1, 7, 1, 4},
                             Shape{4, 2, 9, 1}, Shape{2, 3, 5, 3}}) {
    for (const bool training : {false, true}) {
      CAPTURE(nl::to_string(shape));
      CAPTURE(training);
      const Tensor x = ref::random_tensor(shape, 41);
      const Tensor r = ref::random_tensor(shape, 42);
      Tensor out;
      const Tensor dx = forward_backward(flip, rt, {&x}, out, training, r);
      REQUIRE(out.shape() == shape);
      const auto mirror = [&](const std::vector<double>& v) {
        return ref::flip_width(shape[0], shape[1], shape[2], shape[3], v);
      };
      // A permutation: exact.
      CHECK(ref::mismatch(out.values(), mirror(doubles(x)), 0.0, 0.0) == "");
      CHECK(ref::mismatch(dx.values(), mirror(doubles(r)), 0.0, 0.0) == "");
      const auto numeric = ref::numeric_gradient(doubles(x), doubles(r), mirror, no_kinks, 1e-3);
      const std::string bwd = ref::gradient_mismatch(dx.values(), numeric, 1e-6, 1e-5);
      CHECK_MESSAGE(bwd.empty(), bwd);
      // Flipping twice gives the input back.
      Tensor twice;
      flip.forward(rt, {&out}, twice, training);
      CHECK(doubles(twice) == doubles(x));
    }
  }
  // The N=2, H=3, W=5, C=3 case by hand: pixel (n, y, x) holds 100n + 10y + x in channel c,
  // plus c / 10.
  Tensor x({2, 3, 5, 3});
  for (size_t n = 0; n < 2; ++n)
    for (size_t y = 0; y < 3; ++y)
      for (size_t col = 0; col < 5; ++col)
        for (size_t c = 0; c < 3; ++c) x[((n * 3 + y) * 5 + col) * 3 + c] = float(100 * n + 10 * y + col) + 0.1f * float(c);
  Tensor out;
  flip.forward(rt, {&x}, out, false);
  for (size_t n = 0; n < 2; ++n)
    for (size_t y = 0; y < 3; ++y)
      for (size_t col = 0; col < 5; ++col)
        for (size_t c = 0; c < 3; ++c)
          CHECK(out[((n * 3 + y) * 5 + col) * 3 + c] == float(100 * n + 10 * y + (4 - col)) + 0.1f * float(c));

  CHECK(flip.flops({{1, 8, 8, 3}}) == 0.0);
  CHECK(flip.param_shapes({{1, 8, 8, 3}}).empty());
  CHECK(flip.training_state().is_null());
  CHECK_THROWS_WITH_AS(flip.output_shape({{2, 3}}), "layer 'mirror' (flip): input must have 4 dimensions, got [2,3]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(flip.output_shape({{1, 2, 2, 1}, {1, 2, 2, 1}}), "layer 'mirror' (flip): takes 1 input, got 2",
                       std::invalid_argument);
  const Tensor wrong({2, 3, 4, 3});
  Tensor dx;
  CHECK_THROWS_WITH_AS(flip.backward(rt, {&x}, out, wrong, {&dx}),
                       "layer 'mirror' (flip): backward: gradient shape [2,3,4,3] differs from output shape [2,3,5,3]",
                       std::invalid_argument);
}

TEST_CASE("backward checks the gradient's shape") {
  Runtime rt(1);
  nl::ReLU relu(make_spec("relu", "act"));
  const Tensor x = ref::random_tensor({2, 3}, 1);
  Tensor out, dx;
  relu.forward(rt, {&x}, out, true);
  const Tensor wrong({3, 2});
  CHECK_THROWS_WITH_AS(relu.backward(rt, {&x}, out, wrong, {&dx}),
                       "layer 'act' (relu): output gradient has shape [3,2], expected [2,3]", std::invalid_argument);
}

TEST_CASE("make_layer builds every type and names an unknown one") {
  const char* types[] = {"conv2d", "dense", "relu", "max_pool", "avg_pool", "global_avg_pool",
                         "batch_norm", "add", "dropout", "softmax", "flip"};
  for (const char* type : types) {
    LayerSpec s = make_spec(type, "x");
    s.filters = s.units = 2;
    s.kernel = 1;
    auto layer = nl::make_layer(s);
    REQUIRE(layer != nullptr);
    CHECK(layer->spec().type == type);
  }
  CHECK_THROWS_WITH_AS(nl::make_layer(make_spec("lstm", "rnn")),
                       "layer 'rnn': unknown layer type 'lstm' (known: conv2d, dense, relu, max_pool, avg_pool, "
                       "global_avg_pool, batch_norm, add, dropout, softmax, flip)",
                       std::invalid_argument);
}

TEST_CASE("each layer type creates exactly the parameters it declares, and plans their count") {
  const Shape image{1, 5, 4, 2};
  for (const std::string& type : nl::layer_types()) {
    for (const bool bias : {true, false}) {
      CAPTURE(type);
      CAPTURE(bias);
      LayerSpec s = make_spec(type.c_str(), "x");
      s.filters = 3;
      s.units = 5;
      s.kernel = 3;
      s.padding = 1;
      s.bias = bias;
      const std::vector<Shape> inputs = type == "add" ? std::vector<Shape>{image, image} : std::vector<Shape>{image};
      const auto layer = nl::make_layer(s);
      const std::vector<nl::ParamShape> declared = layer->param_shapes(inputs);
      CHECK(layer->params().empty());  // declaring allocates nothing
      layer->create_params(inputs);
      REQUIRE(layer->params().size() == declared.size());
      double values = 0;
      for (size_t i = 0; i < declared.size(); ++i) {
        const nl::Param& p = layer->params()[i];
        CAPTURE(p.name);
        CHECK(p.name == declared[i].name);
        CHECK(p.value.shape() == declared[i].shape);
        CHECK(p.trainable == declared[i].trainable);
        CHECK(doubles(p.value) == std::vector<double>(p.value.size(), declared[i].initial));
        // No gradient memory until a backward pass asks for it; then zeros of the value's shape.
        CHECK(p.grad.size() == 0);
        nl::Tensor& g = layer->params()[i].gradient();
        CHECK(g.shape() == declared[i].shape);
        CHECK(doubles(g) == std::vector<double>(g.size(), 0.0));
        values += static_cast<double>(p.value.size());
      }
      CHECK(layer->planned_parameters(inputs) == values);
    }
  }
  // What the formats and the budget rely on, per type.
  LayerSpec conv = make_spec("conv2d", "c");
  conv.filters = 3;
  conv.kernel = 3;
  const auto shapes = [](const LayerSpec& s, const Shape& in) {
    std::vector<std::string> v;
    for (const nl::ParamShape& p : nl::make_layer(s)->param_shapes({in}))
      v.push_back(p.name + nl::to_string(p.shape) + (p.trainable ? "" : " fixed") + "=" + std::to_string(p.initial));
    return v;
  };
  CHECK(shapes(conv, image) == std::vector<std::string>{"weight[3,3,3,2]=0.000000", "bias[3]=0.000000"});
  LayerSpec fc = make_spec("dense", "fc");
  fc.units = 5;
  fc.bias = false;
  CHECK(shapes(fc, image) == std::vector<std::string>{"weight[5,40]=0.000000"});
  CHECK(shapes(make_spec("batch_norm", "bn"), image) ==
        std::vector<std::string>{"gamma[2]=1.000000", "beta[2]=0.000000", "running_mean[2] fixed=0.000000",
                                 "running_var[2] fixed=1.000000"});
  // Declaring validates the input shapes as output_shape does.
  CHECK_THROWS_WITH_AS(nl::make_layer(conv)->param_shapes({{1, 4, 2}}),
                       "layer 'c' (conv2d): input must be NHWC [N,H,W,C], got shape [1,4,2]", std::invalid_argument);
  // Planned in double: a count beyond 2^32 (a budget's business, not an overflow).
  fc.units = 65536;
  CHECK(nl::make_layer(fc)->planned_parameters({{1, 4096, 4096, 16}}) == 65536.0 * 4096 * 4096 * 16);
}

TEST_CASE("training state: dropout's step survives JSON; other layers keep none; bad state names the layer") {
  Runtime rt(1);
  LayerSpec spec = make_spec("dropout", "drop");
  spec.rate = 0.5f;
  nl::Dropout drop(spec), resumed(spec);
  const Tensor x = ref::random_tensor({2, 30}, 91, 0.5f, 1.5f);
  Tensor out, again;
  for (int i = 0; i < 3; ++i) drop.forward(rt, {&x}, out, true);
  drop.forward(rt, {&x}, out, false);  // inference takes no step
  CHECK(drop.training_state() == 3);
  resumed.load_training_state(nlohmann::json::parse(drop.training_state().dump()));
  CHECK(resumed.training_state() == 3);
  drop.forward(rt, {&x}, out, true);
  resumed.forward(rt, {&x}, again, true);
  CHECK(doubles(again) == doubles(out));  // the same mask: the stream continues where it was

  CHECK_THROWS_WITH_AS(resumed.load_training_state("3"),
                       "layer 'drop' (dropout): training state must be the number of training steps (an integer "
                       ">= 0), got \"3\"",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(resumed.load_training_state(-1), doctest::Contains("got -1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(resumed.load_training_state(2.5), doctest::Contains("got 2.5"), std::invalid_argument);
  CHECK(resumed.training_state() == 4);  // a refused state changes nothing

  nl::ReLU relu(make_spec("relu", "act"));
  CHECK(relu.training_state().is_null());
  CHECK_THROWS_WITH_AS(relu.load_training_state(7), "layer 'act' (relu): keeps no training state, but was given 7",
                       std::invalid_argument);
}

TEST_CASE("statistics averaging: batch norm takes part, the other layers decline") {
  for (const std::string& type : nl::layer_types()) {
    CAPTURE(type);
    LayerSpec s = make_spec(type.c_str(), "x");
    s.filters = s.units = 2;
    const auto layer = nl::make_layer(s);
    layer->create_params({type == "conv2d" || type.find("pool") != std::string::npos ? Shape{1, 3, 3, 2} : Shape{1, 2}});
    CHECK(layer->begin_statistics_average() == (type == "batch_norm"));
    CHECK(layer->end_statistics_average() == 0);  // no batch came
  }
}
