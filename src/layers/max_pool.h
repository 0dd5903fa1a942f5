// Max pooling on XNNPACK's max_pooling2d_nhwc_f32. Padding never wins: XNNPACK takes the
// maximum over the window's input pixels only, as if padded positions were -infinity.
// Backward routes each output gradient to the first maximum of its window (row-major order
// within the window), so ties go to the earliest input position. Training forwards run our own
// loop instead, which keeps each output's winning position for backward; after an inference
// forward, backward finds the winners from the input.
#pragma once
#include <cstdint>
#include <vector>

#include "core/layer.h"

namespace nl {

class MaxPool : public Layer {
 public:
  explicit MaxPool(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  XnnOp op_;
  Shape planned_;  // input shape the operator is reshaped for
  std::vector<uint16_t> winners_;  // window position per output value (kernels up to 64x64 fit)
  Shape winners_shape_;           // its output shape; empty after any other forward
  pthreadpool_t pool_ = nullptr;
};

}  // namespace nl
