#include "train/calibration.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace nl {

namespace {

void check_rows(const LogitRows& logits, std::span<const int> labels, const char* what) {
  if (logits.empty()) throw std::invalid_argument(std::string(what) + ": no images");
  if (logits.size() != labels.size())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(logits.size()) + " rows of logits but " +
                                std::to_string(labels.size()) + " labels");
  const size_t classes = logits[0].size();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i].size() != classes || classes == 0)
      throw std::invalid_argument(std::string(what) + ": row " + std::to_string(i) + " has " +
                                  std::to_string(logits[i].size()) + " logits, row 0 " + std::to_string(classes));
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= classes)
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(labels[i]) + " of row " +
                                  std::to_string(i) + " is outside 0.." + std::to_string(classes - 1));
  }
}

// d/d(beta) of the mean NLL of softmax(beta * z): mean over rows of E_p[z] - z_label.
double nll_slope(const LogitRows& logits, std::span<const int> labels, double beta) {
  double slope = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const std::vector<float>& z = logits[i];
    const double top = *std::max_element(z.begin(), z.end());
    double sum = 0.0, weighted = 0.0;
    for (float v : z) {
      const double e = std::exp(beta * (v - top));
      sum += e;
      weighted += e * v;
    }
    slope += weighted / sum - z[labels[i]];
  }
  return slope / static_cast<double>(logits.size());
}

}  // namespace

double fit_temperature(const LogitRows& logits, std::span<const int> labels) {
  check_rows(logits, labels, "temperature fit");
  double low = 1.0 / 20.0, high = 1.0 / 0.05;  // beta = 1 / T
  if (nll_slope(logits, labels, low) >= 0.0) return 1.0 / low;
  if (nll_slope(logits, labels, high) <= 0.0) return 1.0 / high;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (low + high);
    (nll_slope(logits, labels, mid) < 0.0 ? low : high) = mid;
  }
  return 2.0 / (low + high);
}

CalibrationFigures calibration_figures(const LogitRows& logits, std::span<const int> labels,
                                       double temperature, size_t bins) {
  check_rows(logits, labels, "calibration figures");
  if (bins == 0) throw std::invalid_argument("calibration figures: 0 bins");
  CalibrationFigures f;
  f.temperature = temperature;
  f.images = logits.size();
  f.bins.resize(bins);
  for (size_t b = 0; b < bins; ++b) {
    f.bins[b].low = static_cast<double>(b) / bins;
    f.bins[b].high = static_cast<double>(b + 1) / bins;
  }
  size_t correct = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const std::vector<float> p = calibrated_softmax(logits[i], temperature);
    const size_t top = argmax(p);
    const bool right = static_cast<int>(top) == labels[i];
    correct += right;
    f.nll -= std::log(std::max(static_cast<double>(p[labels[i]]), 1e-30));
    // Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 cannot occur.
    const double c = p[top];
    const size_t b = std::min(bins - 1, static_cast<size_t>(std::max(0.0, std::ceil(c * bins) - 1.0)));
    ReliabilityBin& bin = f.bins[b];
    ++bin.count;
    bin.accuracy += right;
    bin.confidence += c;
  }
  const double n = static_cast<double>(logits.size());
  f.accuracy = correct / n;
  f.nll /= n;
  for (ReliabilityBin& bin : f.bins) {
    if (bin.count == 0) continue;
    bin.accuracy /= bin.count;
    bin.confidence /= bin.count;
    f.ece += bin.count / n * std::abs(bin.accuracy - bin.confidence);
  }
  return f;
}

