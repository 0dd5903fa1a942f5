// Batch normalization over the last (channel) dimension of [N,H,W,C] or [N,C]:
//   y = gamma * (x - mean) / sqrt(var + epsilon) + beta.
// Training: mean and (biased) variance of the batch over N,H,W per channel; the running
// statistics move towards them with `momentum` (running_var towards the unbiased batch
// variance, as PyTorch does). Inference, and training while frozen: the running statistics.
// Per-channel element-wise loops over rows of C floats (they vectorise), on the thread pool in
// fixed blocks of rows; statistics are summed per block in float and across blocks in double,
// so they do not depend on the thread count. The model folds batch norm into its convolution
// for inference.
// Params: gamma, beta (trainable), running_mean, running_var (trainable = false), all [C].
#pragma once
#include <vector>

#include "core/layer.h"

namespace nl {

class BatchNorm : public Layer {
 public:
  explicit BatchNorm(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  std::vector<ParamShape> param_shapes(const std::vector<Shape>& inputs) const override;
  void init_params(uint64_t seed) override;
  double flops(const std::vector<Shape>& inputs) const override;
  bool can_fuse_relu() const override { return true; }
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

  // Recalibration (Layer): the batches' means and unbiased variances are averaged into the
  // running statistics. A frozen layer uses no batch statistics, so none come to average.
  bool begin_statistics_average() override;
  size_t end_statistics_average() override;
  void abandon_statistics_average() override { averaging_ = false; }

 private:
  Param& param(size_t i);
  // Statistics the last forward normalised with (batch ones in training, running ones
  // otherwise), kept for backward.
  std::vector<float> mean_, inv_std_;
  bool last_training_ = false;
  bool averaging_ = false;
  size_t averaged_batches_ = 0;
  std::vector<double> mean_sum_, var_sum_;
  Shape last_shape_;
  std::vector<double> partial_;  // per-task sums, kept between calls
};

}  // namespace nl
