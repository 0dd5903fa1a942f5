// Named architectures for `neurolens train --arch NAME`, built with the Architecture API.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "model.h"

namespace nl {

struct ArchitectureInfo {
  std::string name;
  std::string description;
  size_t default_input_size;  // square, grey
};

const std::vector<ArchitectureInfo>& architecture_catalogue();

// Builds the named architecture for square grey images of input_size pixels (0: the
// architecture's default) and `classes` outputs (a dense layer of logits, then softmax).
// Throws std::invalid_argument for an unknown name (listing the known ones) or an input
// size the architecture cannot take.
Architecture make_architecture(const std::string& name, size_t input_size, size_t classes);

}  // namespace nl
