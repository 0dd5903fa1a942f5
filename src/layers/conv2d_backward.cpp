// Conv2D's backward pass (the forward pass and operator set-up are in conv2d.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/cpu_clones.h"
#include "layers/conv2d.h"
#include "layers/layer_checks.h"
#include "layers/relu.h"

namespace nl {

namespace {

// im2col buffers are filled this many floats at a time at most (16 MB), a whole number of
// images per chunk: big batches of big images would otherwise need hundreds of MB.
constexpr size_t kColsBudgetFloats = size_t{1} << 22;

// The direct weight gradient sums blocks of this many output positions in float, and tasks of
// kDirectTaskRows positions in double, added in task order: the partition depends only on the
// shape, so the sums are the same bits on any number of threads (as batch_norm's statistics).
constexpr size_t kDirectBlockRows = 32;
constexpr size_t kDirectTaskRows = 32 * kDirectBlockRows;

// cols [k*k*C, kDirectBlockRows] = the im2col rows of output positions (oy, ox0 + b) of one
// image, b < block, transposed (zero where a tap reads the padding).
NL_CPU_CLONES void gather_block(const float* image, size_t h, size_t w, size_t c, size_t k, size_t s, size_t p,
                                size_t oy, size_t ox0, size_t block, float* cols) {
  for (size_t kh = 0; kh < k; ++kh) {
    const size_t iy = oy * s + kh;  // padded coordinates
    for (size_t kw = 0; kw < k; ++kw)
      for (size_t ch = 0; ch < c; ++ch) {
        float* dst = cols + ((kh * k + kw) * c + ch) * kDirectBlockRows;
        if (iy < p || iy >= p + h) {
          std::fill(dst, dst + block, 0.0f);
          continue;
        }
        const float* src = image + (iy - p) * w * c + ch;
        for (size_t b = 0; b < block; ++b) {
          const size_t ix = (ox0 + b) * s + kw;
          dst[b] = ix >= p && ix < p + w ? src[(ix - p) * c] : 0.0f;
        }
      }
  }
}

// acc rows [i0, i0+Taps) of block_product: the sums of Taps taps by kWidth filters are held in
// registers across the rows, Taps independent chains of multiply-adds sharing each load of g.
// Inlined into each version of block_product, so compiled for its instruction set.
template <size_t Taps>
[[gnu::always_inline]] inline void taps_product(const float* cols, size_t i0, size_t block, const float* g,
                                                size_t f, float* acc) {
  // 16 floats as one value (GCC/Clang vector extension): one AVX-512 register, two AVX ones or
  // four SSE ones, which the sums stay in (a float array of them was spilled to the stack).
  using Vec = float __attribute__((vector_size(64)));
  constexpr size_t kWidth = sizeof(Vec) / sizeof(float);
  size_t j0 = 0;
  for (; j0 + kWidth <= f; j0 += kWidth) {
    Vec t[Taps] = {};
    for (size_t b = 0; b < block; ++b) {
      Vec gb;
      std::memcpy(&gb, g + b * f + j0, sizeof gb);
      for (size_t q = 0; q < Taps; ++q) t[q] += cols[(i0 + q) * kDirectBlockRows + b] * gb;
    }
    for (size_t q = 0; q < Taps; ++q) std::memcpy(acc + (i0 + q) * f + j0, &t[q], sizeof t[q]);
  }
  for (size_t q = 0; q < Taps; ++q)  // filters past the last whole kWidth
    for (size_t j = j0; j < f; ++j) {
      float t = 0.0f;
      for (size_t b = 0; b < block; ++b) t += cols[(i0 + q) * kDirectBlockRows + b] * g[b * f + j];
      acc[(i0 + q) * f + j] = t;
    }
}

// acc[kk,f] = colsᵀ·g over one block of output positions: cols [kk, kDirectBlockRows] (its
// first `block` columns), g [block, f]. Four taps at a time: one chain of multiply-adds waited
// on its own latency, and a loop over all filters per row loaded and stored every sum for
// every product.
NL_CPU_CLONES void block_product(const float* cols, size_t kk, size_t block, const float* g, size_t f,
                                 float* acc) {
  size_t i0 = 0;
  for (; i0 + 4 <= kk; i0 += 4) taps_product<4>(cols, i0, block, g, f, acc);
  switch (kk - i0) {
    case 3: taps_product<3>(cols, i0, block, g, f, acc); break;
    case 2: taps_product<2>(cols, i0, block, g, f, acc); break;
    case 1: taps_product<1>(cols, i0, block, g, f, acc); break;
    default: break;
  }
}

}  // namespace

bool Conv2D::uses_direct_weight_gradient() const {
  // Measured on resnet-s's stem (3x3 on one channel, 32 filters, a batch of 32 at 160 px:
  // 204,800 output positions): im2col and XNNPACK's product, an M = 9 matrix product whose
  // right operand (dY, 26 MB) is packed on every run, took about 5 ms per training step for
  // 0.12 GFLOP. Short rows of k*k*C columns are cheaper gathered and multiplied in place.
  const size_t kk = spec_.kernel * spec_.kernel * in_channels();
  return kk <= 16 && kk * spec_.filters <= 8192;
}

void Conv2D::direct_weight_gradient(Runtime& rt, const Tensor& x, const float* g, const Shape& out_shape) {
  const size_t h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t k = spec_.kernel, s = spec_.stride, p = spec_.padding, f = spec_.filters;
  const size_t oh = out_shape[1], ow = out_shape[2], kk = k * k * c;
  // Tasks of whole output lines (an image n, a row oy), about kDirectTaskRows positions each;
  // blocks of at most kDirectBlockRows positions along a line.
  const size_t lines = out_shape[0] * oh;
  const size_t lines_per_task = std::max<size_t>(1, kDirectTaskRows / ow);
  const size_t tasks = (lines + lines_per_task - 1) / lines_per_task;
  direct_partial_.assign(tasks * kk * f, 0.0);
  parallel_for(rt, tasks, [&](size_t task) {
    // acc [kk, f]: a block's sums; cols [kk, kDirectBlockRows]: its im2col rows, transposed.
    std::vector<float> acc(kk * f), cols(kk * kDirectBlockRows);
    double* sum = direct_partial_.data() + task * kk * f;
    for (size_t line = task * lines_per_task; line < std::min(lines, (task + 1) * lines_per_task); ++line) {
      const size_t n = line / oh, oy = line % oh;
      for (size_t ox0 = 0; ox0 < ow; ox0 += kDirectBlockRows) {
        const size_t block = std::min(kDirectBlockRows, ow - ox0);
        gather_block(x.data() + n * h * w * c, h, w, c, k, s, p, oy, ox0, block, cols.data());
        block_product(cols.data(), kk, block, g + (line * ow + ox0) * f, f, acc.data());
        for (size_t i = 0; i < kk * f; ++i) sum[i] += acc[i];
      }
    }
  });
  float* dw_t = weight_grad_t_.data();
  for (size_t i = 0; i < kk * f; ++i) {
    double total = 0.0;
    for (size_t task = 0; task < tasks; ++task) total += direct_partial_[task * kk * f + i];
    dw_t[i] += static_cast<float>(total);
  }
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
  const bool direct = want_params && uses_direct_weight_gradient();
  if (want_params) {
    weight_grad_t_.reshape({kk, f});
    weight_grad_t_.fill(0.0f);
  }
  if (direct) direct_weight_gradient(rt, x, g, out_shape);
  const bool im2col = want_params && !direct;
  if (im2col || (dx != nullptr && pointwise)) {
    // The budget covers the larger of colsᵀ and the channel-major copy of the input it is
    // gathered from (larger only when the stride exceeds the kernel).
    const size_t per_image = std::max(pixels * kk, h * w * c);
    const size_t images_per_chunk =
        std::clamp<size_t>(kColsBudgetFloats / std::max<size_t>(per_image, 1), 1, batch);
    for (size_t first = 0; first < batch; first += images_per_chunk) {
      const size_t count = std::min(images_per_chunk, batch - first);
      const size_t rows = count * pixels;
      const float* g_chunk = g + first * pixels * f;
      if (im2col) {
        cols_t_.reshape({kk, rows});
        im2col_transposed(rt, x, first, count, cols_t_.data());
        weight_grad_.run(rt, kk, rows, f, cols_t_.data(), g_chunk, weight_grad_t_.data(),
                         /*accumulate=*/true);
      }
      if (dx != nullptr && pointwise)  // the columns are the input pixels: dX = dY·W
        pointwise_input_grad_.run(rt, rows, f, kk, g_chunk, params_[0].value.data(),
                                  dx->data() + first * h * w * c);
    }
  }
  if (want_params) {  // dW [F,KK] += (dWᵀ)ᵀ
    float* dw = params_[0].grad.data();
    const float* dw_t = weight_grad_t_.data();
    // Tiles of 16 filters by 16 columns: a filter's row read down dWᵀ's column one float
    // per cache line (for s4's 2,304 x 256 that was a cache miss per weight).
    constexpr size_t kTile = 16;
    parallel_for(rt, (f + kTile - 1) / kTile, [&](size_t tile) {
      const size_t j0 = tile * kTile, j1 = std::min(f, j0 + kTile);
      for (size_t i0 = 0; i0 < kk; i0 += kTile) {
        const size_t i1 = std::min(kk, i0 + kTile);
        for (size_t j = j0; j < j1; ++j)
          for (size_t i = i0; i < i1; ++i) dw[j * kk + i] += dw_t[i * f + j];
      }
    });
  }
}

}  // namespace nl
