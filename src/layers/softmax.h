// Softmax over the last dimension on XNNPACK's softmax_nc_f32.
// Backward: the Jacobian-vector product dx = y * (dy - sum(dy * y)) per row.
#pragma once
#include "core/layer.h"

namespace nl {

class Softmax : public Layer {
 public:
  explicit Softmax(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  XnnOp op_;
  size_t rows_ = 0, channels_ = 0;
  pthreadpool_t pool_ = nullptr;
};

}  // namespace nl
