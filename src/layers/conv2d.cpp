#include "layers/conv2d.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "layers/init.h"
#include "layers/layer_checks.h"

namespace nl {

size_t conv_slice_filters(size_t filters, size_t weights_per_filter, size_t budget_bytes) {
  const size_t bytes = filters * weights_per_filter * sizeof(float);
  if (filters == 0 || budget_bytes == 0 || bytes <= budget_bytes) return filters;
  const size_t slices = (bytes + budget_bytes - 1) / budget_bytes;
  const size_t per_slice = (filters + slices - 1) / slices;
  return std::min(filters, (per_slice + kConvSliceFilterMultiple - 1) / kConvSliceFilterMultiple *
                               kConvSliceFilterMultiple);
}

Conv2D::Conv2D(const LayerSpec& spec) : Layer(spec) {
  if (spec_.filters == 0) throw_layer_error(spec_, "filters must be at least 1, got 0");
  if (spec_.kernel == 0) throw_layer_error(spec_, "kernel must be at least 1, got 0");
  if (spec_.stride == 0) throw_layer_error(spec_, "stride must be at least 1, got 0");
}

size_t Conv2D::in_channels() const { return params_.empty() ? 0 : params_[0].value.dim(3); }

bool Conv2D::is_pointwise() const {
  return spec_.kernel == 1 && spec_.stride == 1 && spec_.padding == 0;
}

bool Conv2D::uses_winograd(const Shape& input) const {
  if (spec_.kernel != 3 || spec_.stride != 1 || spec_.padding > 2) return false;
  // Measured on the shipped model:
  //  - WebAssembly SIMD (`scripts/bench --only wasm-profile`, one run each way): a pass 7.80 ->
  //    5.98 ms on 1 thread and 4.29 -> 2.62 ms on 2, every 3x3 stride-1 layer faster (s1
  //    1.08-1.53 -> 0.71 ms, s4 1.13 -> 0.92 ms): XNNPACK's 128-bit GEMM is slow enough there
  //    that 2.25x fewer multiply-adds outweigh the transforms.
  //  - x86 with AVX-512 (`neurolens bench --profile`, 1 thread, 3 runs each way): the direct
  //    convolution runs near XNNPACK's GEMM peak, and Winograd wins only where its 16 products
  //    are large and its transformed blocks stay in cache: s2 (64 channels, 100 blocks, 0.8 MB)
  //    0.128 -> 0.111 ms and s3 (128, 25 blocks, 0.4 MB) 0.132 -> 0.100 ms, but s1 (32 channels:
  //    products with K = 32) 0.127 -> 0.161 ms and s4 (9 blocks: products with M = 9) 0.141 ->
  //    0.177 ms. Training batches (s2-s3 at batch 32: 13-26 MB of blocks) were slower too:
  //    `neurolens bench-train --batch 32 --threads 2` 273-297 -> 260-270 images/s.
#if defined(__wasm__)
  (void)input;
  return true;
#else
  constexpr size_t kMinChannels = 64, kMinBlocks = 16, kMaxBlockBytes = size_t{1} << 20;
  const size_t out_h = input[1] + 2 * spec_.padding - 2, out_w = input[2] + 2 * spec_.padding - 2;
  const size_t blocks = input[0] * ((out_h + 1) / 2) * ((out_w + 1) / 2);
  const size_t block_bytes = 16 * blocks * (input[3] + spec_.filters) * sizeof(float);  // U and M
  return input[3] >= kMinChannels && blocks >= kMinBlocks && block_bytes <= kMaxBlockBytes;
#endif
}

Shape Conv2D::output_shape(const std::vector<Shape>& inputs) const {
  if (inputs.size() != 1) throw_layer_error(spec_, "expects 1 input, got " + std::to_string(inputs.size()));
  const Shape& s = inputs[0];
  if (s.size() != 4) throw_layer_error(spec_, "input must be NHWC [N,H,W,C], got shape " + to_string(s));
  for (size_t d : s)
    if (d == 0) throw_layer_error(spec_, "input shape " + to_string(s) + " has a zero dimension");
  const size_t k = spec_.kernel, p = spec_.padding;
  if (in_channels() != 0 && s[3] != in_channels())
    throw_layer_error(spec_, "input has " + std::to_string(s[3]) + " channels but the weight " +
                    to_string(params_[0].value.shape()) + " expects " +
                    std::to_string(in_channels()));
  if (k > s[1] + 2 * p)
    throw_layer_error(spec_, "kernel " + std::to_string(k) + " exceeds padded input height " +
                    std::to_string(s[1] + 2 * p) + " (height " + std::to_string(s[1]) +
                    " + 2 * padding " + std::to_string(p) + ")");
  if (k > s[2] + 2 * p)
    throw_layer_error(spec_, "kernel " + std::to_string(k) + " exceeds padded input width " +
                    std::to_string(s[2] + 2 * p) + " (width " + std::to_string(s[2]) +
                    " + 2 * padding " + std::to_string(p) + ")");
  const size_t oh = (s[1] + 2 * p - k) / spec_.stride + 1;
  const size_t ow = (s[2] + 2 * p - k) / spec_.stride + 1;
  return {s[0], oh, ow, spec_.filters};
}

std::vector<ParamShape> Conv2D::param_shapes(const std::vector<Shape>& inputs) const {
  output_shape(inputs);  // validates
  const size_t f = spec_.filters, k = spec_.kernel, c = inputs[0][3];
  std::vector<ParamShape> shapes{{"weight", {f, k, k, c}}};
  if (spec_.bias) shapes.push_back({"bias", {f}});
  return shapes;
}

void Conv2D::init_params(uint64_t seed) {
  if (params_.empty()) throw_layer_error(spec_, "init_params before create_params");
  Tensor& w = params_[0].value;
  fill_he_normal(w.values(), spec_.kernel * spec_.kernel * in_channels(), seed);
  if (params_.size() > 1) params_[1].value.fill(0.0f);
  params_dirty_ = true;
}

double Conv2D::flops(const std::vector<Shape>& inputs) const {
  const Shape o = output_shape(inputs);
  const double k = static_cast<double>(spec_.kernel);
  return 2.0 * static_cast<double>(o[1]) * static_cast<double>(o[2]) * k * k *
         static_cast<double>(inputs[0][3]) * static_cast<double>(spec_.filters);
}

void Conv2D::create_operator() {
  const auto p = static_cast<uint32_t>(spec_.padding);
  const auto k = static_cast<uint32_t>(spec_.kernel);
  const auto s = static_cast<uint32_t>(spec_.stride);
  const size_t c = in_channels(), f = spec_.filters;
  const float out_min = spec_.activation == Activation::relu ? 0.0f : -INFINITY;
  const float* bias = params_.size() > 1 ? params_[1].value.data() : nullptr;
  ops_.clear();
  batch_ = height_ = width_ = 0;  // fresh operators must be reshaped
  slice_filters_ = conv_slice_filters(f, k * k * c, kConvSliceBytes);
  for (size_t first = 0; first < f; first += slice_filters_) {
    const size_t count = std::min(slice_filters_, f - first);
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_convolution2d_nhwc_f32(p, p, p, p, k, k, s, s, /*dilation=*/1, 1,
                                                /*groups=*/1, c, count, /*input_channel_stride=*/c,
                                                /*output_channel_stride=*/f,
                                                params_[0].value.data() + first * k * k * c,
                                                bias == nullptr ? nullptr : bias + first, out_min, INFINITY,
                                                /*flags=*/0, nullptr, nullptr, &op),
              ("create convolution2d_nhwc_f32 for layer '" + spec_.name + "'").c_str());
    ops_.emplace_back(op);
  }
}

