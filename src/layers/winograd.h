// Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2015): a 3x3, stride-1 convolution over NHWC input computed per 2x2 block of outputs from
// the 4x4 block of (zero-padded) input under it,
//
//   Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
//
// with 16 multiplications per block, input channel and filter where direct convolution needs
// 36: 2.25x fewer. The sums over input channels at each of the 16 positions ξ of a
// transformed block are matrix products, M_ξ[blocks,F] = U_ξ[blocks,C] · V_ξ[C,F], run as one
// XNNPACK batch matrix multiply whose right operands (the transformed weights V) are packed
// once, like a convolution's weights. The transforms themselves are additions only.
//
//   WinogradConv3x3 conv;
//   conv.create(weight, bias, filters, channels, padding, /*relu=*/true);  // packs V
//   conv.run(rt, x, out);  // out shaped [N, H+2p-2, W+2p-2, F] by the caller
//
// Rounding differs from direct convolution by a few units in the last place of the partial
// sums (the transforms add and subtract inputs before multiplying); tests bound it against
// naive loops in double precision.
#pragma once
#include <cstddef>
#include <vector>

#include "core/gemm.h"
#include "core/runtime.h"
#include "core/tensor.h"

namespace nl {

class WinogradConv3x3 {
 public:
  // weight: [filters, 3, 3, channels] (OHWI), bias: [filters] or nullptr. The output is clamped
  // at 0 when relu is set. Throws std::invalid_argument when filters or channels is 0 or
  // padding exceeds 2 (every output would then see only padding at its border).
  void create(const float* weight, const float* bias, size_t filters, size_t channels,
              size_t padding, bool relu);
  bool created() const { return gemm_ != nullptr; }
  void reset() { gemm_.reset(); }

  // out[N, H+2p-2, W+2p-2, F] = the convolution of x[N, H, W, C]. out must already have that
  // shape (the caller validates shapes); x and out must not overlap.
  void run(Runtime& rt, const Tensor& x, Tensor& out);

 private:
  XnnOp gemm_;  // the 16 products [blocks,C]·[C,F], V packed
  std::vector<float> bias_;
  size_t filters_ = 0, channels_ = 0, padding_ = 0;
  bool relu_ = false;
  size_t blocks_ = 0;  // block count the product is reshaped for
  pthreadpool_t pool_ = nullptr;
  size_t workspace_bytes_ = 0, workspace_alignment_ = 1;
  Workspace workspace_;
  Tensor transformed_input_;   // U: [16, blocks, C]
  Tensor transformed_output_;  // M: [16, blocks, F]
  std::vector<float> zeros_;   // C zeros: the input row a block reads in the padding
};

}  // namespace nl
