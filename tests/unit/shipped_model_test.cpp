// The shipped model's outputs stay what they were: logits and probabilities for synthetic
// head-like slices (made here, no dataset image) against tests/unit/data/shipped_model_outputs.txt.
// That file was written by this test under NEUROLENS_WRITE_GOLDEN=FILE from the native
// build; a change meant to alter nothing must leave it identical (compare a freshly written
// file with it). The check itself allows rounding-level differences: XNNPACK picks other
// kernels on other processors and in wasm, which sum in another order.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "formats/image.h"
#include "formats/model_file.h"

namespace {

// An ellipse of tissue with a ripple, a brighter "lesion" whose place and size depend on k,
// and a dark background with a faint label in one corner (the head crop must ignore it).
nl::GreyImage synthetic_slice(int k, size_t width, size_t height) {
  nl::GreyImage img;
  img.width = width;
  img.height = height;
  img.pixels.assign(width * height, 0.0f);
  const double cx = 0.5 * width, cy = 0.52 * height, rx = 0.36 * width, ry = 0.42 * height;
  const double lx = cx + (k - 1) * 0.15 * width, ly = cy - 0.1 * height * k, lr = 0.05 * width * (k + 1);
  for (size_t y = 0; y < height; ++y)
    for (size_t x = 0; x < width; ++x) {
      const double dx = (x - cx) / rx, dy = (y - cy) / ry, r2 = dx * dx + dy * dy;
      double v = 0.0;
      if (r2 <= 1.0) v = 0.35 + 0.25 * r2 + 0.05 * std::sin(0.3 * x + 0.2 * y + k);
      const double ex = x - lx, ey = y - ly;
      if (ex * ex + ey * ey <= lr * lr) v = 0.9;
      if (x < 10 && y < 6) v = 0.8;
      img.pixels[y * width + x] = static_cast<float>(v);
    }
  return img;
}

std::vector<float> run_model(int k) {
  static nl::Runtime rt(1);  // declared first, so it outlives the model's operators
  static nl::Model model = nl::load_model_file("model/neurolens.safetensors").folded();
  const nl::Architecture& arch = model.architecture();
  nl::GreyImage img = synthetic_slice(k, 200 + 13 * k, 180 + 7 * k);
  if (model.preprocessing().crop_to_head) img = nl::crop(img, nl::head_box(img));
  img = nl::resize(img, arch.width, arch.height);
  nl::Tensor input(model.input_shape(1));
  nl::to_input(img, arch, model.preprocessing(), input.data());
  const nl::Tensor& probs = model.forward(rt, input, false);
  std::vector<float> out(model.logits().values().begin(), model.logits().values().end());
  out.insert(out.end(), probs.values().begin(), probs.values().end());
  return out;
}

}  // namespace

TEST_CASE("the shipped model gives the recorded outputs") {
  constexpr int kSlices = 3;
  if (const char* path = std::getenv("NEUROLENS_WRITE_GOLDEN")) {
    std::FILE* f = std::fopen(path, "w");
    REQUIRE(f != nullptr);
    for (int k = 0; k < kSlices; ++k) {
      for (float v : run_model(k)) std::fprintf(f, "%a ", static_cast<double>(v));
      std::fprintf(f, "\n");
    }
    std::fclose(f);
    return;
  }
  std::ifstream in("tests/unit/data/shipped_model_outputs.txt");
  REQUIRE(in.good());
  for (int k = 0; k < kSlices; ++k) {
    CAPTURE(k);
    std::string line;
    REQUIRE(std::getline(in, line));
    std::istringstream words(line);
    std::vector<float> expected;
    for (std::string w; words >> w;) expected.push_back(std::strtof(w.c_str(), nullptr));
    const std::vector<float> got = run_model(k);
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CAPTURE(i);
      CHECK(std::fabs(got[i] - expected[i]) <= std::max(1e-4f, 1e-4f * std::fabs(expected[i])));
    }
  }
}
