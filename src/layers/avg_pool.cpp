#include "layers/avg_pool.h"

#include <cmath>

#include "layers/layer_checks.h"
#include "layers/pool_geometry.h"

namespace nl {

AvgPool::AvgPool(const LayerSpec& spec) : Layer(spec) { check_pool_spec(spec_); }

Shape AvgPool::output_shape(const std::vector<Shape>& inputs) const {
  return pool_output_shape(spec_, inputs);
}

double AvgPool::flops(const std::vector<Shape>& inputs) const {
  // One addition per window element (the scaling is negligible).
  return static_cast<double>(numel(output_shape(inputs))) * static_cast<double>(spec_.kernel * spec_.kernel);
}

void AvgPool::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  const Shape& shape = in.at(0)->shape();
  const Shape out_shape = output_shape({shape});
  if (!op_) {
    const uint32_t k = static_cast<uint32_t>(spec_.kernel), s = static_cast<uint32_t>(spec_.stride),
                   p = static_cast<uint32_t>(spec_.padding);
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_average_pooling2d_nhwc_f32(p, p, p, p, k, k, s, s, -INFINITY, INFINITY, 0, &op),
              "create average_pooling2d_nhwc_f32");
    op_.reset(op);
    planned_.clear();
  }
  if (shape != planned_ || rt.threadpool() != pool_) {
    size_t oh = 0, ow = 0;
    check_xnn(xnn_reshape_average_pooling2d_nhwc_f32(op_.get(), shape[0], shape[1], shape[2], shape[3],
                                                     shape[3], shape[3], &workspace_bytes_,
                                                     &workspace_alignment_, &oh, &ow, rt.threadpool()),
              "reshape average_pooling2d_nhwc_f32");
    if (oh != out_shape[1] || ow != out_shape[2])
      throw_layer_error(spec_, "XNNPACK output size " + std::to_string(oh) + "x" + std::to_string(ow) +
                                   " differs from the expected " + to_string(out_shape));
    planned_ = shape;
    pool_ = rt.threadpool();
  }
  out.reshape(out_shape);
  void* workspace = workspace_.get(workspace_bytes_, workspace_alignment_);
  check_xnn(xnn_setup_average_pooling2d_nhwc_f32(op_.get(), workspace, in[0]->data(), out.data()),
            "setup average_pooling2d_nhwc_f32");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run average_pooling2d_nhwc_f32");
}

void AvgPool::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out,
                       const Tensor& dout, const std::vector<Tensor*>& din) {
  const Tensor& x = *in.at(0);
  expect_shape(spec_, out.shape(), output_shape({x.shape()}), "output");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(x.shape());
  dx.fill(0.0f);
  const size_t n_count = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t oh = out.dim(1), ow = out.dim(2);
  for (size_t n = 0; n < n_count; ++n) {
    float* dxn = dx.data() + n * h * w * c;
    for (size_t oy = 0; oy < oh; ++oy) {
      const WindowRange ry = pool_window(spec_, oy, h);
      for (size_t ox = 0; ox < ow; ++ox) {
        const WindowRange rx = pool_window(spec_, ox, w);
        // Divisor = covered input pixels only (padding excluded), as in the forward pass.
        const float scale = 1.0f / static_cast<float>((ry.end - ry.begin) * (rx.end - rx.begin));
        const float* g = dout.data() + ((n * oh + oy) * ow + ox) * c;
        for (size_t iy = ry.begin; iy < ry.end; ++iy)
          for (size_t ix = rx.begin; ix < rx.end; ++ix) {
            float* d = dxn + (iy * w + ix) * c;
            for (size_t ch = 0; ch < c; ++ch) d[ch] += g[ch] * scale;
          }
      }
    }
  }
}

}  // namespace nl
