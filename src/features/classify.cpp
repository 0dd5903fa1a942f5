#include "features/classify.h"

namespace nl {

Classification classify_image(Runtime& rt, Model& model, std::span<const uint8_t> image) {
  return classify_grey(rt, model, decode_grey(image));
}

Classification classify_grey(Runtime& rt, Model& model, GreyImage image) {
  Classification c;
  c.input = preprocess_grey(std::move(image), model.architecture(), model.preprocessing(), &c.region);
  const Tensor& probs = model.forward(rt, c.input, /*training=*/false);
  c.probabilities.assign(probs.values().begin(), probs.values().end());
  c.class_index = argmax(c.probabilities);
  return c;
}

}  // namespace nl
