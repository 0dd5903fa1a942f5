// Shared validation helpers for layers: every error names the layer, its type and the rule.
#pragma once
#include <string>
#include <vector>

#include "core/layer.h"
#include "core/tensor.h"

namespace nl {

// Throws std::invalid_argument("layer '<name>' (<type>): <what>").
[[noreturn]] void throw_layer_error(const LayerSpec& spec, const std::string& what);

// Throws unless exactly `count` inputs were given.
void expect_input_count(const LayerSpec& spec, const std::vector<Shape>& inputs, size_t count);

// Throws unless shape has `rank` dimensions, all non-zero. `what` names the tensor ("input").
void expect_rank(const LayerSpec& spec, const Shape& shape, size_t rank, const char* what);

// Throws unless the tensor has exactly the expected shape (used by backward on dout etc.).
void expect_shape(const LayerSpec& spec, const Shape& actual, const Shape& expected, const char* what);

// The arguments of a single-input backward: exactly one input, and out and dout of the shape
// forward gives for it (out_shape). Returns that input.
const Tensor& expect_backward_args(const LayerSpec& spec, const std::vector<const Tensor*>& in,
                                   const Tensor& out, const Tensor& dout, const Shape& out_shape);

}  // namespace nl
