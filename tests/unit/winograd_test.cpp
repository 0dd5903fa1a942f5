// Winograd F(2x2, 3x3) convolution (layers/winograd.h) against naive loops in double
// (reference.h) on odd sizes: every padding it takes, odd output sizes (a last block half
// outside), channel and filter counts across the 16-lane transform width, bias or none, ReLU;
// the same bits on any thread count; re-shaping; errors. Natively the layers run direct
// convolution (conv2d.cpp's uses_winograd), so this is where the native build checks it.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "layers/winograd.h"
#include "reference.h"

namespace {

using nl::Runtime;
using nl::Shape;
using nl::Tensor;
using nl::WinogradConv3x3;
using nl::ref::ConvGeometry;

struct Case {
  const char* label;
  ConvGeometry g;  // k 3, stride 1
  bool bias;
  bool relu;
};

const Case kCases[] = {
    {"p1, 7x5, 3 -> 5", {2, 7, 5, 3, 5, 3, 1, 1}, true, false},
    {"p1 relu, 6x9, 2 -> 7, no bias", {1, 6, 9, 2, 7, 3, 1, 1}, false, true},
    {"p0, 8x7 (output 6x5)", {2, 8, 7, 4, 3, 3, 1, 0}, true, false},
    {"p2, 4x5 (blocks wholly in padding at the corners)", {2, 4, 5, 2, 3, 3, 1, 2}, true, true},
    {"p1 on a 1x1 image", {3, 1, 1, 5, 4, 3, 1, 1}, true, false},
    {"p1, 19 channels -> 37 filters (past two 16-lane groups)", {1, 5, 6, 19, 37, 3, 1, 1}, true, true},
    {"p1, 11x13, 33 -> 17", {2, 11, 13, 33, 17, 3, 1, 1}, true, false},
};

struct Weights {
  Tensor weight, bias;
};

Weights make_weights(const ConvGeometry& g, uint64_t seed) {
  Weights w{nl::ref::random_tensor({g.f, 3, 3, g.c}, seed, -0.5f, 0.5f),
            nl::ref::random_tensor({g.f}, seed + 1, -0.5f, 0.5f)};
  return w;
}

std::vector<double> reference(const ConvGeometry& g, const Tensor& x, const Weights& w, bool bias, bool relu) {
  return nl::ref::conv2d(g, nl::ref::to_double(x.values()), nl::ref::to_double(w.weight.values()),
                         bias ? nl::ref::to_double(w.bias.values()) : std::vector<double>{}, relu);
}

Tensor run(Runtime& rt, WinogradConv3x3& conv, const ConvGeometry& g, const Tensor& x) {
  Tensor y({x.dim(0), g.out_h(), g.out_w(), g.f});
  conv.run(rt, x, y);
  return y;
}

}  // namespace

TEST_CASE("Winograd 3x3 convolution matches naive loops") {
  Runtime rt(1);
  for (const Case& cc : kCases) {
    CAPTURE(cc.label);
    const Weights w = make_weights(cc.g, 3);
    WinogradConv3x3 conv;
    conv.create(w.weight.data(), cc.bias ? w.bias.data() : nullptr, cc.g.f, cc.g.c, cc.g.pad, cc.relu);
    const Tensor x = nl::ref::random_tensor({cc.g.n, cc.g.h, cc.g.w, cc.g.c}, 4);
    const Tensor y = run(rt, conv, cc.g, x);
    const std::string err = nl::ref::mismatch(y.values(), reference(cc.g, x, w, cc.bias, cc.relu), 1e-5, 1e-5);
    CHECK_MESSAGE(err.empty(), err);
  }
}

TEST_CASE("Winograd 3x3 convolution gives the same bits on 1 and 3 threads, and re-shapes") {
  ConvGeometry g{3, 9, 10, 21, 18, 3, 1, 1};
  const Weights w = make_weights(g, 5);
  Runtime one(1), three(3);
  WinogradConv3x3 a, b;
  a.create(w.weight.data(), w.bias.data(), g.f, g.c, 1, true);
  b.create(w.weight.data(), w.bias.data(), g.f, g.c, 1, true);
  // Batch 3, then 1, then another image size, then batch 3 again: every shape after another.
  for (const Shape& s : {Shape{3, 9, 10, 21}, Shape{1, 9, 10, 21}, Shape{2, 6, 3, 21}, Shape{3, 9, 10, 21}}) {
    CAPTURE(nl::to_string(s));
    g.n = s[0];
    g.h = s[1];
    g.w = s[2];
    const Tensor x = nl::ref::random_tensor(s, 6 + s[0] + s[1]);
    const Tensor ya = run(one, a, g, x), yb = run(three, b, g, x);
    CHECK(std::vector<float>(ya.values().begin(), ya.values().end()) ==
          std::vector<float>(yb.values().begin(), yb.values().end()));
    const std::string err = nl::ref::mismatch(ya.values(), reference(g, x, w, true, true), 1e-5, 1e-5);
    CHECK_MESSAGE(err.empty(), err);
  }
}

TEST_CASE("Winograd 3x3 convolution names what is wrong") {
  const Weights w = make_weights({1, 4, 4, 2, 3, 3, 1, 1}, 7);
  WinogradConv3x3 conv;
  Runtime rt(1);
  Tensor y({1, 4, 4, 3});
  const Tensor x({1, 4, 4, 2});
  CHECK_THROWS_WITH_AS(conv.run(rt, x, y), "Winograd 3x3 convolution run before create", std::logic_error);
  CHECK_THROWS_WITH_AS(conv.create(w.weight.data(), nullptr, 3, 2, 3, false),
                       "Winograd 3x3 convolution: padding 3 exceeds 2 (the kernel's reach)", std::invalid_argument);
  CHECK_THROWS_WITH_AS(conv.create(w.weight.data(), nullptr, 0, 2, 1, false),
                       "Winograd 3x3 convolution: filters (0) and channels (2) must be at least 1",
                       std::invalid_argument);
  conv.create(w.weight.data(), nullptr, 3, 2, 1, false);
  const Tensor wrong_channels({1, 4, 4, 5});
  CHECK_THROWS_WITH_AS(conv.run(rt, wrong_channels, y),
                       "Winograd 3x3 convolution: input [1,4,4,5] is not [N,H,W,2] with H and W + 2*padding 2 at least 3",
                       std::invalid_argument);
  Tensor wrong_out({1, 4, 5, 3});
  CHECK_THROWS_WITH_AS(conv.run(rt, x, wrong_out), "Winograd 3x3 convolution: output [1,4,5,3] is not [1,4,4,3]",
                       std::invalid_argument);
  conv.run(rt, x, y);  // still usable after the refusals
  CHECK(std::isfinite(y[0]));
}
