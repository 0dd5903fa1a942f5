// Conv2D (type "conv2d"): square kernel, stride and symmetric zero padding over NHWC input.
// Params: weight [filters, kernel, kernel, in_channels] (XNNPACK's OHWI) and, unless
// spec.bias is false, bias [filters]. Optional fused ReLU (spec.activation).
//
// Forward: xnn_convolution2d_nhwc_f32, created (weights packed) when the parameters are
// dirty, reshaped when batch or spatial size change.
// Backward: im2col of the input (plain loops), then on XNNPACK (gemm.h)
//   dW += dYᵀ·cols,  dcols = dY·W,  and col2im scatter-add of dcols into dX;
// processed a few images at a time so the im2col buffer stays small.
#pragma once
#include "gemm.h"
#include "layer.h"

namespace nl {

class Conv2D : public Layer {
 public:
  // Throws std::invalid_argument when filters, kernel or stride is 0.
  explicit Conv2D(const LayerSpec& spec);

  Shape output_shape(const std::vector<Shape>& inputs) const override;
  void create_params(const std::vector<Shape>& inputs) override;
  void init_params(uint64_t seed) override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
               bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

 private:
  size_t in_channels() const;  // from the weight; 0 before create_params
  void create_operator();
  // The input columns of images [first, first+count) as rows [count*OH*OW, k*k*C].
  void im2col(const Tensor& x, size_t first, size_t count, float* cols) const;
  // Scatter-adds columns of images [first, first+count) into dx (already zeroed there).
  void col2im(const float* cols, size_t first, size_t count, Tensor& dx) const;
  bool is_pointwise() const;  // 1x1, stride 1, no padding: cols are the input itself

  XnnOp op_;
  size_t batch_ = 0, height_ = 0, width_ = 0;  // shape op_ is reshaped for
  size_t out_height_ = 0, out_width_ = 0;
  size_t workspace_bytes_ = 0, workspace_alignment_ = 1;
  Workspace workspace_;

  // Backward scratch, kept between steps to avoid re-allocation.
  Tensor masked_dout_;  // dY·[Y>0] for the fused ReLU
  Tensor cols_, dcols_;
  MatMul weight_grad_{MatMulForm::tn};  // dW[F,KK] += dY[M,F]ᵀ · cols[M,KK]
  MatMul input_grad_{MatMulForm::nn};   // dcols[M,KK] = dY[M,F] · W[F,KK]
};

}  // namespace nl
