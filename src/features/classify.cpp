#include "features/classify.h"

namespace nl {

Classification classify_image(Runtime& rt, Model& model, std::span<const uint8_t> image) {
  return classify_grey(rt, model, decode_grey(image));
}

Classification classify_grey(Runtime& rt, Model& model, GreyImage image) {
  Classification c;
  c.input = preprocess_grey(std::move(image), model.architecture(), model.preprocessing(), &c.region);
  model.forward(rt, c.input, /*training=*/false);
  read_answer(model, 0, c);
  return c;
}

void read_answer(const Model& model, size_t row, Classification& out) {
  const Confidence& conf = model.confidence();
  const Tensor& logits = model.logits();
  const size_t classes = logits.shape()[1];
  if (conf.temperature == 1.0) {  // the model's own softmax output, bit for bit
    const std::span<const float> probs = model.activation(model.layer_count() - 1).values().subspan(row * classes, classes);
    out.probabilities.assign(probs.begin(), probs.end());
  } else {
    out.probabilities = calibrated_softmax(logits.values().subspan(row * classes, classes), conf.temperature);
  }
  out.class_index = argmax(out.probabilities);
  out.uncertain = out.probabilities[out.class_index] < conf.uncertain_below;
  out.has_outlier_score = conf.has_detector();
  if (!out.has_outlier_score) return;
  const Tensor& features = model.activation(model.layer_index(conf.feature_layer));
  const size_t d = features.shape()[1];
  out.outlier_score = outlier_score(conf, features.values().subspan(row * d, d));
  out.out_of_distribution = out.outlier_score > conf.ood_threshold;
}

}  // namespace nl
