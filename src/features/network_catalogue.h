// The catalogue of named networks: the architectures `neurolens train --arch NAME` builds,
// and the demo model (an untrained network with seeded weights) that tests, the benchmark
// and `neurolens demo-model` use.
//
//   nl::Model m(nl::make_architecture("resnet-s", 160, 4), {"glioma", "meningioma", "notumor", "pituitary"});
//   nl::Model demo = nl::make_demo_model(64, /*seed=*/1);
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/model.h"

namespace nl {

struct ArchitectureInfo {
  std::string name;
  std::string description;
  size_t default_input_size;  // square, grey
  size_t min_input_size;
};

const std::vector<ArchitectureInfo>& architecture_catalogue();

// Builds the named architecture for square grey images of input_size pixels (0: the
// architecture's default) and `classes` outputs (a dense layer of logits, then softmax).
// Throws std::invalid_argument for an unknown name (listing the known ones) or an input
// size the architecture cannot take.
Architecture make_architecture(const std::string& name, size_t input_size, size_t classes);

// glioma, meningioma, notumor, pituitary
const std::vector<std::string>& demo_classes();

// The "demo" architecture over demo_classes() with He-normal weights from the seed and
// seeded, non-trivial batch-norm statistics. Same seed, same weights, natively and in wasm.
// input_size: square grey input side, at least 4.
Model make_demo_model(size_t input_size = 64, uint64_t seed = 1);

}  // namespace nl
