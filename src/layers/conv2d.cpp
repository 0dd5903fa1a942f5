#include "layers/conv2d.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "layers/init.h"
#include "layers/layer_checks.h"
#include "layers/relu.h"

namespace nl {

namespace {

// im2col buffers are filled this many floats at a time at most (16 MB), a whole number of
// images per chunk: big batches of big images would otherwise need hundreds of MB.
constexpr size_t kColsBudgetFloats = size_t{1} << 22;

}  // namespace

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

void Conv2D::im2col_transposed(Runtime& rt, const Tensor& x, size_t first, size_t count,
                               float* cols_t) {
  const size_t h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t k = spec_.kernel, s = spec_.stride, p = spec_.padding;
  const size_t oh_count = (h + 2 * p - k) / s + 1, ow_count = (w + 2 * p - k) / s + 1;
  const size_t rows = count * oh_count * ow_count;  // output positions in the chunk
  const size_t plane = count * h * w;                // one channel of the chunk
  const float* chunk = x.data() + first * h * w * c;
  if (is_pointwise()) {  // the columns are the input pixels: colsᵀ is the chunk transposed
    cols_transposer_.run(rt, plane, c, chunk, cols_t);
    return;
  }
  // The chunk channel-major first ([C, count*H*W], on XNNPACK's transpose), so that every
  // row of cols_t is gathered from one contiguous plane: reading NHWC directly strides by C
  // floats per element and went through the whole chunk k*k*C times (a fifth of a training
  // step in resnet-s).
  planes_.reshape({c, plane});
  cols_transposer_.run(rt, plane, c, chunk, planes_.data());
  // One task per row of cols_t (a kernel tap and an input channel); a channel's k*k taps are
  // consecutive tasks, so its plane is still in cache for the later ones.
  parallel_for(rt, k * k * c, [&](size_t task) {
    const size_t ch = task / (k * k), kh = task / k % k, kw = task % k;
    // Output columns [ow_begin, ow_end) put this tap inside the image (iw = ow*s + kw - p);
    // the others read zero padding. Found once, so the inner loop has no bounds checks.
    size_t ow_begin = 0, ow_end = ow_count;
    while (ow_begin < ow_count && ow_begin * s + kw < p) ++ow_begin;
    while (ow_end > ow_begin && (ow_end - 1) * s + kw >= p + w) --ow_end;
    float* dst = cols_t + ((kh * k + kw) * c + ch) * rows;
    for (size_t n = 0; n < count; ++n) {
      const float* image = planes_.data() + ch * plane + n * h * w;
      for (size_t oh = 0; oh < oh_count; ++oh, dst += ow_count) {
        const size_t ih_padded = oh * s + kh;  // ih + p
        if (ih_padded < p || ih_padded >= p + h) {
          std::fill(dst, dst + ow_count, 0.0f);
          continue;
        }
        std::fill(dst, dst + ow_begin, 0.0f);
        if (ow_begin < ow_end) {
          // The input pixel read at ow_begin, then every s-th pixel along the row.
          const float* src = image + (ih_padded - p) * w + (ow_begin * s + kw - p);
          if (s == 1)
            std::copy(src, src + (ow_end - ow_begin), dst + ow_begin);
          else
            for (size_t ow = ow_begin; ow < ow_end; ++ow, src += s) dst[ow] = *src;
        }
        std::fill(dst + ow_end, dst + ow_count, 0.0f);
      }
    }
  });
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

  const size_t batch = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t f = spec_.filters, k = spec_.kernel;
  const size_t pixels = out_shape[1] * out_shape[2];  // output positions per image
  const size_t kk = k * k * c;                        // one im2col row

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
    float* db = params_[1].grad.data();
    parallel_for(rt, (f + kBlock - 1) / kBlock, [&](size_t block) {
      const size_t j0 = block * kBlock, j1 = std::min(f, j0 + kBlock);
      double sums[kBlock] = {};
      for (size_t r = 0; r < rows; ++r)
        for (size_t j = j0; j < j1; ++j) sums[j - j0] += g[r * f + j];
      for (size_t j = j0; j < j1; ++j) db[j] += static_cast<float>(sums[j - j0]);
    });
  }

  const bool pointwise = is_pointwise();
  if (dx != nullptr) {
    dx->reshape(x.shape());
    if (!pointwise) input_gradient(rt, g, out_shape, *dx);
  }
  if (!want_params && !pointwise) return;
  if (want_params) {
    weight_grad_t_.reshape({kk, f});
    weight_grad_t_.fill(0.0f);
  }
  // The budget covers the larger of colsᵀ and the channel-major copy of the input it is
  // gathered from (larger only when the stride exceeds the kernel).
  const size_t per_image = std::max(pixels * kk, h * w * c);
  const size_t images_per_chunk =
      std::clamp<size_t>(kColsBudgetFloats / std::max<size_t>(per_image, 1), 1, batch);
  for (size_t first = 0; first < batch; first += images_per_chunk) {
    const size_t count = std::min(images_per_chunk, batch - first);
    const size_t rows = count * pixels;
    const float* g_chunk = g + first * pixels * f;
    if (want_params) {
      cols_t_.reshape({kk, rows});
      im2col_transposed(rt, x, first, count, cols_t_.data());
      weight_grad_.run(rt, kk, rows, f, cols_t_.data(), g_chunk, weight_grad_t_.data(),
                       /*accumulate=*/true);
    }
    if (dx != nullptr && pointwise)  // the columns are the input pixels: dX = dY·W
      pointwise_input_grad_.run(rt, rows, f, kk, g_chunk, params_[0].value.data(),
                                dx->data() + first * h * w * c);
  }
  if (want_params) {  // dW [F,KK] += (dWᵀ)ᵀ
    float* dw = params_[0].grad.data();
    const float* dw_t = weight_grad_t_.data();
    parallel_for(rt, f, [&](size_t j) {
      for (size_t i = 0; i < kk; ++i) dw[j * kk + i] += dw_t[i * f + j];
    });
  }
}

}  // namespace nl
