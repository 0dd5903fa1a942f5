#include "train/loss.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace nl {
namespace {

void check_scores(const Tensor& scores, const char* what) {
  if (scores.rank() != 2 || scores.dim(0) == 0 || scores.dim(1) == 0)
    throw std::invalid_argument(std::string(what) + ": expected non-empty [N,C] scores, got " +
                                to_string(scores.shape()));
}

void check_labels(const Tensor& scores, std::span<const int> labels, const char* what) {
  check_scores(scores, what);
  const size_t n = scores.dim(0), c = scores.dim(1);
  if (labels.size() != n)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(labels.size()) +
                                " labels for a batch of " + std::to_string(n));
  for (size_t i = 0; i < n; ++i)
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= c)
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(labels[i]) +
                                  " of sample " + std::to_string(i) + " is outside [0," +
                                  std::to_string(c) + ")");
}

}  // namespace

double softmax_cross_entropy(const Tensor& logits, std::span<const int> labels,
                             float label_smoothing, Tensor* dlogits) {
  check_labels(logits, labels, "softmax_cross_entropy");
  if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
    throw std::invalid_argument("softmax_cross_entropy: label smoothing " +
                                std::to_string(label_smoothing) + " is outside [0,1)");
  const size_t n = logits.dim(0), c = logits.dim(1);
  if (dlogits) dlogits->reshape({n, c});
  const double off = label_smoothing / static_cast<double>(c);
  const double on = 1.0 - label_smoothing + off;
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * c;
    double zmax = z[0];
    for (size_t j = 1; j < c; ++j) zmax = std::max(zmax, static_cast<double>(z[j]));
    double sum = 0.0;
    for (size_t j = 0; j < c; ++j) sum += std::exp(z[j] - zmax);
    const double log_sum = std::log(sum) + zmax;  // log sum_j exp(z_j)
    // loss = -sum_j t_j log p_j = log_sum - sum_j t_j z_j   (sum_j t_j = 1)
    double dot = 0.0;
    for (size_t j = 0; j < c; ++j) {
      const double t = static_cast<size_t>(labels[i]) == j ? on : off;
      dot += t * z[j];
    }
    total += log_sum - dot;
    if (dlogits) {
      float* d = dlogits->data() + i * c;
      for (size_t j = 0; j < c; ++j) {
        const double p = std::exp(z[j] - log_sum);
        const double t = static_cast<size_t>(labels[i]) == j ? on : off;
        d[j] = static_cast<float>((p - t) / static_cast<double>(n));
      }
    }
  }
  return total / static_cast<double>(n);
}

Tensor softmax_rows(const Tensor& logits) {
  check_scores(logits, "softmax_rows");
  const size_t n = logits.dim(0), c = logits.dim(1);
  Tensor p({n, c});
  for (size_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * c;
    float* q = p.data() + i * c;
    double zmax = z[0];
    for (size_t j = 1; j < c; ++j) zmax = std::max(zmax, static_cast<double>(z[j]));
    double sum = 0.0;
    for (size_t j = 0; j < c; ++j) sum += std::exp(z[j] - zmax);
    for (size_t j = 0; j < c; ++j) q[j] = static_cast<float>(std::exp(z[j] - zmax) / sum);
  }
  return p;
}

std::vector<int> argmax_rows(const Tensor& scores) {
  check_scores(scores, "argmax_rows");
  const size_t n = scores.dim(0), c = scores.dim(1);
  std::vector<int> best(n);
  for (size_t i = 0; i < n; ++i)
    best[i] = static_cast<int>(argmax(scores.values().subspan(i * c, c)));
  return best;
}

size_t count_correct(const Tensor& scores, std::span<const int> labels) {
  check_labels(scores, labels, "count_correct");
  const std::vector<int> predicted = argmax_rows(scores);
  size_t correct = 0;
  for (size_t i = 0; i < predicted.size(); ++i) correct += predicted[i] == labels[i];
  return correct;
}

}  // namespace nl
