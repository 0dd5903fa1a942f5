#include "layers/softmax.h"

#include "layers/layer_checks.h"

namespace nl {

Softmax::Softmax(const LayerSpec& spec) : Layer(spec) {}

Shape Softmax::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  if (inputs[0].size() < 2)
    throw_layer_error(spec_, "input must have a batch and a class dimension, got " + to_string(inputs[0]));
  expect_rank(spec_, inputs[0], inputs[0].size(), "input");
  return inputs[0];
}

double Softmax::flops(const std::vector<Shape>& inputs) const {
  // Per element: subtract the maximum, exponentiate, sum, divide.
  return 4.0 * static_cast<double>(numel(inputs.at(0)));
}

void Softmax::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  const Shape shape = output_shape({in.at(0)->shape()});
  const size_t channels = shape.back(), rows = numel(shape) / channels;
  if (!op_) {
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_softmax_nc_f32(0, &op), "create softmax_nc_f32");
    op_.reset(op);
    rows_ = channels_ = 0;
  }
  if (rows != rows_ || channels != channels_ || rt.threadpool() != pool_) {
    check_xnn(xnn_reshape_softmax_nc_f32(op_.get(), channels, channels, channels, rows, rt.threadpool()),
              "reshape softmax_nc_f32");
    rows_ = rows;
    channels_ = channels;
    pool_ = rt.threadpool();
  }
  out.reshape(shape);
  check_xnn(xnn_setup_softmax_nc_f32(op_.get(), in[0]->data(), out.data()), "setup softmax_nc_f32");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run softmax_nc_f32");
}

void Softmax::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out, const Tensor& dout,
                       const std::vector<Tensor*>& din) {
  expect_shape(spec_, in.at(0)->shape(), out.shape(), "input");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(out.shape());
  const size_t channels = out.shape().back(), rows = out.size() / channels;
  for (size_t r = 0; r < rows; ++r) {
    const float* y = out.data() + r * channels;
    const float* g = dout.data() + r * channels;
    float* d = dx.data() + r * channels;
    double dot = 0.0;
    for (size_t c = 0; c < channels; ++c) dot += static_cast<double>(g[c]) * y[c];
    for (size_t c = 0; c < channels; ++c) d[c] = y[c] * (g[c] - static_cast<float>(dot));
  }
}

}  // namespace nl
