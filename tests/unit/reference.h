// Test helpers: deterministic random data, naive reference implementations (plain loops in
// double precision) and a tolerance comparison. Everything here is deliberately simple and
// slow: it is the answer the optimised paths are checked against.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace nl::ref {

// ---- data -------------------------------------------------------------------------------

// Uniform values in [lo, hi) from std::mt19937_64(seed) with our own integer-to-float step
// (std::uniform_real_distribution differs between standard libraries; native and wasm
// tests should see the same numbers).
inline void fill_uniform(std::span<float> values, uint64_t seed, float lo = -1.0f,
                         float hi = 1.0f) {
  std::mt19937_64 engine(seed);
  for (float& v : values) {
    const double u = static_cast<double>(engine() >> 11) * (1.0 / 9007199254740992.0);
    v = static_cast<float>(lo + (hi - lo) * u);
  }
}

inline Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.0f,
                            float hi = 1.0f) {
  Tensor t(shape);
  fill_uniform(t.values(), seed, lo, hi);
  return t;
}

inline std::vector<double> to_double(std::span<const float> values) {
  return {values.begin(), values.end()};
}

// ---- comparison -------------------------------------------------------------------------

// Empty when |got[i] - ref[i]| <= max(abs_tol, rel_tol * |ref[i]|) for every i (and the sizes
// agree); otherwise a description of the first offending element and the count of offenders.
inline std::string mismatch(std::span<const float> got, std::span<const double> ref,
                            double abs_tol, double rel_tol) {
  if (got.size() != ref.size())
    return "size " + std::to_string(got.size()) + " != reference size " +
           std::to_string(ref.size());
  std::string first;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = std::max(abs_tol, rel_tol * std::fabs(ref[i]));
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(err <= tol)) {  // also catches NaN
      if (bad++ == 0)
        first = "element " + std::to_string(i) + ": got " + std::to_string(got[i]) +
                ", reference " + std::to_string(ref[i]) + " (tolerance " + std::to_string(tol) +
                ")";
    }
  }
  if (bad == 0) return {};
  return first + "; " + std::to_string(bad) + " of " + std::to_string(got.size()) + " differ";
}

// ---- matrix products --------------------------------------------------------------------

// C[M,N] = op(A)·op(B) where A is [M,K] ([K,M] if a_t) and B is [K,N] ([N,K] if b_t).
inline std::vector<double> matmul(std::span<const float> a, std::span<const float> b, size_t m,
                                  size_t k, size_t n, bool a_t, bool b_t) {
  std::vector<double> c(m * n, 0.0);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (size_t p = 0; p < k; ++p)
        s += static_cast<double>(a_t ? a[p * m + i] : a[i * k + p]) *
             static_cast<double>(b_t ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = s;
    }
  return c;
}

// ---- layers -----------------------------------------------------------------------------

// 2-D convolution, NHWC input [N,H,W,C], OHWI weight [F,k,k,C], optional bias [F], square
// kernel, stride and symmetric zero padding; relu clamps at 0. Output [N,OH,OW,F] as doubles.
// Takes doubles so finite differences can perturb inputs in double precision.
struct ConvGeometry {
  size_t n, h, w, c, f, k, stride, pad;
  size_t out_h() const { return (h + 2 * pad - k) / stride + 1; }
  size_t out_w() const { return (w + 2 * pad - k) / stride + 1; }
};

inline std::vector<double> conv2d(const ConvGeometry& g, std::span<const double> x,
                                  std::span<const double> weight, std::span<const double> bias,
                                  bool relu) {
  const size_t oh_n = g.out_h(), ow_n = g.out_w();
  std::vector<double> y(g.n * oh_n * ow_n * g.f, 0.0);
  for (size_t n = 0; n < g.n; ++n)
    for (size_t oh = 0; oh < oh_n; ++oh)
      for (size_t ow = 0; ow < ow_n; ++ow)
        for (size_t f = 0; f < g.f; ++f) {
          double s = bias.empty() ? 0.0 : bias[f];
          for (size_t kh = 0; kh < g.k; ++kh)
            for (size_t kw = 0; kw < g.k; ++kw) {
              const long ih = static_cast<long>(oh * g.stride + kh) - static_cast<long>(g.pad);
              const long iw = static_cast<long>(ow * g.stride + kw) - static_cast<long>(g.pad);
              if (ih < 0 || iw < 0 || ih >= static_cast<long>(g.h) ||
                  iw >= static_cast<long>(g.w))
                continue;
              for (size_t c = 0; c < g.c; ++c)
                s += x[((n * g.h + ih) * g.w + iw) * g.c + c] *
                     weight[((f * g.k + kh) * g.k + kw) * g.c + c];
            }
          y[((n * oh_n + oh) * ow_n + ow) * g.f + f] = relu && s < 0.0 ? 0.0 : s;
        }
  return y;
}

