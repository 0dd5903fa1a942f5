// How far a model's answers can be trusted, fitted after training on images the model did not
// learn from (scripts/cross-validate: out-of-fold predictions) and stored with it in the model
// file (metadata "confidence"; tensors "confidence.class_means" and "confidence.precision").
//
//   const nl::Confidence& c = model.confidence();
//   std::vector<float> p = nl::calibrated_softmax(logits_row, c.temperature);
//   if (c.has_detector() && nl::outlier_score(c, features_row) > c.ood_threshold) { ... }
//
// Temperature scaling: a network trained with cross-entropy is usually over-confident; one
// scalar T > 1 dividing the logits makes "90%" mean right about 9 times in 10 without changing
// any prediction. Outlier score: the squared Mahalanobis distance of the penultimate features
// (`feature_layer`'s output) from the nearest class mean under one shared covariance — large
// for inputs unlike every training class (a photograph, a chest X-ray, noise).
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace nl {

struct Confidence {
  double temperature = 1.0;      // shown probabilities are softmax(logits / temperature)
  double uncertain_below = 0.0;  // a top probability below this is reported as uncertain; 0: never
  // The outlier detector; an empty feature_layer means the model has none.
  std::string feature_layer;     // a layer whose output is [N, D] (e.g. global_avg_pool)
  Tensor class_means;            // [classes, D]
  Tensor precision;              // [D, D]: inverse of the shared within-class covariance
  double ood_threshold = 0.0;    // a score above this is "unlike the training images"
  nlohmann::json fitted = nlohmann::json::object();  // how it was measured (free-form record)

  bool has_detector() const { return !feature_layer.empty(); }
};

// softmax(logits / temperature), computed stably. temperature > 0.
std::vector<float> calibrated_softmax(std::span<const float> logits, double temperature);

// min over classes c of (f - mean_c)^T precision (f - mean_c). features.size() must be D.
double outlier_score(const Confidence& c, std::span<const float> features);

// {"temperature", "uncertain_below", "outliers": {"feature_layer", "threshold"}, "fitted"}
// (the tensors travel separately). from_json checks ranges and throws std::invalid_argument
// naming the field; it does not check the tensors (Model::set_confidence does).
nlohmann::json to_json(const Confidence& c);
Confidence confidence_from_json(const nlohmann::json& j);

}  // namespace nl
