// Confidence: the temperature fit, the calibration figures against hand computations, the
// outlier statistics against naive loops, and the confidence's trip through the model file.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/confidence.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "features/classify.h"
#include "features/network_catalogue.h"
#include "formats/model_file.h"
#include "train/calibration.h"
#include "train/plot.h"

namespace {

using nl::LogitRows;

double mean_nll(const LogitRows& logits, const std::vector<int>& labels, double t) {
  return nl::calibration_figures(logits, labels, t).nll;
}

// Labels drawn from softmax(u); the model reports logits scale * u: over-confident for
// scale > 1, and the temperature that undoes it is `scale`.
void over_confident(double scale, size_t n, LogitRows& logits, std::vector<int>& labels) {
  nl::Rng rng(11);
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> u(4);
    for (float& v : u) v = static_cast<float>(rng.uniform(-2.0, 2.0));
    const std::vector<float> p = nl::calibrated_softmax(u, 1.0);
    double r = rng.uniform(), acc = 0.0;
    int label = 3;
    for (int c = 0; c < 4; ++c)
      if ((acc += p[c]) > r) {
        label = c;
        break;
      }
    for (float& v : u) v = static_cast<float>(v * scale);
    logits.push_back(u);
    labels.push_back(label);
  }
}

}  // namespace

TEST_CASE("calibrated_softmax divides the logits by the temperature") {
  const std::vector<float> z = {2.0f, -1.0f, 0.5f};
  for (double t : {0.5, 1.0, 3.0}) {
    const std::vector<float> p = nl::calibrated_softmax(z, t);
    double sum = 0.0;
    for (float v : z) sum += std::exp(v / t);
    for (size_t i = 0; i < z.size(); ++i) CHECK(p[i] == doctest::Approx(std::exp(z[i] / t) / sum).epsilon(1e-6));
  }
  CHECK_THROWS_WITH_AS(nl::calibrated_softmax(z, 0.0), "temperature must be positive", std::invalid_argument);
}

