// Figures that summarise a classifier's results on a labelled set: per-class precision,
// recall and F1 from a confusion matrix, and how far the measured accuracy can be trusted.
//
//   std::vector<ClassFigures> f = per_class_figures(evaluation.confusion);
//   Interval ci = wilson_interval(correct, images);   // e.g. 1127/1141 -> [0.979, 0.993]
#pragma once
#include <cstddef>
#include <vector>

namespace nl {

struct ClassFigures {
  double precision = 0, recall = 0, f1 = 0;  // 0 where the denominator is 0
  size_t support = 0;                        // images of this true class
};

// confusion[t][p] = images of true class t predicted as p; must be square.
// Throws std::invalid_argument if it is not.
std::vector<ClassFigures> per_class_figures(const std::vector<std::vector<size_t>>& confusion);

struct Interval {
  double low = 0, high = 1;
};

// The Wilson score interval for a proportion of `successes` out of `trials` (two-sided,
// z = 1.96 for ~95%). Chosen over the textbook p ± z·sqrt(p(1-p)/n) because that one has
// zero width at 100% (or 0%) and leaves [0, 1] for small sets — exactly the small local
// test sets the page evaluates. trials = 0 gives [0, 1] (nothing is known).
// Throws std::invalid_argument if successes > trials or z <= 0.
Interval wilson_interval(size_t successes, size_t trials, double z = 1.959963984540054);

}  // namespace nl
