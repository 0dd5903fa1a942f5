// Dense (type "dense"): fully connected, y = x·Wᵀ + b, optional fused ReLU.
// Input [N,C] or [N,H,W,C] (flattened in NHWC order, so in_features = H*W*C).
// Params: weight [units, in_features] (XNNPACK's fully-connected layout), bias [units]
// unless spec.bias is false.
//
// Forward: xnn_fully_connected_nc_f32, created (weights packed) when the parameters are
// dirty, reshaped when the batch size changes.
// Backward on XNNPACK (gemm.h): dW += dYᵀ·X, dX = dY·W; db += column sums of dY.
#pragma once
#include "core/gemm.h"
#include "core/layer.h"

namespace nl {

class Dense : public Layer {
 public:
  // Throws std::invalid_argument when units is 0.
  explicit Dense(const LayerSpec& spec);

  Shape output_shape(const std::vector<Shape>& inputs) const override;
  std::vector<ParamShape> param_shapes(const std::vector<Shape>& inputs) const override;
  void init_params(uint64_t seed) override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
               bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  size_t in_features() const;  // from the weight; 0 before create_params
  void create_operator();

  XnnOp op_;
  size_t batch_ = 0;  // batch size op_ is reshaped for

  Tensor masked_dout_;                  // dY·[Y>0] for the fused ReLU
  MatMul weight_grad_{MatMulForm::tn};  // dW[U,C] += dY[N,U]ᵀ · X[N,C]
  MatMul input_grad_{MatMulForm::nn};   // dX[N,C] = dY[N,U] · W[U,C]
};

}  // namespace nl
