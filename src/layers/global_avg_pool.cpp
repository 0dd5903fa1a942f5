#include "layers/global_avg_pool.h"

#include "layers/layer_checks.h"

namespace nl {

GlobalAvgPool::GlobalAvgPool(const LayerSpec& spec) : Layer(spec) {}

Shape GlobalAvgPool::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  expect_rank(spec_, inputs[0], 4, "input");
  return {inputs[0][0], inputs[0][3]};
}

double GlobalAvgPool::flops(const std::vector<Shape>& inputs) const {
  return static_cast<double>(numel(inputs.at(0)));  // one addition per element
}

void GlobalAvgPool::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool) {
  const Shape& shape = in.at(0)->shape();
  const Shape out_shape = output_shape({shape});
  if (!op_) {
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_reduce_nd(xnn_reduce_mean, xnn_datatype_fp32, nullptr, nullptr, 0, &op),
              "create reduce_nd (mean)");
    op_.reset(op);
    planned_.clear();
  }
  if (shape != planned_ || rt.threadpool() != pool_) {
    const int64_t axes[2] = {1, 2};
    size_t workspace_bytes = 0, workspace_alignment = 0;  // not used: see the header
    check_xnn(xnn_reshape_reduce_nd(op_.get(), 2, axes, 4, shape.data(), &workspace_bytes, &workspace_alignment,
                                    rt.threadpool()),
              "reshape reduce_nd (mean)");
    planned_ = shape;
    pool_ = rt.threadpool();
  }
  out.reshape(out_shape);
  check_xnn(xnn_setup_reduce_nd(op_.get(), nullptr, in[0]->data(), out.data()), "setup reduce_nd (mean)");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run reduce_nd (mean)");
}

void GlobalAvgPool::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out,
                             const Tensor& dout, const std::vector<Tensor*>& din) {
  const Tensor& x = *in.at(0);
  expect_shape(spec_, out.shape(), output_shape({x.shape()}), "output");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(x.shape());
  const size_t n_count = x.dim(0), pixels = x.dim(1) * x.dim(2), c = x.dim(3);
  const float scale = 1.0f / static_cast<float>(pixels);
  for (size_t n = 0; n < n_count; ++n) {
    const float* g = dout.data() + n * c;
    float* d = dx.data() + n * pixels * c;
    for (size_t p = 0; p < pixels; ++p, d += c)
      for (size_t ch = 0; ch < c; ++ch) d[ch] = g[ch] * scale;
  }
}

}  // namespace nl
