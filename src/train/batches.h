// From dataset items to a model's input batch: decoded images, augmented or not, through the
// model's preprocessing; mixup's blend; and the check that a model takes a data set's images.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/model.h"
#include "core/runtime.h"
#include "core/tensor.h"
#include "train/augment.h"
#include "train/dataset.h"

namespace nl {

// Fills the [n,H,W,C] batch input from dataset items, with augmentation when `augment` is set
// (seeded per (seed, epoch, item), so the result does not depend on batch order or threads).
void make_batch(Runtime& rt, const Model& model, const Dataset& data, std::span<const size_t> items,
                const AugmentOptions* augment, uint64_t seed, size_t epoch, Tensor& input);

// Mixup's blend of a batch [N,...] with itself reversed: x_i = mix*x_i + (1-mix)*x_{N-1-i}.
void mix_with_reversed(Tensor& batch, double mix);

// Throws std::invalid_argument, starting with `what`, unless the model's classes, input size
// and cropping are the data's.
void check_model_fits(const Model& model, const Dataset& data, const char* what);

}  // namespace nl
