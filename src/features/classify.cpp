#include "features/classify.h"

namespace nl {

Classification classify_image(Runtime& rt, Model& model, std::span<const uint8_t> image) {
  Classification c;
  c.input = preprocess(image, model.architecture(), model.preprocessing(), &c.region);
  const Tensor& probs = model.forward(rt, c.input, /*training=*/false);
  c.probabilities.assign(probs.values().begin(), probs.values().end());
  c.class_index = argmax(c.probabilities);
  return c;
}

}  // namespace nl
