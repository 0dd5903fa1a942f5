#include "layers/relu.h"

#include <cmath>

#include "layers/layer_checks.h"

namespace nl {

void ReluOp::run(Runtime& rt, const float* in, float* out, size_t count) {
  if (!op_) {
    xnn_unary_params params;
    params.clamp.min = 0.0f;
    params.clamp.max = INFINITY;
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_unary_elementwise_nc(xnn_unary_clamp, xnn_datatype_fp32, xnn_datatype_fp32,
                                              &params, nullptr, nullptr, 0, &op),
              "create clamp (ReLU)");
    op_.reset(op);
    count_ = 0;
  }
  if (count != count_ || rt.threadpool() != pool_) {
    // One row of `count` elements: the operator treats a contiguous array as a flat vector.
    check_xnn(xnn_reshape_unary_elementwise_nc(op_.get(), 1, count, count, count, rt.threadpool()),
              "reshape clamp (ReLU)");
    count_ = count;
    pool_ = rt.threadpool();
  }
  check_xnn(xnn_setup_unary_elementwise_nc(op_.get(), in, out), "setup clamp (ReLU)");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run clamp (ReLU)");
}

void relu_backward(const float* out, const float* dout, float* din, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float d = dout[i];  // loaded unconditionally, so the loop vectorizes
    din[i] = out[i] > 0.0f ? d : 0.0f;
  }
}

ReLU::ReLU(const LayerSpec& spec) : Layer(spec) {}

Shape ReLU::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  if (inputs[0].empty() || numel(inputs[0]) == 0)
    throw_layer_error(spec_, "input shape " + to_string(inputs[0]) + " is empty");
  return inputs[0];
}

double ReLU::flops(const std::vector<Shape>& inputs) const {
  return static_cast<double>(numel(inputs.at(0)));  // one comparison per element
}

void ReLU::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  const Shape shape = output_shape({in.at(0)->shape()});
  out.reshape(shape);
  relu_.run(rt, in[0]->data(), out.data(), out.size());
}

void relu_backward(Runtime& rt, const float* out, const float* dout, float* din, size_t count) {
  parallel_ranges(rt, count, [&](size_t begin, size_t end) {
    relu_backward(out + begin, dout + begin, din + begin, end - begin);
  });
}

void ReLU::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                    const Tensor& dout, const std::vector<Tensor*>& din) {
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  expect_shape(spec_, in.at(0)->shape(), out.shape(), "input");
  if (din.empty() || din[0] == nullptr) return;
  din[0]->reshape(out.shape());
  relu_backward(rt, out.data(), dout.data(), din[0]->data(), out.size());
}

}  // namespace nl
