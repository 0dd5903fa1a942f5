// Conv2D's backward pass (the forward pass and operator set-up are in conv2d.cpp).
#include <algorithm>
#include <cmath>
#include <string>

#include "layers/conv2d.h"
#include "layers/layer_checks.h"
#include "layers/relu.h"

namespace nl {

void Conv2D::create_input_grad_operator() {
  // dX is the transposed convolution of dY with the same weights:
  //   dX[ih = oh*s + kh - p, iw = ow*s + kw - p, c] += dY[oh, ow, f] * W[f, kh, kw, c],
  // which is XNNPACK's deconvolution with F input and C output channels and the kernel
  // [C, kh, kw, F] (its OHWI from the deconvolution's side): W with first and last axes swapped.
  const size_t c = in_channels(), f = spec_.filters, taps = spec_.kernel * spec_.kernel;
  input_grad_weights_.reshape({c, spec_.kernel, spec_.kernel, f});
  const float* w = params_[0].value.data();
  float* wt = input_grad_weights_.data();
  // Per tap a [F,C] -> [C,F] transpose, in 16x16 tiles so that neither side is read or
  // written a float per cache line (the plain loop cost as much as the packing).
  constexpr size_t kTile = 16;
  for (size_t t = 0; t < taps; ++t)
    for (size_t j0 = 0; j0 < f; j0 += kTile)
      for (size_t c0 = 0; c0 < c; c0 += kTile) {
        const size_t j1 = std::min(j0 + kTile, f), c1 = std::min(c0 + kTile, c);
        for (size_t ch = c0; ch < c1; ++ch)
          for (size_t j = j0; j < j1; ++j) wt[(ch * taps + t) * f + j] = w[(j * taps + t) * c + ch];
      }
  const auto p = static_cast<uint32_t>(spec_.padding);
  const auto k = static_cast<uint32_t>(spec_.kernel);
  const auto s = static_cast<uint32_t>(spec_.stride);
  xnn_operator_t op = nullptr;
  check_xnn(xnn_create_deconvolution2d_nhwc_f32(p, p, p, p, k, k, s, s, /*dilation=*/1, 1,
                                                /*groups=*/1, f, c, /*input_pixel_stride=*/f,
                                                /*output_pixel_stride=*/c, wt, /*bias=*/nullptr,
                                                -INFINITY, INFINITY, /*flags=*/0, nullptr,
                                                nullptr, &op),
            ("create deconvolution2d_nhwc_f32 (input gradient) for layer '" + spec_.name + "'").c_str());
  input_grad_op_.reset(op);
  input_grad_shape_.clear();  // a fresh operator must be reshaped
  input_grad_stale_ = false;
}

void Conv2D::input_gradient(Runtime& rt, const float* g, const Shape& out_shape, Tensor& dx) {
  if (params_dirty_ || input_grad_stale_ || !input_grad_op_) create_input_grad_operator();
  const size_t h = dx.dim(1), w = dx.dim(2);
  if (input_grad_shape_ != dx.shape() || input_grad_pool_ != rt.threadpool()) {
    // The input rows and columns past the last window (when (H + 2p - k) is not a multiple
    // of the stride) are the deconvolution's adjustment: its output grows by them (zeros).
    const size_t k = spec_.kernel, s = spec_.stride, p = spec_.padding;
    const auto adjust_h = static_cast<uint32_t>((h + 2 * p - k) % s);
    const auto adjust_w = static_cast<uint32_t>((w + 2 * p - k) % s);
    size_t got_h = 0, got_w = 0;
    check_xnn(xnn_reshape_deconvolution2d_nhwc_f32(input_grad_op_.get(), out_shape[0], out_shape[1],
                                                   out_shape[2], adjust_h, adjust_w, &got_h, &got_w,
                                                   rt.threadpool()),
              ("reshape deconvolution2d_nhwc_f32 (input gradient) for layer '" + spec_.name + "'").c_str());
    if (got_h != h || got_w != w)
      throw_layer_error(spec_, "XNNPACK input gradient " + std::to_string(got_h) + "x" +
                                   std::to_string(got_w) + " differs from the input " + to_string(dx.shape()));
    input_grad_shape_ = dx.shape();
    input_grad_pool_ = rt.threadpool();
  }
  check_xnn(xnn_setup_deconvolution2d_nhwc_f32(input_grad_op_.get(), g, dx.data()),
            ("setup deconvolution2d_nhwc_f32 (input gradient) for layer '" + spec_.name + "'").c_str());
  check_xnn(xnn_run_operator(input_grad_op_.get(), rt.threadpool()),
            ("run deconvolution2d_nhwc_f32 (input gradient) for layer '" + spec_.name + "'").c_str());
}

void Conv2D::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                      const Tensor& dout, const std::vector<Tensor*>& din) {
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec_, "backward needs exactly 1 input tensor");
  if (params_.empty()) throw_layer_error(spec_, "backward before create_params");
  const Shape out_shape = output_shape({in[0]->shape()});
  const Tensor& x = expect_backward_args(spec_, in, out, dout, out_shape);
  Tensor* dx = din.empty() ? nullptr : din[0];
  const bool want_params = !frozen;
  if (!want_params && dx == nullptr) return;

  const size_t batch = x.dim(0), c = x.dim(3), f = spec_.filters;
  const size_t pixels = out_shape[1] * out_shape[2];  // output positions per image

  // The fused ReLU passed gradient only where it did not clamp.
  const float* g = dout.data();
  if (spec_.activation == Activation::relu) {
    masked_dout_.reshape(dout.shape());
    relu_backward(rt, out.data(), dout.data(), masked_dout_.data(), dout.size());
    g = masked_dout_.data();
  }

  if (want_params && params_.size() > 1) {
    // Each filter's sum runs over the output positions in order, whichever thread has its
    // block of filters: the same sums on any thread count.
    constexpr size_t kBlock = 16;
    const size_t rows = batch * pixels;
    float* db = params_[1].gradient().data();
    parallel_for(rt, (f + kBlock - 1) / kBlock, [&](size_t block) {
      const size_t j0 = block * kBlock, j1 = std::min(f, j0 + kBlock);
      double sums[kBlock] = {};
      for (size_t r = 0; r < rows; ++r)
        for (size_t j = j0; j < j1; ++j) sums[j - j0] += g[r * f + j];
      for (size_t j = j0; j < j1; ++j) db[j] += static_cast<float>(sums[j - j0]);
    });
  }

  if (dx != nullptr) {
    dx->reshape(x.shape());
    if (is_pointwise())  // the columns are the input pixels: dX = dY·W
      pointwise_input_grad_.run(rt, batch * pixels, f, c, g, params_[0].value.data(), dx->data());
    else
      input_gradient(rt, g, out_shape, *dx);
  }
  if (want_params)
    weight_grad_.accumulate(rt, x, g, {spec_.kernel, spec_.stride, spec_.padding}, f, params_[0].gradient().data());
}

}  // namespace nl
