// Residual add: out = a + b (same shapes), optionally followed by a fused ReLU.
// Forward is one plain loop (a + b, clamped at 0 when the ReLU is fused): XNNPACK's
// binary_elementwise_nd has no output clamp in this version, and add then clamp cost two passes.
// Backward passes dout to both inputs, masked by the ReLU when it is fused (in the spec, or by
// the model in training passes: set_fused_relu).
#pragma once
#include "core/layer.h"

namespace nl {

class Add : public Layer {
 public:
  explicit Add(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  bool can_fuse_relu() const override { return true; }
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;
};

}  // namespace nl
