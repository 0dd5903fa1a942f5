// The verdict on a volume from its slices (features/volume_summary.h), against the rule as the
// README states it, written out by hand for each case.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "features/volume_summary.h"

namespace {

const std::vector<std::string> kClasses = {"glioma", "meningioma", "notumor", "pituitary"};

// A slice whose predicted class is `c` with probability `p` (the rest shared evenly).
std::vector<float> slice(size_t c, float p) {
  std::vector<float> v(4, (1 - p) / 3);
  v[c] = p;
  return v;
}

}  // namespace

TEST_CASE("volume summary: counts per class, the most tumour-like slice, and the verdict rule") {
  // 10 slices: 6 notumor, 2 glioma, 2 pituitary: under 3 tumour slices of one kind, but 4 tumour
  // slices in all, so a tumour verdict; glioma and pituitary tie on count, pituitary has the
  // larger summed probability.
  std::vector<std::vector<float>> p;
  for (int i = 0; i < 6; ++i) p.push_back(slice(2, 0.9f));
  p.push_back(slice(0, 0.6f));
  p.push_back(slice(3, 0.7f));
  p.push_back(slice(0, 0.5f));
  p.push_back(slice(3, 0.8f));
  nl::VolumeSummary s = nl::summarize_volume(p, kClasses);
  CHECK(s.slices == 10);
  CHECK(s.slices_per_class == std::vector<size_t>{2, 0, 6, 2});
  CHECK(s.tumour_slices == 4);
  CHECK(s.verdict == 3);
  // 1 - p(notumor) is largest where notumor has the least: the 0.5-glioma slice gives
  // notumor (1-0.5)/3, the 0.8-pituitary slice (1-0.8)/3: slice 9.
  CHECK(s.most_tumour_like == 9);
  CHECK(s.most_tumour_like_score == doctest::Approx(1 - 0.2 / 3));

  // Two tumour slices in a long volume: notumor.
  p.clear();
  for (int i = 0; i < 20; ++i) p.push_back(slice(2, 0.95f));
  p[4] = slice(1, 0.9f);
  p[11] = slice(1, 0.9f);
  s = nl::summarize_volume(p, kClasses);
  CHECK(s.tumour_slices == 2);
  CHECK(s.verdict == 2);
  CHECK(s.most_tumour_like == 4);  // the first of equals

  // A two-slice volume needs both slices; one is not enough.
  s = nl::summarize_volume({slice(0, 0.9f), slice(0, 0.8f)}, kClasses);
  CHECK(s.verdict == 0);
  s = nl::summarize_volume({slice(0, 0.9f), slice(2, 0.8f)}, kClasses);
  CHECK(s.verdict == 2);
  CHECK(nl::tumour_slices_needed(1) == 1);
  CHECK(nl::tumour_slices_needed(2) == 2);
  CHECK(nl::tumour_slices_needed(150) == 3);
}

TEST_CASE("volume summary: models without a notumor class, and refusals") {
  const std::vector<std::string> two = {"a", "b"};
  const nl::VolumeSummary s = nl::summarize_volume({{0.2f, 0.8f}, {0.9f, 0.1f}, {0.3f, 0.7f}}, two);
  CHECK(s.verdict == 1);
  CHECK(s.most_tumour_like == 1);  // top probability 0.9
  CHECK_THROWS_AS(nl::summarize_volume({}, kClasses), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::summarize_volume({{0.5f, 0.5f}}, kClasses),
                       "summarize_volume: slice 0 has 2 probabilities for 4 classes", std::invalid_argument);
}
