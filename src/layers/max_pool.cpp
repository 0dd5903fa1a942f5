#include "layers/max_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/cpu_clones.h"
#include "layers/layer_checks.h"
#include "layers/pool_geometry.h"

namespace nl {

namespace {

// Per channel: v replaces the best so far, and position its position, when strictly greater
// (ties keep the earlier position). Selects, no branches, and restrict pointers (the buffers
// never overlap).
[[gnu::always_inline]] inline void max_step(const float* __restrict v, uint32_t position, float* __restrict best,
              uint32_t* __restrict best_at, size_t c) {
  for (size_t ch = 0; ch < c; ++ch) {
    const float value = v[ch], old = best[ch];  // loaded unconditionally, so the loop vectorises
    const uint32_t old_at = best_at[ch];
    const uint32_t wins = value > old ? ~0u : 0u;  // a mask: GCC if-converts it, not a bool
    best[ch] = value > old ? value : old;
    best_at[ch] = (position & wins) | (old_at & ~wins);
  }
}

// One image's winners: per output value, the window position of its first maximum (row-major
// within the clipped window; ties to the earliest), which backward routes the gradient to. With
// yn, also the output (a training forward, which keeps the winners so that backward need not
// read the input again); a NaN in a window makes its output NaN, so that a training run going
// wrong shows in its loss. Selects over channels, no data-dependent branches: it vectorises,
// compiled for the CPU's widest vectors too (cpu_clones.h).
NL_CPU_CLONES void find_winners(const LayerSpec& spec, const float* xn, size_t h, size_t w, size_t c, size_t oh,
                                size_t ow, float* yn, uint16_t* winners) {
  std::vector<float> best(c);
  std::vector<uint32_t> best_at(c), nan_seen(c);
  for (size_t oy = 0; oy < oh; ++oy) {
    const WindowRange ry = pool_window(spec, oy, h);
    for (size_t ox = 0; ox < ow; ++ox) {
      const WindowRange rx = pool_window(spec, ox, w);
      std::fill(best.begin(), best.end(), -INFINITY);
      std::fill(best_at.begin(), best_at.end(), 0u);
      std::fill(nan_seen.begin(), nan_seen.end(), 0u);
      uint32_t position = 0;
      for (size_t iy = ry.begin; iy < ry.end; ++iy)
        for (size_t ix = rx.begin; ix < rx.end; ++ix, ++position) {
          const float* v = xn + (iy * w + ix) * c;
          max_step(v, position, best.data(), best_at.data(), c);
          for (size_t ch = 0; ch < c; ++ch) nan_seen[ch] |= v[ch] != v[ch] ? 1u : 0u;
        }
      uint16_t* win = winners + (oy * ow + ox) * c;
      for (size_t ch = 0; ch < c; ++ch) win[ch] = static_cast<uint16_t>(best_at[ch]);
      if (yn == nullptr) continue;
      float* y = yn + (oy * ow + ox) * c;
      for (size_t ch = 0; ch < c; ++ch) y[ch] = nan_seen[ch] != 0 ? NAN : best[ch];
    }
  }
}

// One image's input gradient from its winners (dxn zeroed here, on the task's thread and
// while in cache): per window position, the gradient added where that position won.
NL_CPU_CLONES void image_backward(const LayerSpec& spec, const uint16_t* winners, const float* gn,
                                               size_t h, size_t w, size_t c, size_t oh, size_t ow, float* dxn) {
  std::fill(dxn, dxn + h * w * c, 0.0f);
  for (size_t oy = 0; oy < oh; ++oy) {
    const WindowRange ry = pool_window(spec, oy, h);
    for (size_t ox = 0; ox < ow; ++ox) {
      const WindowRange rx = pool_window(spec, ox, w);
      const float* __restrict g = gn + (oy * ow + ox) * c;
      const uint16_t* __restrict win = winners + (oy * ow + ox) * c;
      uint32_t position = 0;
      for (size_t iy = ry.begin; iy < ry.end; ++iy)
        for (size_t ix = rx.begin; ix < rx.end; ++ix, ++position) {
          float* __restrict d = dxn + (iy * w + ix) * c;
          for (size_t ch = 0; ch < c; ++ch) {
            const float grad = g[ch];  // loaded unconditionally, so the loop vectorises
            d[ch] += win[ch] == position ? grad : 0.0f;
          }
        }
    }
  }
}

}  // namespace

MaxPool::MaxPool(const LayerSpec& spec) : Layer(spec) { check_pool_spec(spec_); }

Shape MaxPool::output_shape(const std::vector<Shape>& inputs) const {
  return pool_output_shape(spec_, inputs);
}

double MaxPool::flops(const std::vector<Shape>& inputs) const {
  // One comparison per window element.
  return static_cast<double>(numel(output_shape(inputs))) * static_cast<double>(spec_.kernel * spec_.kernel);
}

void MaxPool::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) {
  const Shape& shape = in.at(0)->shape();
  const Shape out_shape = output_shape({shape});
  winners_shape_.clear();
  // Training: our own pass, which keeps each output's winner for backward. Measured on
  // resnet-s's stem (32 x 80 x 80 x 32 in): backward no longer reads the 26 MB input again.
  if (training && spec_.kernel > 1) {
    out.reshape(out_shape);
    winners_.resize(numel(out_shape));
    const Tensor& x = *in[0];
    const size_t h = shape[1], w = shape[2], c = shape[3], oh = out_shape[1], ow = out_shape[2];
    parallel_for(rt, shape[0], [&](size_t n) {
      find_winners(spec_, x.data() + n * h * w * c, h, w, c, oh, ow, out.data() + n * oh * ow * c,
                   winners_.data() + n * oh * ow * c);
    });
    winners_shape_ = out_shape;
    return;
  }
  if (spec_.kernel == 1) {  // padding < kernel, so 0: out[y,x] = in[y*stride, x*stride]
    out.reshape(out_shape);
    const size_t c = shape[3];
    for (size_t n = 0; n < out_shape[0]; ++n)
      for (size_t oy = 0; oy < out_shape[1]; ++oy)
        for (size_t ox = 0; ox < out_shape[2]; ++ox) {
          const float* src = in[0]->data() + ((n * shape[1] + oy * spec_.stride) * shape[2] + ox * spec_.stride) * c;
          std::copy(src, src + c, out.data() + ((n * out_shape[1] + oy) * out_shape[2] + ox) * c);
        }
    return;
  }
  if (!op_) {
    const uint32_t k = static_cast<uint32_t>(spec_.kernel), s = static_cast<uint32_t>(spec_.stride),
                   p = static_cast<uint32_t>(spec_.padding);
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_max_pooling2d_nhwc_f32(p, p, p, p, k, k, s, s, 1, 1, -INFINITY, INFINITY, 0, &op),
              "create max_pooling2d_nhwc_f32");
    op_.reset(op);
    planned_.clear();
  }
  if (shape != planned_ || rt.threadpool() != pool_) {
    size_t oh = 0, ow = 0;
    check_xnn(xnn_reshape_max_pooling2d_nhwc_f32(op_.get(), shape[0], shape[1], shape[2], shape[3], shape[3],
                                                 shape[3], &oh, &ow, rt.threadpool()),
              "reshape max_pooling2d_nhwc_f32");
    if (oh != out_shape[1] || ow != out_shape[2])
      throw_layer_error(spec_, "XNNPACK output size " + std::to_string(oh) + "x" + std::to_string(ow) +
                                   " differs from the expected " + to_string(out_shape));
    planned_ = shape;
    pool_ = rt.threadpool();
  }
  out.reshape(out_shape);
  check_xnn(xnn_setup_max_pooling2d_nhwc_f32(op_.get(), in[0]->data(), out.data()),
            "setup max_pooling2d_nhwc_f32");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run max_pooling2d_nhwc_f32");
}

void MaxPool::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                       const Tensor& dout, const std::vector<Tensor*>& din) {
  const Tensor& x = *in.at(0);
  expect_shape(spec_, out.shape(), output_shape({x.shape()}), "output");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(x.shape());
  const size_t n_count = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t oh = out.dim(1), ow = out.dim(2);
  // One task per image (each writes only its own gradient). After any forward other than a
  // training one, the image's winners are found from the input first.
  const bool have_winners = winners_shape_ == out.shape();
  if (!have_winners) winners_.resize(out.size());
  parallel_for(rt, n_count, [&](size_t n) {
    uint16_t* winners = winners_.data() + n * oh * ow * c;
    if (!have_winners) find_winners(spec_, x.data() + n * h * w * c, h, w, c, oh, ow, nullptr, winners);
    image_backward(spec_, winners, dout.data() + n * oh * ow * c, h, w, c, oh, ow, dx.data() + n * h * w * c);
  });
}

}  // namespace nl
