// Softmax cross-entropy on logits, and accuracy helpers.
#pragma once
#include <cstddef>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace nl {

// Mean over the batch of the cross-entropy between softmax(logits) and the target
// distribution: 1 - smoothing on the label, smoothing / C spread over all C classes.
// logits: [N,C] (N > 0, C > 0); labels: N values in [0,C). Computed with the row maximum
// subtracted (log-sum-exp), so large logits neither overflow nor lose precision.
// When dlogits is not null it receives dLoss/dlogits = (softmax - target) / N, shape [N,C].
// Throws std::invalid_argument naming the bad shape, label or smoothing value.
double softmax_cross_entropy(const Tensor& logits, std::span<const int> labels,
                             float label_smoothing = 0.0f, Tensor* dlogits = nullptr);

// Row-wise softmax of [N,C] scores (stable), e.g. probabilities from logits.
Tensor softmax_rows(const Tensor& logits);

// Index of the largest value in each row of [N,C] scores: nl::argmax (core/tensor.h) per row.
std::vector<int> argmax_rows(const Tensor& scores);

// How many rows of [N,C] scores have their maximum at the label.
size_t count_correct(const Tensor& scores, std::span<const int> labels);

}  // namespace nl
