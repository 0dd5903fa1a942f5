// ConvWeightGradient against naive loops, in every instruction set this CPU runs: odd filter
// counts (two-vector, one-vector and single-filter columns), row counts that leave partial
// tiles, several blocks and several chunks of images, strides and padding, thread counts.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "layers/conv_weight_gradient.h"
#include "reference.h"

namespace {

using nl::ConvWeightGradient;
using nl::Runtime;
using nl::Tensor;
using nl::ref::ConvGeometry;

// dW[f, kh, kw, c] = Σ dy[n, oy, ox, f] · x[n, oy*s + kh - p, ox*s + kw - p, c], in double.
std::vector<double> naive_weight_gradient(const ConvGeometry& g, const Tensor& x, const Tensor& dy) {
  const size_t oh = g.out_h(), ow = g.out_w();
  std::vector<double> dw(g.f * g.k * g.k * g.c, 0.0);
  for (size_t n = 0; n < g.n; ++n)
    for (size_t oy = 0; oy < oh; ++oy)
      for (size_t ox = 0; ox < ow; ++ox)
        for (size_t kh = 0; kh < g.k; ++kh)
          for (size_t kw = 0; kw < g.k; ++kw) {
            const size_t iy = oy * g.stride + kh, ix = ox * g.stride + kw;  // padded
            if (iy < g.pad || iy >= g.pad + g.h || ix < g.pad || ix >= g.pad + g.w) continue;
            const float* xp = x.data() + ((n * g.h + iy - g.pad) * g.w + ix - g.pad) * g.c;
            const float* gp = dy.data() + ((n * oh + oy) * ow + ox) * g.f;
            for (size_t f = 0; f < g.f; ++f)
              for (size_t c = 0; c < g.c; ++c)
                dw[((f * g.k + kh) * g.k + kw) * g.c + c] += double(gp[f]) * double(xp[c]);
          }
  return dw;
}

// The layer's gradient accumulates: start from a known dW and expect it added to.
// abs_tol: the sums run over up to 1024 positions in float; with n*oh*ow terms of magnitude
// ~0.3 and totals that largely cancel, big cases need an absolute tolerance to match.
std::string check_case(ConvWeightGradient& wg, Runtime& rt, const ConvGeometry& g, uint64_t seed,
                       std::vector<float>* result = nullptr, double abs_tol = 1e-4) {
  const Tensor x = nl::ref::random_tensor({g.n, g.h, g.w, g.c}, seed);
  const Tensor dy = nl::ref::random_tensor({g.n, g.out_h(), g.out_w(), g.f}, seed + 1);
  const Tensor start = nl::ref::random_tensor({g.f, g.k, g.k, g.c}, seed + 2);
  std::vector<float> dw(start.values().begin(), start.values().end());
  wg.accumulate(rt, x, dy.data(), {g.k, g.stride, g.pad}, g.f, dw.data());
  std::vector<double> want = naive_weight_gradient(g, x, dy);
  for (size_t i = 0; i < want.size(); ++i) want[i] += start[i];
  if (result) *result = dw;
  return nl::ref::mismatch(dw, want, abs_tol, 1e-4);
}

}  // namespace

TEST_CASE("conv weight gradient matches naive loops in every instruction set") {
  const std::vector<std::string> sets = ConvWeightGradient::instruction_sets();
  REQUIRE(!sets.empty());
  CHECK(sets.back() == "simd128");
  // {n, h, w, c, f, k, stride, pad}
  const ConvGeometry cases[] = {
      {2, 9, 7, 3, 5, 3, 1, 1},     // 27 rows, 5 filters: partial tiles, single filters only
      {2, 9, 7, 1, 33, 3, 2, 1},    // one channel (the stem's shape), 33 filters
      {1, 6, 11, 4, 53, 3, 1, 1},   // 53 filters: 32 + 16 + 5 (AVX-512), 32 + 16 + 4 + 1 ...
      {3, 8, 7, 4, 20, 2, 3, 0},    // stride past the kernel: inputs no window reads
      {2, 5, 4, 2, 8, 5, 1, 3},     // taps wholly in the padding
      {2, 7, 5, 6, 64, 1, 2, 0},    // 1x1 stride 2 (a projection)
      {1, 5, 5, 16, 16, 1, 1, 0},   // pointwise
      {2, 4, 4, 9, 96, 3, 1, 1},    // 81 rows: 11 x 7 + 4 (AVX-512), 13 x 6 + 3 (AVX2), 20 x 4 + 1
  };
  for (const std::string& set : sets) {
    CAPTURE(set);
    ConvWeightGradient wg(set);
    Runtime rt(2);
    uint64_t seed = 100;
    for (const ConvGeometry& g : cases) {
      CAPTURE(g.h);
      CAPTURE(g.f);
      CAPTURE(g.k);
      CHECK(check_case(wg, rt, g, seed += 3) == "");
    }
  }
}

TEST_CASE("conv weight gradient over many blocks is the same bits on 1 and 3 threads") {
  // 3 images of 70x45 with 40 filters: 45 output positions a line, 22 lines a block, 10 blocks
  // by two columns of filters (32 and 8).
  const ConvGeometry g{3, 70, 45, 3, 40, 3, 1, 1};
  std::vector<std::vector<float>> results;
  for (size_t threads : {1, 3}) {
    Runtime rt(threads);
    ConvWeightGradient wg;
    results.emplace_back();
    CHECK(check_case(wg, rt, g, 7, &results.back()) == "");
  }
  CHECK(results[0] == results[1]);
}

TEST_CASE("conv weight gradient over several chunks of images, then other shapes on the same object") {
  Runtime rt(2);
  ConvWeightGradient wg;
  // 372 x 372 x 16 padded floats an image: over half of the 4M-float chunk budget, so one image
  // a chunk, three chunks.
  // 410,700 positions a weight (SIMD128 without FMA was 1.4e-4 off on a total of 1.3).
  CHECK(check_case(wg, rt, {3, 370, 370, 16, 3, 3, 1, 1}, 11, nullptr, 2e-3) == "");
  // Two layouts with the same number of floats (12 x 6 and 6 x 12 padded): the second must not
  // read the first's pixels where its own zero border is.
  CHECK(check_case(wg, rt, {1, 10, 4, 2, 5, 3, 1, 1}, 21) == "");
  CHECK(check_case(wg, rt, {1, 4, 10, 2, 5, 3, 1, 1}, 22) == "");
  CHECK(check_case(wg, rt, {1, 10, 4, 2, 5, 3, 1, 1}, 23) == "");
}

TEST_CASE("conv weight gradient names an instruction set this CPU cannot run") {
  try {
    ConvWeightGradient wg("neon");
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    CHECK(message.find("neon") != std::string::npos);
    CHECK(message.find("simd128") != std::string::npos);
  }
}
