// Conv2D (type "conv2d"): square kernel, stride and symmetric zero padding over NHWC input.
// Params: weight [filters, kernel, kernel, in_channels] (XNNPACK's OHWI) and, unless
// spec.bias is false, bias [filters]. Optional fused ReLU (spec.activation).
//
// Forward: xnn_convolution2d_nhwc_f32 (one per slice of output channels when the weights are
// large, see kConvSliceBytes), created (weights packed) when the parameters are dirty,
// reshaped when batch or spatial size change. A 3x3 stride-1 convolution runs as Winograd
// F(2x2, 3x3) instead (winograd.h) where that was measured faster: always in the WebAssembly
// builds, natively from 64 channels and 16 output blocks (uses_winograd).
// Backward:
//  - dX on XNNPACK's deconvolution (the transposed convolution) of dY with the same weights,
//    created (weights packed) when they change, like the forward operator; a pointwise
//    layer's dX is the product dY·W (gemm.h).
//  - dW by ConvWeightGradient (conv_weight_gradient.h): a register-tiled product that reads
//    the input in place (or a zero-padded, channel-major copy of it when the convolution pads),
//    without im2col (measured on resnet-s: see that header).
#pragma once
#include "core/gemm.h"
#include "core/layer.h"
#include "layers/conv_weight_gradient.h"
#include "layers/winograd.h"

namespace nl {

// The forward convolution is split into slices of output channels whose weights take at most
// this many bytes each. XNNPACK's convolution walks the output in tiles of a few pixels (7 on
// AVX-512) and, for each, streams the whole packed weight matrix: with the 5x5 and 10x10
// stages of resnet-s (M = 25 or 100 output pixels) and 1-2 MB of weights, each tile streamed
// them from beyond L2 again. Per slice, the weights are read from L3 once and from L2 by the
// remaining tiles. Measured on the shipped model (1 thread): s4b1_conv2 0.68 -> 0.63 ms.
inline constexpr size_t kConvSliceBytes = 256 * 1024;
// Slices hold a multiple of this many filters (XNNPACK's widest f32 tile, AVX-512's 32; a
// multiple of the narrower wasm and AVX2 tiles too), so no slice wastes part of a tile.
inline constexpr size_t kConvSliceFilterMultiple = 32;
// The filters per slice for a convolution with these filters and weights per filter (k*k*C)
// under budget_bytes: all of them when they fit, else equal slices rounded up to the multiple.
size_t conv_slice_filters(size_t filters, size_t weights_per_filter, size_t budget_bytes);

class Conv2D : public Layer {
 public:
  // Throws std::invalid_argument when filters, kernel or stride is 0.
  explicit Conv2D(const LayerSpec& spec);

  Shape output_shape(const std::vector<Shape>& inputs) const override;
  std::vector<ParamShape> param_shapes(const std::vector<Shape>& inputs) const override;
  void init_params(uint64_t seed) override;
  double flops(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out,
               bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;
  // The forward operators, and the input-gradient one when backward has used one before.
  void prepare_operators() override;

 private:
  size_t in_channels() const;  // from the weight; 0 before create_params
  void create_operator();
  void create_input_grad_operator();
  // dx (already shaped like the input) = the deconvolution of g (dY, out_shape).
  void input_gradient(Runtime& rt, const float* g, const Shape& out_shape, Tensor& dx);
  bool is_pointwise() const;  // 1x1, stride 1, no padding: the columns are the input pixels
  // Whether the forward pass on this input runs on winograd_ (3x3 stride 1, where measured
  // faster) rather than ops_.
  bool uses_winograd(const Shape& input) const;
  // Drops the packed weights when the parameters changed, then creates the forward operator
  // of the path asked for unless it exists.
  void refresh_operators(bool winograd);

  // The forward convolution as one operator per slice of output channels (slice_filters_
  // each, the last one possibly fewer), all reading the same input and writing their
  // channels of the same output. See create_operator for why.
  std::vector<XnnOp> ops_;
  WinogradConv3x3 winograd_;  // 3x3 stride 1: the forward pass instead of ops_
  bool last_forward_winograd_ = false;  // the path prepare_operators re-packs
  size_t slice_filters_ = 0;
  size_t batch_ = 0, height_ = 0, width_ = 0;  // shape ops_ are reshaped for
  size_t out_height_ = 0, out_width_ = 0;
  size_t workspace_bytes_ = 0, workspace_alignment_ = 1;
  Workspace workspace_;

  // Backward scratch, kept between steps to avoid re-allocation.
  Tensor masked_dout_;  // dY·[Y>0] for the fused ReLU
  ConvWeightGradient weight_grad_;
  MatMul pointwise_input_grad_{MatMulForm::nn};   // pointwise: dX[M,C] = dY[M,F] · W[F,C]
  XnnOp input_grad_op_;                           // the deconvolution giving dX
  bool input_grad_stale_ = true;                  // the forward operator was re-created since
  Shape input_grad_shape_;                        // dX shape input_grad_op_ is reshaped for
  pthreadpool_t input_grad_pool_ = nullptr;
  Tensor input_grad_weights_;                     // W as [C, k, k, F]
};

}  // namespace nl
