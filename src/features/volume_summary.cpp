#include "features/volume_summary.h"

#include <algorithm>
#include <stdexcept>

#include "core/tensor.h"

namespace nl {

size_t tumour_slices_needed(size_t slices) { return std::min<size_t>(3, slices); }

VolumeSummary summarize_volume(const std::vector<std::vector<float>>& probabilities,
                               const std::vector<std::string>& classes) {
  if (probabilities.empty()) throw std::invalid_argument("summarize_volume: no slices");
  if (classes.empty()) throw std::invalid_argument("summarize_volume: no classes");
  const auto no_tumour = std::find(classes.begin(), classes.end(), "notumor");
  const long none = no_tumour == classes.end() ? -1 : static_cast<long>(no_tumour - classes.begin());

  VolumeSummary s;
  s.slices = probabilities.size();
  s.slices_per_class.assign(classes.size(), 0);
  std::vector<double> summed(classes.size(), 0);
  s.most_tumour_like_score = -1;
  for (size_t z = 0; z < probabilities.size(); ++z) {
    const std::vector<float>& p = probabilities[z];
    if (p.size() != classes.size())
      throw std::invalid_argument("summarize_volume: slice " + std::to_string(z) + " has " +
                                  std::to_string(p.size()) + " probabilities for " +
                                  std::to_string(classes.size()) + " classes");
    const size_t best = argmax(p);
    ++s.slices_per_class[best];
    summed[best] += p[best];
    if (static_cast<long>(best) != none) ++s.tumour_slices;
    const double score = none >= 0 ? 1.0 - p[static_cast<size_t>(none)] : p[best];
    if (score > s.most_tumour_like_score) {
      s.most_tumour_like_score = score;
      s.most_tumour_like = z;
    }
  }
  if (none >= 0 && s.tumour_slices < tumour_slices_needed(s.slices)) {
    s.verdict = static_cast<size_t>(none);
    return s;
  }
  size_t best = classes.size();
  for (size_t c = 0; c < classes.size(); ++c) {
    if (static_cast<long>(c) == none || s.slices_per_class[c] == 0) continue;
    if (best == classes.size() || s.slices_per_class[c] > s.slices_per_class[best] ||
        (s.slices_per_class[c] == s.slices_per_class[best] && summed[c] > summed[best]))
      best = c;
  }
  s.verdict = best == classes.size() ? static_cast<size_t>(std::max(none, 0L)) : best;
  return s;
}

}  // namespace nl
