#include "layers/flip.h"

#include <algorithm>

#include "layers/layer_checks.h"

namespace nl {

void mirror_width(const float* x, float* y, size_t n, size_t h, size_t w, size_t c) {
  const size_t rows = n * h;
  for (size_t r = 0; r < rows; ++r) {
    const float* src = x + r * w * c;
    float* dst = y + r * w * c;
    for (size_t i = 0; i < w; ++i) std::copy_n(src + (w - 1 - i) * c, c, dst + i * c);
  }
}

Flip::Flip(const LayerSpec& spec) : Layer(spec) {}

Shape Flip::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  expect_rank(spec_, inputs[0], 4, "input");
  return inputs[0];
}

double Flip::flops(const std::vector<Shape>& inputs) const {
  (void)inputs;
  return 0.0;  // data movement only
}

void Flip::forward(Runtime&, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  const Tensor& x = *in.at(0);
  const Shape shape = output_shape({x.shape()});
  out.reshape(shape);
  mirror_width(x.data(), out.data(), shape[0], shape[1], shape[2], shape[3]);
}

void Flip::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out, const Tensor& dout,
                    const std::vector<Tensor*>& din) {
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec_, "backward needs exactly 1 input tensor");
  const Shape shape = output_shape({in[0]->shape()});
  expect_backward_args(spec_, in, out, dout, shape);
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(shape);
  mirror_width(dout.data(), dx.data(), shape[0], shape[1], shape[2], shape[3]);
}

}  // namespace nl
