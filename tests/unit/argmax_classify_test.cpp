// The one argmax (core/tensor.h) and the one classify path (features/classify.h) that the
// command line and the page share: compared with naive references.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/runtime.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "features/classify.h"
#include "features/network_catalogue.h"
#include "formats/image.h"
#include "train/loss.h"

#include "stb_write.h"

namespace {

// The first index that no value exceeds (NaN-free input: the first maximum).
size_t naive_argmax(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i) {
    bool exceeded = false;
    for (size_t j = 0; j < v.size(); ++j) exceeded = exceeded || v[j] > v[i];
    if (!exceeded) return i;
  }
  return SIZE_MAX;
}

// A w x h grey PNG: a bright blob on a dark background, different per seed.
std::vector<uint8_t> blob_png(int w, int h, uint64_t seed) {
  nl::Rng rng(seed);
  const double cx = w * (0.3 + 0.4 * rng.uniform()), cy = h * (0.3 + 0.4 * rng.uniform());
  const double r = std::min(w, h) * (0.15 + 0.2 * rng.uniform());
  std::vector<uint8_t> px(static_cast<size_t>(w * h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      px[static_cast<size_t>(y * w + x)] =
          std::hypot(x - cx, y - cy) < r ? static_cast<uint8_t>(150 + 100 * rng.uniform())
                                         : static_cast<uint8_t>(20 * rng.uniform());
  std::vector<uint8_t> png;
  REQUIRE(stbi_write_png_to_func(append_to, &png, w, h, 1, px.data(), w));
  return png;
}

}  // namespace

TEST_CASE("argmax: the first maximum, NaN never wins after the first, empty refused") {
  using V = std::vector<float>;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(nl::argmax(V{3.0f}) == 0);
  CHECK(nl::argmax(V{0.1f, 0.7f, 0.2f}) == 1);
  CHECK(nl::argmax(V{0.5f, 0.5f, 0.0f}) == 0);       // a tie picks the first
  CHECK(nl::argmax(V{0.0f, 0.5f, 0.5f, 0.5f}) == 1);  // also in the middle
  CHECK(nl::argmax(V{0.25f, 0.25f, 0.25f, 0.25f}) == 0);
  CHECK(nl::argmax(V{-0.0f, 0.0f}) == 0);  // -0 == +0: a tie
  CHECK(nl::argmax(V{-inf, -1e30f, -inf}) == 1);
  CHECK(nl::argmax(V{1.0f, inf, inf}) == 1);
  CHECK(nl::argmax(V{nan, 1.0f, 2.0f}) == 0);  // nothing compares greater than a NaN
  CHECK(nl::argmax(V{1.0f, nan, 2.0f}) == 2);
  CHECK(nl::argmax(V{3.0f, nan, 2.0f}) == 0);
  CHECK_THROWS_AS(nl::argmax(V{}), std::invalid_argument);

  // Odd sizes, values drawn from a few levels so ties are common.
  nl::Rng rng(7);
  for (size_t n : {1u, 2u, 3u, 5u, 7u, 13u, 31u, 100u}) {
    for (int trial = 0; trial < 20; ++trial) {
      V v(n);
      for (float& x : v) x = static_cast<float>(static_cast<int>(rng.uniform() * 4)) - 1.5f;
      CAPTURE(n);
      CHECK(nl::argmax(v) == naive_argmax(v));
    }
  }
}

TEST_CASE("argmax_rows is argmax per row") {
  nl::Rng rng(3);
  for (size_t rows : {1u, 3u, 7u})
    for (size_t cols : {1u, 2u, 5u, 11u}) {
      nl::Tensor s({rows, cols});
      for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>(static_cast<int>(rng.uniform() * 3));
      const std::vector<int> best = nl::argmax_rows(s);
      REQUIRE(best.size() == rows);
      for (size_t r = 0; r < rows; ++r) {
        const std::vector<float> row(s.data() + r * cols, s.data() + (r + 1) * cols);
        CHECK(static_cast<size_t>(best[r]) == naive_argmax(row));
      }
    }
}

TEST_CASE("classify_image: preprocess + forward + argmax, bit for bit, at odd image sizes") {
  nl::Runtime rt(1);
  nl::Model demo = nl::make_demo_model(24, 5);
  for (bool crop : {false, true}) {
    nl::Model model(demo.architecture(), demo.classes(), nl::Preprocessing{0.0f, 1.0f, crop});
    for (size_t i = 0; i < model.parameters().size(); ++i)
      model.parameters()[i].param->value = demo.parameters()[i].param->value;
    model.params_changed();
    nl::Model folded = model.folded();
    for (const std::pair<int, int>& size : {std::pair{24, 24}, std::pair{37, 23}, std::pair{9, 41}, std::pair{1, 1}}) {
      const int w = size.first, h = size.second;  // not a structured binding: CAPTURE takes them in a lambda
      CAPTURE(crop);
      CAPTURE(w);
      CAPTURE(h);
      const std::vector<uint8_t> png = blob_png(w, h, static_cast<uint64_t>(w * 100 + h));
      const nl::Classification c = nl::classify_image(rt, folded, png);

      // The reference: the steps by hand.
      nl::InputRegion region;
      const nl::Tensor input = nl::preprocess(png, model.architecture(), model.preprocessing(), &region);
      const nl::Tensor& probs = folded.forward(rt, input, false);
      REQUIRE(c.probabilities.size() == model.classes().size());
      REQUIRE(probs.size() == c.probabilities.size());
      for (size_t k = 0; k < probs.size(); ++k) CHECK(c.probabilities[k] == probs[k]);
      CHECK(c.class_index == naive_argmax(c.probabilities));
      REQUIRE(c.input.shape() == input.shape());
      for (size_t k = 0; k < input.size(); ++k) CHECK(c.input[k] == input[k]);
      CHECK(c.region.image_width == static_cast<size_t>(w));
      CHECK(c.region.image_height == static_cast<size_t>(h));
      CHECK(c.region.box.x == region.box.x);
      CHECK(c.region.box.y == region.box.y);
      CHECK(c.region.box.width == region.box.width);
      CHECK(c.region.box.height == region.box.height);
    }
  }
  nl::Model folded = demo.folded();
  const std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'};
  CHECK_THROWS_AS(nl::classify_image(rt, folded, junk), std::invalid_argument);
  CHECK_THROWS_AS(nl::classify_image(rt, folded, {}), std::invalid_argument);
}

TEST_CASE("classify_grey of an image's grey levels is classify_image of its PNG, bit for bit") {
  // A scan slice reaches the model as grey levels (grey_from_levels); a PNG with the same
  // levels must give the same input and probabilities, so a DICOM holding a JPEG's pixels
  // classifies like the JPEG.
  nl::Runtime rt(1);
  nl::Model demo = nl::make_demo_model(24, 9);
  nl::Model model(demo.architecture(), demo.classes(), nl::Preprocessing{0.0f, 1.0f, true});
  for (size_t i = 0; i < model.parameters().size(); ++i)
    model.parameters()[i].param->value = demo.parameters()[i].param->value;
  model.params_changed();
  nl::Model folded = model.folded();
  for (const std::pair<int, int>& size : {std::pair{24, 24}, std::pair{53, 31}, std::pair{7, 66}}) {
    const int w = size.first, h = size.second;
    CAPTURE(w);
    CAPTURE(h);
    const std::vector<uint8_t> png = blob_png(w, h, static_cast<uint64_t>(w * 7 + h));
    // The PNG's levels, read back by the decoder and turned into bytes again.
    const nl::GreyImage decoded = nl::decode_grey(png);
    std::vector<uint8_t> levels(decoded.pixels.size());
    for (size_t i = 0; i < levels.size(); ++i) levels[i] = static_cast<uint8_t>(std::lround(decoded.pixels[i] * 255));
    const nl::Classification a = nl::classify_image(rt, folded, png);
    const nl::Classification b =
        nl::classify_grey(rt, folded, nl::grey_from_levels(static_cast<size_t>(w), static_cast<size_t>(h), levels));
    REQUIRE(a.input.size() == b.input.size());
    for (size_t k = 0; k < a.input.size(); ++k) CHECK(a.input[k] == b.input[k]);
    for (size_t k = 0; k < a.probabilities.size(); ++k) CHECK(a.probabilities[k] == b.probabilities[k]);
    CHECK(a.class_index == b.class_index);
    CHECK(a.region.box.x == b.region.box.x);
    CHECK(a.region.box.width == b.region.box.width);
  }
  const std::vector<uint8_t> six(6, 10);
  CHECK_THROWS_WITH_AS(nl::grey_from_levels(4, 2, six), "grey image 4x2 needs 8 grey levels, got 6",
                       std::invalid_argument);
  CHECK_THROWS_AS(nl::grey_from_levels(0, 6, six), std::invalid_argument);
}
