#include "layers/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>

#include "layers/layer_checks.h"

namespace nl {

namespace {
enum { kGamma, kBeta, kRunningMean, kRunningVar };
// In that order, each with its initial value: the identity transform, the standard
// initialisation (the seed is not needed).
struct Declared {
  const char* name;
  bool trainable;
  float initial;
};
constexpr Declared kParams[] = {
    {"gamma", true, 1.0f}, {"beta", true, 0.0f}, {"running_mean", false, 0.0f}, {"running_var", false, 1.0f}};
}  // namespace

BatchNorm::BatchNorm(const LayerSpec& spec) : Layer(spec) {
  if (!(spec_.epsilon > 0.0f) || !std::isfinite(spec_.epsilon))
    throw_layer_error(spec_, "epsilon must be a positive finite number, got " + std::to_string(spec_.epsilon));
  if (!(spec_.momentum >= 0.0f && spec_.momentum <= 1.0f))
    throw_layer_error(spec_, "momentum must be in [0, 1], got " + std::to_string(spec_.momentum));
}

Shape BatchNorm::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  const Shape& in = inputs[0];
  if (in.size() != 2 && in.size() != 4)
    throw_layer_error(spec_, "input must be [N,H,W,C] or [N,C], got " + to_string(in));
  expect_rank(spec_, in, in.size(), "input");
  if (!params_.empty() && in.back() != params_[kGamma].value.size())
    throw_layer_error(spec_, "input has " + std::to_string(in.back()) + " channels, parameters have " +
                                 std::to_string(params_[kGamma].value.size()));
  return in;
}

std::vector<ParamShape> BatchNorm::param_shapes(const std::vector<Shape>& inputs) const {
  const size_t c = output_shape(inputs).back();
  std::vector<ParamShape> shapes;
  for (const Declared& p : kParams) shapes.push_back({p.name, {c}, p.trainable, p.initial});
  return shapes;
}

void BatchNorm::init_params(uint64_t) {
  for (size_t i = 0; i < std::size(kParams); ++i) param(i).value.fill(kParams[i].initial);
}

Param& BatchNorm::param(size_t i) {
  if (params_.size() != 4) throw std::logic_error("layer '" + spec_.name + "' (batch_norm): parameters not created");
  return params_[i];
}

bool BatchNorm::begin_statistics_average() {
  const size_t c = param(kGamma).value.size();
  averaging_ = true;
  averaged_batches_ = 0;
  mean_sum_.assign(c, 0.0);
  var_sum_.assign(c, 0.0);
  return true;
}

size_t BatchNorm::end_statistics_average() {
  if (!averaging_) throw std::logic_error("layer '" + spec_.name + "' (batch_norm): statistics average not begun");
  averaging_ = false;
  const size_t batches = averaged_batches_;
  if (batches > 0) {
    float* running_mean = param(kRunningMean).value.data();
    float* running_var = param(kRunningVar).value.data();
    for (size_t ch = 0; ch < mean_sum_.size(); ++ch) {
      running_mean[ch] = static_cast<float>(mean_sum_[ch] / static_cast<double>(batches));
      running_var[ch] = static_cast<float>(var_sum_[ch] / static_cast<double>(batches));
    }
    params_changed();
  }
  return batches;
}

double BatchNorm::flops(const std::vector<Shape>& inputs) const {
  return 2.0 * static_cast<double>(numel(inputs.at(0)));  // a multiply and an add per element
}

namespace {

// The statistics' sums run over blocks of kBlockRows rows: a block sums in float (the loops
// over channels vectorise; 32 terms keep float's rounding near double's), the block sums are
// added in double. Tasks of kTaskRows rows run on the thread pool and their sums are added in
// task order; the partition depends only on the shape, so the result is the same bits on any
// number of threads.
constexpr size_t kBlockRows = 32;
constexpr size_t kTaskRows = 32 * kBlockRows;

size_t task_count(size_t rows) { return (rows + kTaskRows - 1) / kTaskRows; }

// out[i] (i < width) = the sum over rows r of what add_row(r, acc) adds to acc[i].
template <class AddRow>
void blocked_sums(Runtime& rt, size_t rows, size_t width, std::vector<double>& partial,
                  std::vector<double>& out, const AddRow& add_row) {
  const size_t tasks = task_count(rows);
  partial.assign(tasks * width, 0.0);
  parallel_for(rt, tasks, [&](size_t t) {
    std::vector<float> acc(width);
    double* sum = partial.data() + t * width;
    const size_t end = std::min(rows, (t + 1) * kTaskRows);
    for (size_t r0 = t * kTaskRows; r0 < end; r0 += kBlockRows) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const size_t r1 = std::min(end, r0 + kBlockRows);
      for (size_t r = r0; r < r1; ++r) add_row(r, acc.data());
      for (size_t i = 0; i < width; ++i) sum[i] += acc[i];
    }
  });
  out.assign(width, 0.0);
  for (size_t t = 0; t < tasks; ++t)
    for (size_t i = 0; i < width; ++i) out[i] += partial[t * width + i];
}

