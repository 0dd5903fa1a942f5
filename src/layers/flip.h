// Horizontal flip: mirrors an [N,H,W,C] input left to right, out[n,y,x,c] = in[n,y,W-1-x,c].
// No parameters, the same in inference and training. Backward mirrors the gradient the same
// way (the flip is its own inverse and its own transpose). A flip layer reading "input" in
// front of a branch makes test-time flip averaging part of the graph (features/ensemble.h:
// flip_averaged). Plain row copies: XNNPACK has no reverse operator, and there is no
// arithmetic to speed up.
#pragma once
#include "core/layer.h"

namespace nl {

// Mirrors x [N,H,W,C] left to right into y (same shape, not the same memory).
void mirror_width(const float* x, float* y, size_t n, size_t h, size_t w, size_t c);

class Flip : public Layer {
 public:
  explicit Flip(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;
};

}  // namespace nl