// Gradients of conv2d (no clamp; mask dy by the ReLU first) given dy = dLoss/dy [N,OH,OW,F].
struct ConvGrads {
  std::vector<double> dx, dweight, dbias;
};

inline ConvGrads conv2d_backward(const ConvGeometry& g, std::span<const double> x,
                                 std::span<const double> weight, std::span<const double> dy) {
  const size_t oh_n = g.out_h(), ow_n = g.out_w();
  ConvGrads r{std::vector<double>(x.size(), 0.0), std::vector<double>(weight.size(), 0.0),
              std::vector<double>(g.f, 0.0)};
  for (size_t n = 0; n < g.n; ++n)
    for (size_t oh = 0; oh < oh_n; ++oh)
      for (size_t ow = 0; ow < ow_n; ++ow)
        for (size_t f = 0; f < g.f; ++f) {
          const double d = dy[((n * oh_n + oh) * ow_n + ow) * g.f + f];
          r.dbias[f] += d;
          for (size_t kh = 0; kh < g.k; ++kh)
            for (size_t kw = 0; kw < g.k; ++kw) {
              const long ih = static_cast<long>(oh * g.stride + kh) - static_cast<long>(g.pad);
              const long iw = static_cast<long>(ow * g.stride + kw) - static_cast<long>(g.pad);
              if (ih < 0 || iw < 0 || ih >= static_cast<long>(g.h) ||
                  iw >= static_cast<long>(g.w))
                continue;
              for (size_t c = 0; c < g.c; ++c) {
                const size_t xi = ((n * g.h + ih) * g.w + iw) * g.c + c;
                const size_t wi = ((f * g.k + kh) * g.k + kw) * g.c + c;
                r.dweight[wi] += d * x[xi];
                r.dx[xi] += d * weight[wi];
              }
            }
        }
  return r;
}

// Fully connected: x [N,C] (any NHWC input flattened), weight [U,C], optional bias [U].
inline std::vector<double> dense(size_t batch, size_t in_features, size_t units,
                                 std::span<const double> x, std::span<const double> weight,
                                 std::span<const double> bias, bool relu) {
  std::vector<double> y(batch * units, 0.0);
  for (size_t n = 0; n < batch; ++n)
    for (size_t u = 0; u < units; ++u) {
      double s = bias.empty() ? 0.0 : bias[u];
      for (size_t c = 0; c < in_features; ++c) s += x[n * in_features + c] * weight[u * in_features + c];
      y[n * units + u] = relu && s < 0.0 ? 0.0 : s;
    }
  return y;
}

// ---- finite differences -----------------------------------------------------------------

// dLoss/dv[i] for every i by central differences of loss(v) = sum(f(v) * r), where f is a
// double-precision reference. Points where a ReLU kink lies within the step (some output of
// pre(v±eps) changes sign, pre being f without the clamp) are marked NaN and must be skipped.
template <class Fn, class PreFn>
std::vector<double> numeric_gradient(std::vector<double> v, std::span<const double> r, Fn f,
                                     PreFn pre, double eps) {
  std::vector<double> grad(v.size());
  auto loss = [&](const std::vector<double>& out) {
    double s = 0.0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * r[i];
    return s;
  };
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + eps;
    const std::vector<double> plus = f(v), pre_plus = pre(v);
    v[i] = keep - eps;
    const std::vector<double> minus = f(v), pre_minus = pre(v);
    v[i] = keep;
    bool kink = false;
    for (size_t j = 0; j < pre_plus.size() && !kink; ++j)
      kink = (pre_plus[j] > 0.0) != (pre_minus[j] > 0.0);
    grad[i] = kink ? NAN : (loss(plus) - loss(minus)) / (2.0 * eps);
  }
  return grad;
}

// Compares an analytic gradient with a numeric one, skipping NaN (kink) points. Empty on
// success; also fails when more than half the points had to be skipped.
inline std::string gradient_mismatch(std::span<const float> analytic,
                                     std::span<const double> numeric, double abs_tol,
                                     double rel_tol) {
  if (analytic.size() != numeric.size())
    return "size " + std::to_string(analytic.size()) + " != numeric size " +
           std::to_string(numeric.size());
  std::vector<float> got;
  std::vector<double> ref;
  for (size_t i = 0; i < numeric.size(); ++i)
    if (!std::isnan(numeric[i])) {
      got.push_back(analytic[i]);
      ref.push_back(numeric[i]);
    }
  if (ref.size() * 2 < numeric.size())
    return "only " + std::to_string(ref.size()) + " of " + std::to_string(numeric.size()) +
           " points away from ReLU kinks";
  return mismatch(got, ref, abs_tol, rel_tol);
}

}  // namespace nl::ref

