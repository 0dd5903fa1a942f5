// A model run over data set items in inference mode (loss, accuracy, confusion), and the
// batch-norm recalibration the trainer does before validating.
#pragma once
#include <atomic>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/runtime.h"
#include "train/dataset.h"

namespace nl {

// The result of running a model over some items in inference mode.
struct Evaluation {
  std::vector<size_t> items;               // dataset indices, in the order evaluated
  std::vector<int> predicted;              // per item
  std::vector<std::vector<float>> logits;         // per item
  // Per item: softmax over the classes of the logits / the model's temperature (1 unless it
  // was calibrated, core/confidence.h), as classify shows them.
  std::vector<std::vector<float>> probabilities;
  std::vector<double> outlier_scores;      // per item, when the model has an outlier detector
  size_t out_of_distribution = 0;          // items whose score is above its threshold
  double loss = 0.0;                       // mean cross-entropy of `probabilities` (no smoothing)
  double accuracy = 0.0;
  std::vector<std::vector<size_t>> confusion;  // [true class][predicted class]
  bool cancelled = false;
};

// model's classes must be the dataset's classes, and its input size the dataset's images.
// Checks cancel (if given) between batches and then returns with cancelled = true.
Evaluation evaluate(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                    size_t batch_size = 64, const std::atomic<bool>* cancel = nullptr);

// The output of `layer` (which must output [N, D]) for each item, as [items, D], in
// inference mode: the features the outlier detector is fitted on.
Tensor collect_features(Runtime& rt, Model& model, const Dataset& data, std::span<const size_t> items,
                        const std::string& layer, size_t batch_size = 64);

// Sets the running statistics of every batch-norm layer that is not frozen to its average
// batch statistics over the given items (un-augmented, in consecutive batches of batch_size;
// a last, smaller batch is left out unless it is the only one). Returns the batches used.
size_t recalibrate_batch_norm(Runtime& rt, Model& model, const Dataset& data,
                              std::span<const size_t> items, size_t batch_size);

}  // namespace nl
