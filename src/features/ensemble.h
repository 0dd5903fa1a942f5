// Ensembles: several trained models made into one whose logits are the mean of theirs.
//
//   nl::Model a = nl::load_model_file("a.safetensors"), b = nl::load_model_file("b.safetensors");
//   nl::Model both = nl::mean_ensemble({&a, &b});  // one graph, one file, one forward pass
//   nl::save_model_file(both, "ensemble.safetensors");
//
// Averaging the predictions of independently trained networks removes part of each one's
// own errors. Made into a single graph (branch k's layers renamed "m<k>_<name>", all reading
// the image; each branch's final dense layer scaled by 1/K; the logits summed by add layers;
// one softmax), it loads, runs, explains and fine-tunes like any model.
#pragma once
#include <vector>

#include "core/model.h"

namespace nl {

// Throws std::invalid_argument naming what stops the merge: fewer than 2 members, another
// input shape, class list or preprocessing than the first member's, or a member whose last
// layer is not a softmax fed by a dense layer.
Model mean_ensemble(const std::vector<const Model*>& members);

}  // namespace nl