Confidence fit_outlier_statistics(const Tensor& features, std::span<const int> labels, size_t classes,
                                  const std::string& feature_layer, double shrinkage) {
  if (features.shape().size() != 2 || features.shape()[0] != labels.size())
    throw std::invalid_argument("outlier statistics: features of shape " + to_string(features.shape()) +
                                " for " + std::to_string(labels.size()) + " labels");
  const size_t n = labels.size(), d = features.shape()[1];
  std::vector<double> mean(classes * d, 0.0);
  std::vector<size_t> count(classes, 0);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= classes)
      throw std::invalid_argument("outlier statistics: label " + std::to_string(labels[i]) + " out of range");
    ++count[labels[i]];
    for (size_t j = 0; j < d; ++j) mean[labels[i] * d + j] += features.data()[i * d + j];
  }
  for (size_t k = 0; k < classes; ++k) {
    if (count[k] == 0) throw std::invalid_argument("outlier statistics: class " + std::to_string(k) + " has no images");
    for (size_t j = 0; j < d; ++j) mean[k * d + j] /= static_cast<double>(count[k]);
  }
  // Shared within-class covariance, shrunk, in double; then its inverse by Cholesky.
  std::vector<double> cov(d * d, 0.0), x(d);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) x[j] = features.data()[i * d + j] - mean[labels[i] * d + j];
    for (size_t a = 0; a < d; ++a)
      for (size_t b = 0; b <= a; ++b) cov[a * d + b] += x[a] * x[b];
  }
  double trace = 0.0;
  for (size_t a = 0; a < d; ++a)
    for (size_t b = 0; b <= a; ++b) {
      cov[a * d + b] /= static_cast<double>(n);
      cov[b * d + a] = cov[a * d + b];
    }
  for (size_t a = 0; a < d; ++a) trace += cov[a * d + a];
  const double ridge = std::max(shrinkage * trace / static_cast<double>(d), 1e-12);
  for (size_t a = 0; a < d; ++a) cov[a * d + a] += ridge;
  std::vector<double> l(d * d, 0.0);  // cov = L L^T
  for (size_t a = 0; a < d; ++a)
    for (size_t b = 0; b <= a; ++b) {
      double s = cov[a * d + b];
      for (size_t k = 0; k < b; ++k) s -= l[a * d + k] * l[b * d + k];
      if (a == b) {
        if (!(s > 0.0)) throw std::invalid_argument("outlier statistics: the covariance is not positive definite");
        l[a * d + a] = std::sqrt(s);
      } else {
        l[a * d + b] = s / l[b * d + b];
      }
    }
  std::vector<double> inv_l(d * d, 0.0);  // L^-1, lower triangular
  for (size_t a = 0; a < d; ++a) {
    inv_l[a * d + a] = 1.0 / l[a * d + a];
    for (size_t b = 0; b < a; ++b) {
      double s = 0.0;
      for (size_t k = b; k < a; ++k) s += l[a * d + k] * inv_l[k * d + b];
      inv_l[a * d + b] = -s / l[a * d + a];
    }
  }
  Confidence c;
  c.feature_layer = feature_layer;
  c.class_means = Tensor(Shape{classes, d});
  for (size_t i = 0; i < classes * d; ++i) c.class_means.data()[i] = static_cast<float>(mean[i]);
  c.precision = Tensor(Shape{d, d});  // cov^-1 = L^-T L^-1
  for (size_t a = 0; a < d; ++a)
    for (size_t b = 0; b < d; ++b) {
      double s = 0.0;
      for (size_t k = std::max(a, b); k < d; ++k) s += inv_l[k * d + a] * inv_l[k * d + b];
      c.precision.data()[a * d + b] = static_cast<float>(s);
    }
  return c;
}

double outlier_threshold(std::vector<double> scores, double rate) {
  if (scores.empty()) throw std::invalid_argument("outlier threshold: no scores");
  if (!(rate >= 0.0 && rate < 1.0)) throw std::invalid_argument("outlier threshold: rate outside [0, 1)");
  std::sort(scores.begin(), scores.end());
  const auto above = static_cast<size_t>(std::floor(rate * static_cast<double>(scores.size())));
  return scores[scores.size() - 1 - above];
}

}  // namespace nl
