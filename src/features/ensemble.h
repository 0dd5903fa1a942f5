// Ensembles: several trained models made into one whose logits are the mean of theirs.
//
//   nl::Model a = nl::load_model_file("a.safetensors"), b = nl::load_model_file("b.safetensors");
//   nl::Model both = nl::mean_ensemble({&a, &b});  // one graph, one file, one forward pass
//   nl::Model tta = nl::flip_averaged(a);          // mean of a(x) and a(x mirrored left-right)
//   nl::save_model_file(both, "ensemble.safetensors");
//
// Averaging the predictions of independently trained networks removes part of each one's
// own errors. Made into a single graph (branch k's layers renamed "m<k>_<name>", all reading
// the image; each branch's final dense layer scaled by 1/K; the logits summed by add layers;
// one softmax), it loads, runs, explains and fine-tunes like any model.
//
// Test-time flip averaging is the same mechanism: a member may see the image mirrored left to
// right, through a flip layer "flip_m<k>" (layers/flip.h) in front of its branch. A model
// averaged with its own mirror image gives exactly the same probabilities for an image and its
// mirror (brains are roughly left-right symmetric, and a tumour may be on either side). The
// member's weights are stored once per branch, so the file and the cost are those of 2 models.
#pragma once
#include <vector>

#include "core/model.h"

namespace nl {

// One branch of a mean ensemble.
struct EnsembleMember {
  const Model* model = nullptr;
  bool flipped = false;  // the branch sees the image mirrored left to right (x -> W-1-x)
};

// Throws std::invalid_argument naming what stops the merge: fewer than 2 members, another
// input shape, class list or preprocessing than the first member's, or a member whose last
// layer is not a softmax fed by a dense layer.
//
// The merged model's training record is {"ensemble": [each member's record, ...]}; the record
// of a flipped member has "input_flipped": true added.
// (Not an overload of mean_ensemble: {&a, &b} would also make a vector<EnsembleMember> by
// vector's iterator-pair constructor.)
Model mean_ensemble_of(const std::vector<EnsembleMember>& members);
// The same with no member flipped.
Model mean_ensemble(const std::vector<const Model*>& members);

// The mean ensemble of K models and their mirror images: members m1 ... mK, then m1 ... mK
// flipped (2K branches, each weighted 1/(2K)). With one model the logits are
// (m(x) + m(flip(x))) / 2. Throws as mean_ensemble does (member k is model k), and for no
// models at all.
Model flip_averaged(const std::vector<const Model*>& models);
Model flip_averaged(const Model& model);

}  // namespace nl
