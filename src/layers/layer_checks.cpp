#include "layers/layer_checks.h"

#include <stdexcept>

namespace nl {

void throw_layer_error(const LayerSpec& spec, const std::string& what) {
  throw std::invalid_argument("layer '" + spec.name + "' (" + spec.type + "): " + what);
}

void expect_input_count(const LayerSpec& spec, const std::vector<Shape>& inputs, size_t count) {
  if (inputs.size() != count)
    throw_layer_error(spec, "takes " + std::to_string(count) + " input" + (count == 1 ? "" : "s") +
                                ", got " + std::to_string(inputs.size()));
}

void expect_rank(const LayerSpec& spec, const Shape& shape, size_t rank, const char* what) {
  if (shape.size() != rank)
    throw_layer_error(spec, std::string(what) + " must have " + std::to_string(rank) +
                                " dimensions, got " + to_string(shape));
  for (size_t d : shape)
    if (d == 0) throw_layer_error(spec, std::string(what) + " has a zero dimension: " + to_string(shape));
}

void expect_shape(const LayerSpec& spec, const Shape& actual, const Shape& expected, const char* what) {
  if (actual != expected)
    throw_layer_error(spec, std::string(what) + " has shape " + to_string(actual) + ", expected " +
                                to_string(expected));
}

const Tensor& expect_backward_args(const LayerSpec& spec, const std::vector<const Tensor*>& in,
                                   const Tensor& out, const Tensor& dout, const Shape& out_shape) {
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec, "backward needs exactly 1 input tensor");
  if (out.shape() != out_shape)
    throw_layer_error(spec, "backward: output shape " + to_string(out.shape()) + " is not " +
                                to_string(out_shape) + " for input " + to_string(in[0]->shape()));
  if (dout.shape() != out_shape)
    throw_layer_error(spec, "backward: gradient shape " + to_string(dout.shape()) +
                                " differs from output shape " + to_string(out_shape));
  return *in[0];
}

}  // namespace nl
