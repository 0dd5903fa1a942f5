#include "train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "features/classify.h"
#include "train/batches.h"
#include "train/loss.h"

namespace nl {

Evaluation evaluate(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                    size_t batch_size, const std::atomic<bool>* cancel) {
  check_model_fits(model, data, "evaluate");
  if (batch_size == 0) throw std::invalid_argument("evaluate: batch size 0");
  const size_t classes = data.classes().size();
  Evaluation ev;
  ev.confusion.assign(classes, std::vector<size_t>(classes, 0));
  Tensor input;
  double loss_sum = 0.0;
  size_t correct = 0;
  for (size_t begin = 0; begin < items.size(); begin += batch_size) {
    if (cancel && cancel->load()) {
      ev.cancelled = true;
      break;
    }
    const std::span<const size_t> chunk = items.subspan(begin, std::min(batch_size, items.size() - begin));
    make_batch(rt, model, data, chunk, nullptr, 0, 0, input);
    model.forward(rt, input, /*training=*/false);
    const Tensor& logits = model.logits();
    for (size_t k = 0; k < chunk.size(); ++k) {
      Classification answer;
      read_answer(model, k, answer);
      const int label = data.item(chunk[k]).label;
      const int predicted = static_cast<int>(answer.class_index);
      loss_sum -= std::log(std::max(static_cast<double>(answer.probabilities[label]), 1e-30));
      ev.items.push_back(chunk[k]);
      ev.predicted.push_back(predicted);
      ev.logits.emplace_back(logits.data() + k * classes, logits.data() + (k + 1) * classes);
      ev.probabilities.push_back(std::move(answer.probabilities));
      if (answer.has_outlier_score) {
        ev.outlier_scores.push_back(answer.outlier_score);
        ev.out_of_distribution += answer.out_of_distribution;
      }
      ++ev.confusion[label][predicted];
      correct += predicted == label;
    }
  }
  if (!ev.items.empty()) {
    ev.loss = loss_sum / static_cast<double>(ev.items.size());
    ev.accuracy = static_cast<double>(correct) / static_cast<double>(ev.items.size());
  }
  return ev;
}

Tensor collect_features(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                        const std::string& layer, size_t batch_size) {
  check_model_fits(model, data, "collect features");
  if (batch_size == 0) throw std::invalid_argument("collect features: batch size 0");
  const size_t index = model.layer_index(layer);
  const Shape shape = model.output_shape(index, 1);
  if (shape.size() != 2)
    throw std::invalid_argument("collect features: layer '" + layer + "' outputs " + to_string(shape) +
                                ", not [N, D]");
  const size_t d = shape[1];
  Tensor features(Shape{items.size(), d});
  Tensor input;
  for (size_t begin = 0; begin < items.size(); begin += batch_size) {
    const std::span<const size_t> chunk = items.subspan(begin, std::min(batch_size, items.size() - begin));
    make_batch(rt, model, data, chunk, nullptr, 0, 0, input);
    model.forward(rt, input, /*training=*/false);
    const Tensor& out = model.activation(index);
    std::copy(out.data(), out.data() + chunk.size() * d, features.data() + begin * d);
  }
  return features;
}

size_t recalibrate_batch_norm(Runtime& rt, Model& model, const Dataset& data,
                              std::span<const size_t> items, size_t batch_size) {
  check_model_fits(model, data, "batch-norm recalibration");
  if (batch_size == 0) throw std::invalid_argument("batch-norm recalibration: batch size 0");
  if (items.empty()) return 0;
  std::vector<Layer*> layers;  // those that learn statistics (batch norm), frozen ones excluded
  for (size_t i = 0; i < model.layer_count(); ++i)
    if (Layer& l = model.layer(i); !l.frozen && l.begin_statistics_average()) layers.push_back(&l);
  if (layers.empty()) return 0;
  const size_t batch = std::min(batch_size, items.size());
  size_t batches = 0;
  Tensor input;
  try {
    for (size_t begin = 0; begin + batch <= items.size(); begin += batch, ++batches) {
      make_batch(rt, model, data, items.subspan(begin, batch), nullptr, 0, 0, input);
      model.forward(rt, input, /*training=*/true);
    }
  } catch (...) {
    for (Layer* l : layers) l->abandon_statistics_average();
    throw;
  }
  for (Layer* l : layers) l->end_statistics_average();
  return batches;
}

}  // namespace nl
