// The verdict on a scan from its slices' class probabilities (the rule the README states, in
// one place for the command line and the page).
//
// A slice is "tumour-like" by 1 - p(notumor) (by its top probability when the model has no
// "notumor" class). The verdict is the tumour class predicted on the most slices (ties: the
// larger summed probability over those slices), provided at least min(3, slices) slices are
// predicted as some tumour class; otherwise "notumor". One stray slice in a 150-slice volume
// does not make a tumour verdict; three do.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace nl {

struct VolumeSummary {
  size_t slices = 0;
  std::vector<size_t> slices_per_class;  // by predicted class, in the model's class order
  size_t most_tumour_like = 0;           // slice index
  double most_tumour_like_score = 0;     // its 1 - p(notumor)
  size_t verdict = 0;                    // class index
  size_t tumour_slices = 0;              // slices predicted as a tumour class
};

// probabilities: one row per slice, one column per class. Throws std::invalid_argument for an
// empty volume or rows of the wrong length.
VolumeSummary summarize_volume(const std::vector<std::vector<float>>& probabilities,
                               const std::vector<std::string>& classes);

// How many tumour slices make a tumour verdict.
size_t tumour_slices_needed(size_t slices);

}  // namespace nl
