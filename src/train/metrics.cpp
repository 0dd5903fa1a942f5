#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nl {

std::vector<ClassFigures> per_class_figures(const std::vector<std::vector<size_t>>& confusion) {
  const size_t n = confusion.size();
  for (size_t r = 0; r < n; ++r)
    if (confusion[r].size() != n)
      throw std::invalid_argument("per_class_figures: confusion row " + std::to_string(r) +
                                  " has " + std::to_string(confusion[r].size()) +
                                  " columns, expected " + std::to_string(n) + " (one per class)");
  std::vector<ClassFigures> out(n);
  for (size_t c = 0; c < n; ++c) {
    size_t predicted = 0, actual = 0;
    for (size_t k = 0; k < n; ++k) {
      predicted += confusion[k][c];
      actual += confusion[c][k];
    }
    const double tp = static_cast<double>(confusion[c][c]);
    ClassFigures& f = out[c];
    f.support = actual;
    f.precision = predicted ? tp / static_cast<double>(predicted) : 0.0;
    f.recall = actual ? tp / static_cast<double>(actual) : 0.0;
    f.f1 = f.precision + f.recall > 0 ? 2 * f.precision * f.recall / (f.precision + f.recall) : 0.0;
  }
  return out;
}

Interval wilson_interval(size_t successes, size_t trials, double z) {
  if (successes > trials)
    throw std::invalid_argument("wilson_interval: " + std::to_string(successes) +
                                " successes out of " + std::to_string(trials) +
                                " trials (successes must not exceed trials)");
  if (!(z > 0.0)) throw std::invalid_argument("wilson_interval: z must be positive");
  if (trials == 0) return {0.0, 1.0};
  const double n = static_cast<double>(trials), p = static_cast<double>(successes) / n;
  const double z2 = z * z, denominator = 1.0 + z2 / n;
  const double centre = (p + z2 / (2.0 * n)) / denominator;
  const double half = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator;
  // At 0 (or n) successes the low (high) end is exactly 0 (1) in exact arithmetic, but
  // rounding leaves it a few ulps off; say so exactly, so 0% and 100% read as such.
  return {successes == 0 ? 0.0 : std::max(centre - half, 0.0),
          successes == trials ? 1.0 : std::min(centre + half, 1.0)};
}

}  // namespace nl