// f(r) for every row r, a task per kTaskRows rows (element-wise passes: rows are independent).
template <class RowFn>
void for_rows(Runtime& rt, size_t rows, const RowFn& f) {
  parallel_for(rt, task_count(rows), [&](size_t t) {
    const size_t end = std::min(rows, (t + 1) * kTaskRows);
    for (size_t r = t * kTaskRows; r < end; ++r) f(r);
  });
}

}  // namespace

void BatchNorm::forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) {
  const Tensor& x = *in.at(0);
  const Shape shape = output_shape({x.shape()});
  const size_t c = shape.back(), rows = x.size() / c;
  float* gamma = param(kGamma).value.data();
  float* beta = param(kBeta).value.data();
  float* running_mean = param(kRunningMean).value.data();
  float* running_var = param(kRunningVar).value.data();
  mean_.assign(c, 0.0f);
  inv_std_.assign(c, 0.0f);
  // A frozen layer (fine-tuning the layers after it) keeps the statistics it learnt, as in
  // Keras: a few user images must not shift them, and its output becomes a fixed function.
  const bool batch_statistics = training && !frozen;
  if (batch_statistics) {
    // One pass: the sums of d = x - centre and of d^2, with centre the channel's mean over 32
    // rows spread through the batch. Centred near the mean, the variance E[d^2] - E[d]^2 loses
    // to cancellation only in proportion to (mean - centre)^2 / var; a second pass for the
    // centred squares read the whole input again (26 MB per step in resnet-s's stem).
    const float* xd = x.data();
    std::vector<float> centre(c, 0.0f);
    const size_t samples = std::min(rows, kBlockRows);
    for (size_t i = 0; i < samples; ++i) {
      const float* xr = xd + (i * rows / samples) * c;
      for (size_t ch = 0; ch < c; ++ch) centre[ch] += xr[ch];
    }
    for (size_t ch = 0; ch < c; ++ch) centre[ch] /= static_cast<float>(samples);
    const float* k = centre.data();
    std::vector<double> sums;
    blocked_sums(rt, rows, 2 * c, partial_, sums, [&](size_t r, float* acc) {
      const float* xr = xd + r * c;
      float* acc_sq = acc + c;
      for (size_t ch = 0; ch < c; ++ch) {
        const float d = xr[ch] - k[ch];
        acc[ch] += d;
        acc_sq[ch] += d * d;
      }
    });
    std::vector<double> sum(c), sq(c);  // sum: the mean; sq: the centred sum of squares
    for (size_t ch = 0; ch < c; ++ch) {
      const double mean_d = sums[ch] / static_cast<double>(rows);
      sum[ch] = centre[ch] + mean_d;
      sq[ch] = std::max(0.0, sums[c + ch] - mean_d * sums[ch]);
      mean_[ch] = static_cast<float>(sum[ch]);
    }
    const double m = spec_.momentum;
    for (size_t ch = 0; ch < c; ++ch) {
      const double var = sq[ch] / static_cast<double>(rows);
      const double unbiased = rows > 1 ? sq[ch] / static_cast<double>(rows - 1) : var;
      inv_std_[ch] = static_cast<float>(1.0 / std::sqrt(var + spec_.epsilon));
      if (averaging_) {
        mean_sum_[ch] += sum[ch];
        var_sum_[ch] += unbiased;
      } else {
        running_mean[ch] = static_cast<float>((1.0 - m) * running_mean[ch] + m * sum[ch]);
        running_var[ch] = static_cast<float>((1.0 - m) * running_var[ch] + m * unbiased);
      }
    }
    averaged_batches_ += averaging_ ? 1 : 0;
  } else {
    for (size_t ch = 0; ch < c; ++ch) {
      mean_[ch] = running_mean[ch];
      inv_std_[ch] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[ch]) + spec_.epsilon));
    }
  }
  // y = x * scale + shift per channel.
  std::vector<float> scale(c), shift(c);
  for (size_t ch = 0; ch < c; ++ch) {
    scale[ch] = gamma[ch] * inv_std_[ch];
    shift[ch] = beta[ch] - mean_[ch] * scale[ch];
  }
  out.reshape(shape);
  const float* xd = x.data();
  float* yd = out.data();
  const float* sc = scale.data();
  const float* sh = shift.data();
  const bool relu = fused_relu_;
  for_rows(rt, rows, [&](size_t r) {
    const float* xr = xd + r * c;
    float* yr = yd + r * c;
    if (relu)
      for (size_t ch = 0; ch < c; ++ch) yr[ch] = std::max(xr[ch] * sc[ch] + sh[ch], 0.0f);
    else
      for (size_t ch = 0; ch < c; ++ch) yr[ch] = xr[ch] * sc[ch] + sh[ch];
  });
  last_training_ = batch_statistics;
  last_shape_ = shape;
}

