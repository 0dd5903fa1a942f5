// Average pooling on XNNPACK's average_pooling2d_nhwc_f32.
//
// Padding semantics (matching XNNPACK): padded zeros do NOT count. Each output is the mean
// of the input pixels its window actually covers, so a 3x3 window at a corner with padding 1
// divides by 4, not 9. (XNNPACK switches to its "pixelwise" kernels whenever padding is
// non-zero for exactly this reason; without padding every window is whole.) The backward
// pass spreads each output gradient over the same pixels with the same divisor.
#pragma once
#include "core/gemm.h"  // Workspace
#include "core/layer.h"

namespace nl {

class AvgPool : public Layer {
 public:
  explicit AvgPool(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  XnnOp op_;
  Shape planned_;
  pthreadpool_t pool_ = nullptr;
  size_t workspace_bytes_ = 0, workspace_alignment_ = 1;
  Workspace workspace_;
};

}  // namespace nl
