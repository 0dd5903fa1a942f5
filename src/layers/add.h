// Residual add: out = a + b (same shapes), optionally followed by a fused ReLU.
// Forward on XNNPACK's binary_elementwise_nd (xnn_binary_add); that operator has no output
// clamp in this version, so the fused ReLU is an in-place xnn clamp afterwards.
// Backward passes dout to both inputs, masked by the ReLU when it is fused.
#pragma once
#include "core/layer.h"
#include "layers/relu.h"

namespace nl {

class Add : public Layer {
 public:
  explicit Add(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  XnnOp op_;
  Shape planned_;
  pthreadpool_t pool_ = nullptr;
  ReluOp relu_;
};

}  // namespace nl
