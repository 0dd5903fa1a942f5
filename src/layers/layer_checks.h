// Shared validation helpers for layers: every error names the layer, its type and the rule.
#pragma once
#include <string>
#include <vector>

#include "layer.h"

namespace nl {

// Throws std::invalid_argument("layer '<name>' (<type>): <what>").
[[noreturn]] void throw_layer_error(const LayerSpec& spec, const std::string& what);

// Throws unless exactly `count` inputs were given.
void expect_input_count(const LayerSpec& spec, const std::vector<Shape>& inputs, size_t count);

// Throws unless shape has `rank` dimensions, all non-zero. `what` names the tensor ("input").
void expect_rank(const LayerSpec& spec, const Shape& shape, size_t rank, const char* what);

// Throws unless the tensor has exactly the expected shape (used by backward on dout etc.).
void expect_shape(const LayerSpec& spec, const Shape& actual, const Shape& expected, const char* what);

}  // namespace nl