void Conv2D::refresh_operators(bool winograd) {
  if (params_dirty_) {  // every packed copy of the weights is stale
    ops_.clear();
    winograd_.reset();
    params_dirty_ = false;
    input_grad_stale_ = true;
  }
  if (winograd && !winograd_.created())
    winograd_.create(params_[0].value.data(), params_.size() > 1 ? params_[1].value.data() : nullptr, spec_.filters,
                     in_channels(), spec_.padding, spec_.activation == Activation::relu);
  if (!winograd && ops_.empty()) create_operator();
}

void Conv2D::prepare_operators() {
  if (params_.empty()) return;
  const bool had_input_grad = input_grad_op_ != nullptr;
  refresh_operators(last_forward_winograd_);
  if (had_input_grad && input_grad_stale_) create_input_grad_operator();
}

void Conv2D::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
                     bool training) {
  (void)training;
  if (in.size() != 1 || in[0] == nullptr) throw_layer_error(spec_, "forward needs exactly 1 input tensor");
  if (params_.empty()) throw_layer_error(spec_, "forward before create_params");
  const Tensor& x = *in[0];
  const Shape out_shape = output_shape({x.shape()});
  last_forward_winograd_ = uses_winograd(x.shape());
  refresh_operators(last_forward_winograd_);
  if (last_forward_winograd_) {
    out.reshape(out_shape);
    winograd_.run(rt, x, out);
    return;
  }
  if (x.dim(0) != batch_ || x.dim(1) != height_ || x.dim(2) != width_) {
    workspace_bytes_ = 0;
    workspace_alignment_ = 1;
    for (XnnOp& op : ops_) {
      // The slices run one after another, so one workspace of the largest size serves them all.
      size_t bytes = 0, alignment = 1;
      check_xnn(xnn_reshape_convolution2d_nhwc_f32(op.get(), x.dim(0), x.dim(1), x.dim(2), &bytes, &alignment,
                                                   &out_height_, &out_width_, rt.threadpool()),
                ("reshape convolution2d_nhwc_f32 for layer '" + spec_.name + "'").c_str());
      workspace_bytes_ = std::max(workspace_bytes_, bytes);
      workspace_alignment_ = std::max(workspace_alignment_, alignment);
    }
    batch_ = x.dim(0);
    height_ = x.dim(1);
    width_ = x.dim(2);
  }
  if (out_height_ != out_shape[1] || out_width_ != out_shape[2])
    throw_layer_error(spec_, "XNNPACK output " + std::to_string(out_height_) + "x" +
                    std::to_string(out_width_) + " differs from the expected " +
                    to_string(out_shape));
  out.reshape(out_shape);
  void* workspace = workspace_.get(workspace_bytes_, workspace_alignment_);
  for (size_t i = 0; i < ops_.size(); ++i) {
    check_xnn(xnn_setup_convolution2d_nhwc_f32(ops_[i].get(), workspace, x.data(), out.data() + i * slice_filters_),
              ("setup convolution2d_nhwc_f32 for layer '" + spec_.name + "'").c_str());
    check_xnn(xnn_run_operator(ops_[i].get(), rt.threadpool()),
              ("run convolution2d_nhwc_f32 for layer '" + spec_.name + "'").c_str());
  }
}

}  // namespace nl