// ---- pooling, normalisation and element-wise layers ---------------------------------------
// (layers_test.cpp, model_test.cpp). All in double; shapes NHWC / [rows, C].
namespace nl::ref {

// Square window, stride, symmetric padding. Output size floor((in + 2p - k) / s) + 1.
struct PoolGeometry {
  size_t n, h, w, c, k, stride, pad;
  size_t out_h() const { return (h + 2 * pad - k) / stride + 1; }
  size_t out_w() const { return (w + 2 * pad - k) / stride + 1; }
};

// Calls visit(out_index, in_index) for every input pixel/channel under every window;
// padded positions are skipped (they are not part of the input).
template <class Visit>
void for_each_window_element(const PoolGeometry& g, Visit visit) {
  const size_t oh_n = g.out_h(), ow_n = g.out_w();
  for (size_t n = 0; n < g.n; ++n)
    for (size_t oy = 0; oy < oh_n; ++oy)
      for (size_t ox = 0; ox < ow_n; ++ox)
        for (size_t ch = 0; ch < g.c; ++ch)
          for (size_t ky = 0; ky < g.k; ++ky)
            for (size_t kx = 0; kx < g.k; ++kx) {
              const long iy = static_cast<long>(oy * g.stride + ky) - static_cast<long>(g.pad);
              const long ix = static_cast<long>(ox * g.stride + kx) - static_cast<long>(g.pad);
              if (iy < 0 || ix < 0 || iy >= static_cast<long>(g.h) || ix >= static_cast<long>(g.w)) continue;
              visit(((n * oh_n + oy) * ow_n + ox) * g.c + ch,
                    ((n * g.h + static_cast<size_t>(iy)) * g.w + static_cast<size_t>(ix)) * g.c + ch);
            }
}

// Max over the input pixels of each window (padding never wins).
inline std::vector<double> max_pool(const PoolGeometry& g, std::span<const double> x) {
  std::vector<double> y(g.n * g.out_h() * g.out_w() * g.c, -INFINITY);
  for_each_window_element(g, [&](size_t o, size_t i) { y[o] = std::max(y[o], x[i]); });
  return y;
}

// Index of the first maximum of each window, in row-major window order (ties -> first).
inline std::vector<size_t> max_pool_argmax(const PoolGeometry& g, std::span<const double> x) {
  std::vector<size_t> at(g.n * g.out_h() * g.out_w() * g.c, SIZE_MAX);
  for_each_window_element(g, [&](size_t o, size_t i) {
    if (at[o] == SIZE_MAX || x[i] > x[at[o]]) at[o] = i;
  });
  return at;
}

// Mean over the input pixels each window covers: padded zeros do not count (XNNPACK's rule).
inline std::vector<double> avg_pool(const PoolGeometry& g, std::span<const double> x) {
  std::vector<double> sum(g.n * g.out_h() * g.out_w() * g.c, 0.0), count(sum.size(), 0.0);
  for_each_window_element(g, [&](size_t o, size_t i) {
    sum[o] += x[i];
    count[o] += 1.0;
  });
  for (size_t o = 0; o < sum.size(); ++o) sum[o] /= count[o];
  return sum;
}

// [N,H,W,C] -> [N,C].
inline std::vector<double> global_avg_pool(size_t n, size_t pixels, size_t c, std::span<const double> x) {
  std::vector<double> y(n * c, 0.0);
  for (size_t b = 0; b < n; ++b)
    for (size_t p = 0; p < pixels; ++p)
      for (size_t ch = 0; ch < c; ++ch) y[b * c + ch] += x[(b * pixels + p) * c + ch] / static_cast<double>(pixels);
  return y;
}

// Mirrors [N,H,W,C] left to right: y[n,y,x,c] = x[n,y,W-1-x,c].
inline std::vector<double> flip_width(size_t n, size_t h, size_t w, size_t c, std::span<const double> x) {
  std::vector<double> y(x.size());
  for (size_t b = 0; b < n; ++b)
    for (size_t row = 0; row < h; ++row)
      for (size_t col = 0; col < w; ++col)
        for (size_t ch = 0; ch < c; ++ch)
          y[((b * h + row) * w + col) * c + ch] = x[((b * h + row) * w + (w - 1 - col)) * c + ch];
  return y;
}

inline std::vector<double> relu(std::span<const double> x) {
  std::vector<double> y(x.begin(), x.end());
  for (double& v : y) v = v > 0.0 ? v : 0.0;
  return y;
}

inline std::vector<double> add(std::span<const double> a, std::span<const double> b, bool relu_after) {
  std::vector<double> y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    y[i] = a[i] + b[i];
    if (relu_after && y[i] < 0.0) y[i] = 0.0;
  }
  return y;
}

