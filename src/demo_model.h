// A small, deterministic classifier for tests, the benchmark and the page until the trained
// model lands: conv/batch-norm/ReLU/pool blocks, one residual add, global average pooling,
// dropout, dense and softmax over the four NeuroLens classes. Weights are He-normal from
// the seed; batch-norm statistics are set to seeded non-trivial values (so folding them is
// exercised). Same seed, same weights, natively and in wasm.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace nl {

// glioma, meningioma, notumor, pituitary
const std::vector<std::string>& demo_classes();

// input_size: square grey input side, at least 4.
Model make_demo_model(size_t input_size = 64, uint64_t seed = 1);

}  // namespace nl
