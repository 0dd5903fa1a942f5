#include "layers/add.h"

#include <algorithm>

#include "layers/layer_checks.h"

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
  if (!op_) {
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_binary_elementwise_nd(xnn_binary_add, xnn_datatype_fp32, nullptr, nullptr, nullptr, 0,
                                               &op),
              "create binary_elementwise_nd (add)");
    op_.reset(op);
    planned_.clear();
  }
  if (shape != planned_ || rt.threadpool() != pool_) {
    // Same shapes: the operator sees one flat dimension (no broadcasting needed).
    const size_t flat[1] = {numel(shape)};
    check_xnn(xnn_reshape_binary_elementwise_nd(op_.get(), 1, flat, 1, flat, rt.threadpool()),
              "reshape binary_elementwise_nd (add)");
    planned_ = shape;
    pool_ = rt.threadpool();
  }
  out.reshape(shape);
  check_xnn(xnn_setup_binary_elementwise_nd(op_.get(), in[0]->data(), in[1]->data(), out.data()),
            "setup binary_elementwise_nd (add)");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run binary_elementwise_nd (add)");
  if (spec_.activation == Activation::relu) relu_.run(rt, out.data(), out.data(), out.size());
}

void Add::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out, const Tensor& dout,
                   const std::vector<Tensor*>& din) {
  if (in.size() != 2) throw_layer_error(spec_, "takes 2 inputs, got " + std::to_string(in.size()));
  expect_shape(spec_, out.shape(), output_shape({in[0]->shape(), in[1]->shape()}), "output");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  for (size_t i = 0; i < 2 && i < din.size(); ++i) {
    if (din[i] == nullptr) continue;
    din[i]->reshape(out.shape());
    if (spec_.activation == Activation::relu)
      relu_backward(out.data(), dout.data(), din[i]->data(), out.size());
    else
      std::copy(dout.data(), dout.data() + out.size(), din[i]->data());
  }
}

}  // namespace nl
