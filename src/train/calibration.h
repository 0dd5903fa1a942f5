// Fitting and measuring a model's confidence (core/confidence.h) on labelled images it did not
// learn from: the temperature, the calibration figures (expected calibration error, negative
// log-likelihood, reliability bins) and the outlier detector's statistics and threshold.
//
//   double t = nl::fit_temperature(ev.logits, labels);             // minimises the NLL
//   nl::CalibrationFigures before = nl::calibration_figures(ev.logits, labels, 1.0);
//   nl::CalibrationFigures after = nl::calibration_figures(ev.logits, labels, t);
//   nl::Confidence c = nl::fit_outlier_statistics(train_features, train_labels, classes, "gap");
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "core/confidence.h"
#include "core/tensor.h"

namespace nl {

using LogitRows = std::vector<std::vector<float>>;

// The temperature T in [0.05, 20] minimising the mean negative log-likelihood of
// softmax(logits / T) for the labels. The NLL is convex in 1/T, so its derivative is
// bisected. Throws std::invalid_argument for no rows, ragged rows or a label out of range.
double fit_temperature(const LogitRows& logits, std::span<const int> labels);

struct ReliabilityBin {
  double low = 0, high = 0;         // top-probability range (low, high]
  size_t count = 0;
  double accuracy = 0, confidence = 0;  // means over the bin's images (0 when empty)
};

struct CalibrationFigures {
  double temperature = 1.0;
  size_t images = 0;
  double accuracy = 0;
  double ece = 0;  // expected calibration error: sum over bins of count/N * |accuracy - confidence|
  double nll = 0;  // mean -log p(true class)
  std::vector<ReliabilityBin> bins;
};

// softmax(logits / temperature) per row, binned by the top probability into `bins` equal bins.
CalibrationFigures calibration_figures(const LogitRows& logits, std::span<const int> labels,
                                       double temperature, size_t bins = 15);

// Class means and the inverse of the shared within-class covariance of `features` ([N, D],
// rows labelled by `labels` in 0..classes-1), shrunk towards its mean variance
// (cov + shrinkage * trace/D * I) so that it stays invertible with few images or redundant
// features. The threshold is left at 0 (see outlier_threshold). Throws std::invalid_argument
// for a class without images or a shape mismatch.
Confidence fit_outlier_statistics(const Tensor& features, std::span<const int> labels, size_t classes,
                                  const std::string& feature_layer, double shrinkage = 0.01);

// The value that at most `rate` of the scores exceed: the (1 - rate) quantile (the smallest
// score with at most floor(rate * N) scores above it). Throws for no scores or rate outside [0, 1).
double outlier_threshold(std::vector<double> scores, double rate);

}  // namespace nl
