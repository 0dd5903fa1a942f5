// Global average pooling [N,H,W,C] -> [N,C] on XNNPACK's reduce_nd (mean over axes 1 and 2);
// this XNNPACK version has no dedicated global-average-pooling operator.
//
// The operator is set up WITHOUT a workspace although reshape reports a size: in this version
// an f32 reduction given a workspace accumulates there and then calls a conversion kernel
// that only quantized types have (a null function pointer for f32). With no workspace it
// accumulates straight into the output, which is f32 anyway.
#pragma once
#include "core/layer.h"

namespace nl {

class GlobalAvgPool : public Layer {
 public:
  explicit GlobalAvgPool(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  XnnOp op_;
  Shape planned_;
  pthreadpool_t pool_ = nullptr;
};

}  // namespace nl