// Per-channel mean and biased variance over the rows of x [rows, C].
inline void channel_stats(size_t rows, size_t c, std::span<const double> x, std::vector<double>& mean,
                          std::vector<double>& var) {
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) mean[ch] += x[r * c + ch] / static_cast<double>(rows);
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) {
      const double d = x[r * c + ch] - mean[ch];
      var[ch] += d * d / static_cast<double>(rows);
    }
}

// y = gamma * (x - mean) / sqrt(var + eps) + beta with the given statistics.
inline std::vector<double> batch_norm(size_t rows, size_t c, std::span<const double> x,
                                      std::span<const double> gamma, std::span<const double> beta,
                                      std::span<const double> mean, std::span<const double> var, double eps) {
  std::vector<double> y(rows * c);
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch)
      y[r * c + ch] = gamma[ch] * (x[r * c + ch] - mean[ch]) / std::sqrt(var[ch] + eps) + beta[ch];
  return y;
}

// Training mode: the batch's own statistics.
inline std::vector<double> batch_norm_train(size_t rows, size_t c, std::span<const double> x,
                                            std::span<const double> gamma, std::span<const double> beta,
                                            double eps) {
  std::vector<double> mean, var;
  channel_stats(rows, c, x, mean, var);
  return batch_norm(rows, c, x, gamma, beta, mean, var, eps);
}

// Training-mode batch norm backward in closed form, given dy: dx, dgamma, dbeta.
struct BatchNormGrads {
  std::vector<double> dx, dgamma, dbeta;
};
inline BatchNormGrads batch_norm_train_backward(size_t rows, size_t c, std::span<const double> x,
                                                std::span<const double> gamma, std::span<const double> dy,
                                                double eps) {
  std::vector<double> mean, var;
  channel_stats(rows, c, x, mean, var);
  BatchNormGrads g{std::vector<double>(rows * c), std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) {
      const double xhat = (x[r * c + ch] - mean[ch]) / std::sqrt(var[ch] + eps);
      g.dbeta[ch] += dy[r * c + ch];
      g.dgamma[ch] += dy[r * c + ch] * xhat;
    }
  for (size_t r = 0; r < rows; ++r)
    for (size_t ch = 0; ch < c; ++ch) {
      const double inv_std = 1.0 / std::sqrt(var[ch] + eps);
      const double xhat = (x[r * c + ch] - mean[ch]) * inv_std;
      g.dx[r * c + ch] = gamma[ch] * inv_std *
                         (dy[r * c + ch] - g.dbeta[ch] / rows - xhat * g.dgamma[ch] / rows);
    }
  return g;
}

// Softmax over the last dimension of x [rows, C].
inline std::vector<double> softmax(size_t rows, size_t c, std::span<const double> x) {
  std::vector<double> y(rows * c);
  for (size_t r = 0; r < rows; ++r) {
    double m = -INFINITY, s = 0.0;
    for (size_t ch = 0; ch < c; ++ch) m = std::max(m, x[r * c + ch]);
    for (size_t ch = 0; ch < c; ++ch) s += std::exp(x[r * c + ch] - m);
    for (size_t ch = 0; ch < c; ++ch) y[r * c + ch] = std::exp(x[r * c + ch] - m) / s;
  }
  return y;
}

// Mean sparse categorical cross-entropy of logits [rows, C] against labels.
inline double cross_entropy(size_t rows, size_t c, std::span<const double> logits,
                            std::span<const size_t> labels) {
  double total = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    double m = -INFINITY, s = 0.0;
    for (size_t ch = 0; ch < c; ++ch) m = std::max(m, logits[r * c + ch]);
    for (size_t ch = 0; ch < c; ++ch) s += std::exp(logits[r * c + ch] - m);
    total += std::log(s) + m - logits[r * c + labels[r]];
  }
  return total / static_cast<double>(rows);
}

}  // namespace nl::ref
