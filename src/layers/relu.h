// ReLU: out = max(in, 0) on XNNPACK's clamp operator with bounds [0, +inf).
#pragma once
#include "core/layer.h"

namespace nl {

// A cached xnn unary clamp [0, +inf) over a flat float array; also used for the fused
// ReLU of layers whose XNNPACK operator has no output clamp (add). In-place is allowed.
class ReluOp {
 public:
  void run(Runtime& rt, const float* in, float* out, size_t count);

 private:
  XnnOp op_;
  size_t count_ = 0;
  pthreadpool_t pool_ = nullptr;
};

// dx = dy where y > 0, else 0 (the kink at 0 gets gradient 0). `out` is the ReLU's output.
// Also the backward mask of the ReLU fused into conv2d and dense.
void relu_backward(const float* out, const float* dout, float* din, size_t count);
// The same on the runtime's threads, in fixed chunks.
void relu_backward(Runtime& rt, const float* out, const float* dout, float* din, size_t count);

class ReLU : public Layer {
 public:
  explicit ReLU(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  ReluOp relu_;
};

}  // namespace nl