void BatchNorm::backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                         const Tensor& dout, const std::vector<Tensor*>& din) {
  const Tensor& x = *in.at(0);
  expect_shape(spec_, x.shape(), last_shape_, "input (compared with the last forward)");
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  const size_t c = x.shape().back(), rows = x.size() / c;
  const float* gamma = param(kGamma).value.data();
  const float* xd = x.data();
  const float* gd = dout.data();
  const float* mean = mean_.data();
  const float* inv_std = inv_std_.data();
  const bool want_dx = !din.empty() && din[0] != nullptr;
  // With the ReLU fused (set_fused_relu), out is its output and dout its gradient: the
  // gradient at this layer's own output is dout where out > 0, else 0. Read so in each pass
  // below rather than written out first (that pass was the ReLU's backward).
  const bool relu = fused_relu_;
  const float* yd = out.data();
  // Per channel: sum(dy) and sum(dy * x_hat), with x_hat = (x - mean) * inv_std; the latter
  // summed as sum(dy * (x - mean)) and scaled once. Not needed by a frozen layer's inference
  // statistics (constants).
  std::vector<double> sums;
  if (!frozen || (want_dx && last_training_)) {
    blocked_sums(rt, rows, 2 * c, partial_, sums, [&](size_t r, float* acc) {
      const float* xr = xd + r * c;
      const float* gr = gd + r * c;
      const float* yr = yd + r * c;
      float* acc_dy_xc = acc + c;
      for (size_t ch = 0; ch < c; ++ch) {
        const float g = gr[ch], y = relu ? yr[ch] : 1.0f;  // loaded unconditionally: it vectorises
        const float dy = y > 0.0f ? g : 0.0f;
        acc[ch] += dy;
        acc_dy_xc[ch] += dy * (xr[ch] - mean[ch]);
      }
    });
    for (size_t ch = 0; ch < c; ++ch) sums[c + ch] *= inv_std[ch];
  }
  const double* sum_dy = sums.data();
  const double* sum_dy_xhat = sums.data() + c;
  if (!frozen) {
    float* dgamma = param(kGamma).gradient().data();
    float* dbeta = param(kBeta).gradient().data();
    for (size_t ch = 0; ch < c; ++ch) {
      dgamma[ch] += static_cast<float>(sum_dy_xhat[ch]);
      dbeta[ch] += static_cast<float>(sum_dy[ch]);
    }
  }
  if (!want_dx) return;
  Tensor& dx = *din[0];
  dx.reshape(x.shape());
  float* dxd = dx.data();
  if (last_training_) {
    // Through the batch statistics:
    //   dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
    //      = k * (dy - mean(dy) - (x - mean) * q),  q = inv_std * mean(dy * x_hat).
    const double inv_rows = 1.0 / static_cast<double>(rows);
    std::vector<float> k(c), mean_dy(c), q(c);
    for (size_t ch = 0; ch < c; ++ch) {
      k[ch] = gamma[ch] * inv_std[ch];
      mean_dy[ch] = static_cast<float>(sum_dy[ch] * inv_rows);
      q[ch] = static_cast<float>(inv_std[ch] * sum_dy_xhat[ch] * inv_rows);
    }
    const float* kp = k.data();
    const float* mdy = mean_dy.data();
    const float* qp = q.data();
    for_rows(rt, rows, [&](size_t r) {
      const float* xr = xd + r * c;
      const float* gr = gd + r * c;
      const float* yr = yd + r * c;
      float* dr = dxd + r * c;
      for (size_t ch = 0; ch < c; ++ch) {
        const float g = gr[ch], y = relu ? yr[ch] : 1.0f;
        const float dy = y > 0.0f ? g : 0.0f;
        dr[ch] = kp[ch] * (dy - mdy[ch] - (xr[ch] - mean[ch]) * qp[ch]);
      }
    });
  } else {
    // Inference statistics are constants: dx = gamma * inv_std * dy.
    std::vector<float> k(c);
    for (size_t ch = 0; ch < c; ++ch) k[ch] = gamma[ch] * inv_std[ch];
    const float* kp = k.data();
    for_rows(rt, rows, [&](size_t r) {
      const float* gr = gd + r * c;
      const float* yr = yd + r * c;
      float* dr = dxd + r * c;
      for (size_t ch = 0; ch < c; ++ch) {
        const float g = gr[ch], y = relu ? yr[ch] : 1.0f;
        dr[ch] = y > 0.0f ? kp[ch] * g : 0.0f;
      }
    });
  }
}

}  // namespace nl