TEST_CASE("fit_temperature: an over-confident model gets T > 1 and a lower NLL") {
  LogitRows logits;
  std::vector<int> labels;
  over_confident(3.0, 4000, logits, labels);
  const double t = nl::fit_temperature(logits, labels);
  CHECK(t > 2.6);
  CHECK(t < 3.4);
  CHECK(mean_nll(logits, labels, t) < mean_nll(logits, labels, 1.0));
  // It is the minimum: a little either side is worse.
  CHECK(mean_nll(logits, labels, t) <= mean_nll(logits, labels, t * 1.05));
  CHECK(mean_nll(logits, labels, t) <= mean_nll(logits, labels, t / 1.05));
  CHECK(nl::calibration_figures(logits, labels, t).ece < nl::calibration_figures(logits, labels, 1.0).ece);

  LogitRows under;
  std::vector<int> under_labels;
  over_confident(0.5, 4000, under, under_labels);  // under-confident: T < 1
  CHECK(nl::fit_temperature(under, under_labels) < 0.6);

  CHECK_THROWS_WITH_AS(nl::fit_temperature({}, {}), doctest::Contains("no images"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::fit_temperature({{1.0f, 2.0f}}, std::vector<int>{2}), doctest::Contains("label 2"),
                       std::invalid_argument);
}

TEST_CASE("calibration_figures: ECE and NLL as computed by hand") {
  // Two classes; logits log p and log(1-p) give exactly top probability p (T = 1).
  auto row = [](double p) { return std::vector<float>{static_cast<float>(std::log(p)), static_cast<float>(std::log(1 - p))}; };
  const LogitRows logits = {row(0.95), row(0.95), row(0.62), row(0.81)};
  const std::vector<int> labels = {0, 1, 0, 0};  // the second 0.95 is wrong
  const nl::CalibrationFigures f = nl::calibration_figures(logits, labels, 1.0, 15);
  // Bins of width 1/15: 0.95 -> bin 14 (2 images, accuracy 0.5), 0.62 -> bin 9, 0.81 -> bin 12.
  const double ece = 2.0 / 4 * std::fabs(0.5 - 0.95) + 1.0 / 4 * (1 - 0.62) + 1.0 / 4 * (1 - 0.81);
  CHECK(f.ece == doctest::Approx(ece).epsilon(1e-5));
  const double nll = -(std::log(0.95) + std::log(0.05) + std::log(0.62) + std::log(0.81)) / 4;
  CHECK(f.nll == doctest::Approx(nll).epsilon(1e-5));
  CHECK(f.accuracy == doctest::Approx(0.75));
  CHECK(f.bins[14].count == 2);
  CHECK(f.bins[9].count == 1);
  CHECK(f.bins[12].count == 1);
  CHECK(f.bins[14].accuracy == doctest::Approx(0.5));
  const std::string svg = nl::reliability_diagram_svg({f}, "test");
  CHECK(svg.find("<svg") == 0);
  CHECK(svg.find("ECE 36.75%") != std::string::npos);
}

TEST_CASE("outlier statistics: class means, the inverse shrunk covariance and the score, against naive loops") {
  const size_t n = 600, d = 5, classes = 3;
  nl::Rng rng(5);
  nl::Tensor features(nl::Shape{n, d});
  std::vector<int> labels(n);
  for (size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int>(i % classes);
    for (size_t j = 0; j < d; ++j)  // correlated features around a class centre
      features.data()[i * d + j] = static_cast<float>(3.0 * labels[i] * (j == 0) + rng.uniform(-1, 1) +
                                                       (j > 0 ? 0.5 * features.data()[i * d + j - 1] : 0.0));
  }
  const double shrinkage = 0.05;
  const nl::Confidence c = nl::fit_outlier_statistics(features, labels, classes, "gap", shrinkage);
  REQUIRE(c.class_means.shape() == nl::Shape{classes, d});
  REQUIRE(c.precision.shape() == nl::Shape{d, d});
  // Naive: means, covariance + ridge; precision * that must be the identity.
  std::vector<double> mean(classes * d, 0.0), count(classes, 0.0), cov(d * d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    count[labels[i]] += 1;
    for (size_t j = 0; j < d; ++j) mean[labels[i] * d + j] += features.data()[i * d + j];
  }
  for (size_t k = 0; k < classes; ++k)
    for (size_t j = 0; j < d; ++j) {
      mean[k * d + j] /= count[k];
      CHECK(c.class_means.data()[k * d + j] == doctest::Approx(mean[k * d + j]).epsilon(1e-5));
    }
  for (size_t i = 0; i < n; ++i)
    for (size_t a = 0; a < d; ++a)
      for (size_t b = 0; b < d; ++b)
        cov[a * d + b] += (features.data()[i * d + a] - mean[labels[i] * d + a]) *
                          (features.data()[i * d + b] - mean[labels[i] * d + b]) / n;
  double trace = 0.0;
  for (size_t a = 0; a < d; ++a) trace += cov[a * d + a];
  for (size_t a = 0; a < d; ++a) cov[a * d + a] += shrinkage * trace / d;
  for (size_t a = 0; a < d; ++a)
    for (size_t b = 0; b < d; ++b) {
      double s = 0.0;
      for (size_t k = 0; k < d; ++k) s += c.precision.data()[a * d + k] * cov[k * d + b];
      CHECK(s == doctest::Approx(a == b ? 1.0 : 0.0).epsilon(1e-4).scale(1.0));
    }
  // The score: 0 at a class mean; for any point, the minimum over classes of the quadratic form.
  nl::Confidence detector = c;
  CHECK(nl::outlier_score(detector, std::vector<float>(c.class_means.data() + d, c.class_means.data() + 2 * d)) ==
        doctest::Approx(0.0).scale(1.0));
  const std::vector<float> x = {1.5f, -2.0f, 0.3f, 4.0f, -1.0f};
  double best = 1e300;
  for (size_t k = 0; k < classes; ++k) {
    double q = 0.0;
    for (size_t a = 0; a < d; ++a)
      for (size_t b = 0; b < d; ++b)
        q += (x[a] - mean[k * d + a]) * c.precision.data()[a * d + b] * (x[b] - mean[k * d + b]);
    best = std::min(best, q);
  }
  CHECK(nl::outlier_score(detector, x) == doctest::Approx(best).epsilon(1e-5));
  // Far from every class: far above what the training points score.
  std::vector<double> train_scores;
  for (size_t i = 0; i < n; ++i)
    train_scores.push_back(nl::outlier_score(detector, features.values().subspan(i * d, d)));
  const double threshold = nl::outlier_threshold(train_scores, 0.01);
  CHECK(nl::outlier_score(detector, std::vector<float>{20, -20, 20, -20, 20}) > 10 * threshold);
  CHECK_THROWS_WITH_AS(nl::outlier_score(detector, std::vector<float>{1, 2}), doctest::Contains("2 features"),
                       std::invalid_argument);
}

TEST_CASE("outlier_threshold: at most the rate of scores lie above it") {
  std::vector<double> scores;
  for (int i = 1; i <= 200; ++i) scores.push_back(i);
  CHECK(nl::outlier_threshold(scores, 0.01) == 198.0);  // 199 and 200 above: 2 = 1% of 200
  CHECK(nl::outlier_threshold(scores, 0.0) == 200.0);
  CHECK_THROWS_AS(nl::outlier_threshold({}, 0.01), std::invalid_argument);
  CHECK_THROWS_AS(nl::outlier_threshold(scores, 1.0), std::invalid_argument);
}

TEST_CASE("confidence: kept by the model file, clone and folded(); applied by classify") {
  nl::Model model = nl::make_demo_model(32, 3);
  const size_t d = model.output_shape(model.layer_index("gap"), 1)[1];
  nl::Confidence c;
  c.temperature = 2.5;
  c.uncertain_below = 0.7;
  c.feature_layer = "gap";
  c.class_means = nl::Tensor(nl::Shape{model.classes().size(), d}, 0.25f);
  c.precision = nl::Tensor(nl::Shape{d, d});
  for (size_t i = 0; i < d; ++i) c.precision.data()[i * d + i] = 2.0f;
  c.ood_threshold = 12.5;
  c.fitted = {{"images", 42}};
  model.set_confidence(c);

  const nl::Model loaded = nl::load_model(nl::serialize_model(model, nl::Dtype::f16));
  for (const nl::Model* m : {&loaded}) {
    const nl::Confidence& got = m->confidence();
    CHECK(got.temperature == 2.5);
    CHECK(got.uncertain_below == 0.7);
    CHECK(got.feature_layer == "gap");
    CHECK(got.ood_threshold == 12.5);
    CHECK(got.fitted == c.fitted);
    CHECK(got.precision.shape() == c.precision.shape());
    CHECK(std::equal(got.precision.values().begin(), got.precision.values().end(), c.precision.values().begin()));
    CHECK(std::equal(got.class_means.values().begin(), got.class_means.values().end(), c.class_means.values().begin()));
  }
  CHECK(model.clone().confidence().temperature == 2.5);
  nl::Model folded = model.folded();
  CHECK(folded.confidence().feature_layer == "gap");

  // classify: softmax(logits / T), and the outlier score of the gap features.
  nl::Runtime rt(1);
  nl::GreyImage img;
  img.width = img.height = 40;
  img.pixels.assign(40 * 40, 0.0f);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<float>((i * 7919 % 255) / 255.0);
  const nl::Classification r = nl::classify_grey(rt, folded, img);
  const std::vector<float> expected = nl::calibrated_softmax(folded.logits().values(), 2.5);
  for (size_t k = 0; k < expected.size(); ++k) CHECK(r.probabilities[k] == doctest::Approx(expected[k]).epsilon(1e-6));
  REQUIRE(r.has_outlier_score);
  const nl::Tensor& f = folded.activation(folded.layer_index("gap"));
  CHECK(r.outlier_score == doctest::Approx(nl::outlier_score(c, f.values())).epsilon(1e-6));
  CHECK(r.out_of_distribution == (r.outlier_score > 12.5));
  CHECK(r.uncertain == (r.probabilities[r.class_index] < 0.7));

  // A model without confidence writes no "confidence" entry and loads with the default.
  const nl::Model plain = nl::load_model(nl::serialize_model(nl::make_demo_model(32, 3)));
  CHECK(plain.confidence().temperature == 1.0);
  CHECK_FALSE(plain.confidence().has_detector());
}

TEST_CASE("confidence that does not fit the model is refused, naming what is wrong") {
  nl::Model model = nl::make_demo_model(32, 3);
  const size_t d = model.output_shape(model.layer_index("gap"), 1)[1];
  nl::Confidence c;
  c.feature_layer = "nope";
  c.class_means = nl::Tensor(nl::Shape{4, d});
  c.precision = nl::Tensor(nl::Shape{d, d});
  CHECK_THROWS_WITH_AS(model.set_confidence(c), doctest::Contains("'nope' is not in the model"), std::invalid_argument);
  c.feature_layer = "gap";
  c.precision = nl::Tensor(nl::Shape{d, d + 1});
  CHECK_THROWS_WITH_AS(model.set_confidence(c), doctest::Contains("precision has shape"), std::invalid_argument);
  c.precision = nl::Tensor(nl::Shape{d, d});
  c.class_means = nl::Tensor(nl::Shape{3, d});
  CHECK_THROWS_WITH_AS(model.set_confidence(c), doctest::Contains("class_means has shape"), std::invalid_argument);
  c.class_means = nl::Tensor(nl::Shape{4, d});
  c.class_means.data()[3] = NAN;
  CHECK_THROWS_WITH_AS(model.set_confidence(c), doctest::Contains("not finite"), std::invalid_argument);

  CHECK_THROWS_WITH_AS(nl::confidence_from_json({{"temperature", -1.0}}), doctest::Contains("confidence.temperature"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::confidence_from_json({{"outliers", {{"threshold", 1.0}}}}),
                       doctest::Contains("feature_layer"), std::invalid_argument);

  // A file whose metadata names a detector but lacks its tensors.
  c.class_means.data()[3] = 0.0f;
  model.set_confidence(c);
  std::vector<uint8_t> bytes = nl::serialize_model(model);
  const nl::SafetensorsFile file = nl::parse_safetensors(bytes);
  std::vector<nl::Tensor> owned;
  std::vector<nl::NamedTensor> named;
  owned.reserve(file.tensors.size());
  for (const auto& e : file.tensors) {
    if (e.name == "confidence.precision") continue;
    owned.push_back(e.to_tensor());
    named.push_back({e.name, &owned.back()});
  }
  CHECK_THROWS_WITH_AS(nl::load_model(nl::write_safetensors(named, file.metadata)),
                       doctest::Contains("missing tensor 'confidence.precision'"), std::invalid_argument);
}
