#include "core/confidence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace nl {

std::vector<float> calibrated_softmax(std::span<const float> logits, double temperature) {
  if (!(temperature > 0.0)) throw std::invalid_argument("temperature must be positive");
  std::vector<float> p(logits.size());
  if (logits.empty()) return p;
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += std::exp((logits[i] - top) / temperature);
  for (size_t i = 0; i < logits.size(); ++i)
    p[i] = static_cast<float>(std::exp((logits[i] - top) / temperature) / sum);
  return p;
}

double outlier_score(const Confidence& c, std::span<const float> features) {
  const size_t d = c.precision.shape().empty() ? 0 : c.precision.shape()[0];
  if (!c.has_detector() || features.size() != d)
    throw std::invalid_argument("outlier score: " + std::to_string(features.size()) +
                                " features for a detector of " + std::to_string(d));
  const size_t classes = c.class_means.shape()[0];
  const float* precision = c.precision.data();
  std::vector<double> diff(d), projected(d);
  double best = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < classes; ++k) {
    const float* mean = c.class_means.data() + k * d;
    for (size_t i = 0; i < d; ++i) diff[i] = static_cast<double>(features[i]) - mean[i];
    double score = 0.0;
    for (size_t i = 0; i < d; ++i) {
      const float* row = precision + i * d;
      double dot = 0.0;
      for (size_t j = 0; j < d; ++j) dot += row[j] * diff[j];
      score += diff[i] * dot;
    }
    best = std::min(best, score);
  }
  return best;
}

nlohmann::json to_json(const Confidence& c) {
  nlohmann::json j = {{"temperature", c.temperature}, {"uncertain_below", c.uncertain_below}};
  if (c.has_detector())
    j["outliers"] = {{"feature_layer", c.feature_layer},
                     {"score", "squared Mahalanobis distance to the nearest class mean"},
                     {"threshold", c.ood_threshold}};
  if (!c.fitted.empty()) j["fitted"] = c.fitted;
  return j;
}

namespace {

double number_in(const nlohmann::json& j, const char* key, double low, double high, double fallback) {
  if (!j.contains(key)) return fallback;
  const nlohmann::json& v = j[key];
  if (!v.is_number()) throw std::invalid_argument(std::string("confidence.") + key + " is not a number");
  const double x = v.get<double>();
  if (!(x >= low && x <= high))
    throw std::invalid_argument(std::string("confidence.") + key + " " + std::to_string(x) +
                                " is outside [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  return x;
}

}  // namespace

Confidence confidence_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::invalid_argument("confidence is not a JSON object");
  Confidence c;
  c.temperature = number_in(j, "temperature", 0.01, 100.0, 1.0);
  c.uncertain_below = number_in(j, "uncertain_below", 0.0, 1.0, 0.0);
  if (j.contains("outliers")) {
    const nlohmann::json& o = j["outliers"];
    if (!o.is_object() || !o.contains("feature_layer") || !o["feature_layer"].is_string())
      throw std::invalid_argument("confidence.outliers needs a feature_layer name");
    c.feature_layer = o["feature_layer"].get<std::string>();
    if (c.feature_layer.empty()) throw std::invalid_argument("confidence.outliers.feature_layer is empty");
    if (!o.contains("threshold")) throw std::invalid_argument("confidence.outliers has no threshold");
    c.ood_threshold = number_in(o, "threshold", 0.0, 1e30, 0.0);
  }
  if (j.contains("fitted")) c.fitted = j["fitted"];
  return c;
}

}  // namespace nl
