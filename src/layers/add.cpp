#include "layers/add.h"

#include <algorithm>

#include "layers/layer_checks.h"
#include "layers/relu.h"

namespace nl {

Add::Add(const LayerSpec& spec) : Layer(spec) {}

Shape Add::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 2);
  if (inputs[0] != inputs[1])
    throw_layer_error(spec_, "input shapes " + to_string(inputs[0]) + " and " + to_string(inputs[1]) +
                                 " differ; add needs identical shapes");
  if (inputs[0].empty() || numel(inputs[0]) == 0)
    throw_layer_error(spec_, "input shape " + to_string(inputs[0]) + " is empty");
  return inputs[0];
}

double Add::flops(const std::vector<Shape>& inputs) const {
  const double n = static_cast<double>(numel(inputs.at(0)));
  return spec_.activation == Activation::relu ? 2.0 * n : n;
}

void Add::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  if (in.size() != 2) throw_layer_error(spec_, "takes 2 inputs, got " + std::to_string(in.size()));
  const Shape shape = output_shape({in[0]->shape(), in[1]->shape()});
  out.reshape(shape);
  // One pass of our own: XNNPACK's add has no output clamp in this version, so add + fused
  // ReLU on it were two passes over the tensor (add, then clamp in place), measured at about
  // twice the time of this loop.
  const float* a = in[0]->data();
  const float* b = in[1]->data();
  float* o = out.data();
  const bool relu = spec_.activation == Activation::relu || fused_relu_;
  parallel_ranges(rt, out.size(), [&](size_t begin, size_t end) {
    if (relu)
      for (size_t i = begin; i < end; ++i) {
        const float v = a[i] + b[i];
        o[i] = v > 0.0f ? v : 0.0f;
      }
    else
      for (size_t i = begin; i < end; ++i) o[i] = a[i] + b[i];
  });
}

void Add::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out, const Tensor& dout,
                   const std::vector<Tensor*>& din) {
  if (in.size() != 2) throw_layer_error(spec_, "takes 2 inputs, got " + std::to_string(in.size()));
  expect_shape(spec_, out.shape(), output_shape({in[0]->shape(), in[1]->shape()}), "output");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  // Both inputs get the same gradient: computed once per chunk, then copied while in cache.
  float* d[2] = {nullptr, nullptr};
  for (size_t i = 0; i < 2 && i < din.size(); ++i)
    if (din[i]) {
      din[i]->reshape(out.shape());
      d[i] = din[i]->data();
    }
  float* const first = d[0] ? d[0] : d[1];
  float* const second = d[0] ? d[1] : nullptr;
  if (!first) return;
  const float* y = out.data();
  const float* g = dout.data();
  const bool relu = spec_.activation == Activation::relu || fused_relu_;
  parallel_ranges(rt, out.size(), [&](size_t begin, size_t end) {
    if (relu)
      relu_backward(y + begin, g + begin, first + begin, end - begin);
    else
      std::copy(g + begin, g + end, first + begin);
    if (second) std::copy(first + begin, first + end, second + begin);
  });
}

}  // namespace nl
