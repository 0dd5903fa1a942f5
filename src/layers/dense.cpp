#include "layers/dense.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "layers/init.h"
#include "layers/layer_checks.h"
#include "layers/relu.h"

namespace nl {

Dense::Dense(const LayerSpec& spec) : Layer(spec) {
  if (spec_.units == 0) throw_layer_error(spec_, "units must be at least 1, got 0");
}

size_t Dense::in_features() const { return params_.empty() ? 0 : params_[0].value.dim(1); }

Shape Dense::output_shape(const std::vector<Shape>& inputs) const {
  if (inputs.size() != 1) throw_layer_error(spec_, "expects 1 input, got " + std::to_string(inputs.size()));
  const Shape& s = inputs[0];
  if (s.size() != 2 && s.size() != 4)
    throw_layer_error(spec_, "input must be [N,C] or [N,H,W,C], got shape " + to_string(s));
  for (size_t d : s)
    if (d == 0) throw_layer_error(spec_, "input shape " + to_string(s) + " has a zero dimension");
  const size_t features = numel(s) / s[0];
  if (in_features() != 0 && features != in_features())
    throw_layer_error(spec_, "input " + to_string(s) + " has " + std::to_string(features) +
                    " features but the weight " + to_string(params_[0].value.shape()) +
                    " expects " + std::to_string(in_features()));
  return {s[0], spec_.units};
}

std::vector<ParamShape> Dense::param_shapes(const std::vector<Shape>& inputs) const {
  output_shape(inputs);  // validates
  // H*W*C of one image, saturated (Layer::param_shapes): computed in double, where it is exact
  // (below 2^53 within the architecture limits).
  const double n = numel_double(inputs[0]) / static_cast<double>(inputs[0][0]);
  const size_t features = n >= static_cast<double>(SIZE_MAX) ? SIZE_MAX : static_cast<size_t>(n);
  const size_t u = spec_.units;
  std::vector<ParamShape> shapes{{"weight", {u, features}}};
  if (spec_.bias) shapes.push_back({"bias", {u}});
  return shapes;
}

void Dense::init_params(uint64_t seed) {
  if (params_.empty()) throw_layer_error(spec_, "init_params before create_params");
  fill_he_normal(params_[0].value.values(), in_features(), seed);
  if (params_.size() > 1) params_[1].value.fill(0.0f);
  params_dirty_ = true;
}

double Dense::flops(const std::vector<Shape>& inputs) const {
  output_shape(inputs);  // validates
  const double features = static_cast<double>(numel(inputs[0]) / inputs[0][0]);
  return 2.0 * features * static_cast<double>(spec_.units);
}

void Dense::create_operator() {
  const size_t c = in_features(), u = spec_.units;
  const float out_min = spec_.activation == Activation::relu ? 0.0f : -INFINITY;
  const float* bias = params_.size() > 1 ? params_[1].value.data() : nullptr;
  xnn_operator_t op = nullptr;
  check_xnn(xnn_create_fully_connected_nc_f32(c, u, /*input_stride=*/c, /*output_stride=*/u,
                                              params_[0].value.data(), bias, out_min, INFINITY,
                                              /*flags=*/0, nullptr, nullptr, &op),
            ("create fully_connected_nc_f32 for layer '" + spec_.name + "'").c_str());
  op_.reset(op);
  batch_ = 0;  // a fresh operator must be reshaped
  params_dirty_ = false;
}

void Dense::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
                    bool training) {
  (void)training;
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec_, "forward needs exactly 1 input tensor");
  if (params_.empty()) throw_layer_error(spec_, "forward before create_params");
  const Tensor& x = *in[0];
  const Shape out_shape = output_shape({x.shape()});
  if (params_dirty_ || !op_) create_operator();
  if (x.dim(0) != batch_) {
    check_xnn(xnn_reshape_fully_connected_nc_f32(op_.get(), x.dim(0), rt.threadpool()),
              ("reshape fully_connected_nc_f32 for layer '" + spec_.name + "'").c_str());
    batch_ = x.dim(0);
  }
  out.reshape(out_shape);
  check_xnn(xnn_setup_fully_connected_nc_f32(op_.get(), x.data(), out.data()),
            ("setup fully_connected_nc_f32 for layer '" + spec_.name + "'").c_str());
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()),
            ("run fully_connected_nc_f32 for layer '" + spec_.name + "'").c_str());
}

void Dense::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                     const Tensor& dout, const std::vector<Tensor*>& din) {
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec_, "backward needs exactly 1 input tensor");
  if (params_.empty()) throw_layer_error(spec_, "backward before create_params");
  const Shape out_shape = output_shape({in[0]->shape()});
  const Tensor& x = expect_backward_args(spec_, in, out, dout, out_shape);
  Tensor* dx = din.empty() ? nullptr : din[0];
  const bool want_params = !frozen;
  if (!want_params && dx == nullptr) return;

  const size_t batch = x.dim(0), c = in_features(), u = spec_.units;
  const float* g = dout.data();
  if (spec_.activation == Activation::relu) {  // gradient flows only where ReLU did not clamp
    masked_dout_.reshape(dout.shape());
    relu_backward(rt, out.data(), dout.data(), masked_dout_.data(), dout.size());
    g = masked_dout_.data();
  }
  if (want_params) {
    weight_grad_.run(rt, u, batch, c, g, x.data(), params_[0].gradient().data(), /*accumulate=*/true);
    if (params_.size() > 1) {
      float* db = params_[1].gradient().data();
      for (size_t j = 0; j < u; ++j) {
        double sum = 0.0;
        for (size_t n = 0; n < batch; ++n) sum += g[n * u + j];
        db[j] += static_cast<float>(sum);
      }
    }
  }
  if (dx != nullptr) {
    dx->reshape(x.shape());
    input_grad_.run(rt, batch, u, c, g, params_[0].value.data(), dx->data());
  }
}

}  // namespace nl
