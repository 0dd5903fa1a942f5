// A convolution's weight gradient, summed from the input in place (no im2col).
//
//   nl::ConvWeightGradient wg;
//   wg.accumulate(rt, x, dy, {kernel, stride, padding}, filters, dw);  // dw += dL/dW
//
// dW[f, kh, kw, c] = Σ over images n and output positions (oy, ox) of
//   dY[n, oy, ox, f] · x[n, oy*s + kh - p, ox*s + kw - p, c]   (zero outside the image).
// Seen as a matrix product dWᵀ[k*k*C, F] = colsᵀ · dY, each row of colsᵀ (a tap and a channel)
// is one channel of the input read from the tap's offset, one float every s pixels. So a
// register-tiled kernel (a few rows of dWᵀ by two SIMD vectors of filters) reads those rows in
// place: no im2col matrix (9x the input for a 3x3 kernel), no packing of dY. The input is read
// as it is (NHWC) when the convolution does not pad, else from a zero-padded channel-major copy. The kernel is compiled for AVX-512, AVX2+FMA and
// plain SIMD (SSE2 / WebAssembly SIMD128) and picked for the CPU at run time.
//
// Measured on resnet-s (batch 32, 160 px, 2 threads, `neurolens bench-train --profile`), the
// convolutions' backward passes summed: 66.9-69.4 ms per step with im2col and XNNPACK's
// product (im2col alone about 12 ms) -> 57.4 ms.
//
// The work is split into blocks of output lines by columns of 32 filters, each block's sums
// kept apart and added in block order: the partition depends only on the shapes, so the
// result is the same bits on any number of threads.
#pragma once
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/runtime.h"
#include "core/tensor.h"

namespace nl {

struct ConvWindow {
  size_t kernel = 1, stride = 1, padding = 0;
};

struct ConvWeightGradientJob;  // one call's geometry and buffers (conv_weight_gradient.cpp)

class ConvWeightGradient {
 public:
  // The instruction sets this CPU runs the kernel in, fastest first: "avx512f" and "avx2+fma"
  // on x86-64, then "simd128" (SSE2 on x86-64; WebAssembly SIMD128, or scalar code in a
  // WebAssembly build without SIMD).
  static std::vector<std::string> instruction_sets();
  // Uses the kernel for instruction_set (empty: the first of instruction_sets()). Throws
  // std::invalid_argument naming it and the available ones when this CPU cannot run it.
  explicit ConvWeightGradient(std::string_view instruction_set = {});

  // dw [filters, k, k, C] += the weight gradient for input x [N,H,W,C] and output gradient
  // dy [N,OH,OW,filters] (OH, OW as the window gives them). The caller checks the shapes.
  void accumulate(Runtime& rt, const Tensor& x, const float* dy, const ConvWindow& window,
                  size_t filters, float* dw);

 private:
  void (*block_sum_)(const ConvWeightGradientJob&, size_t block, size_t j_begin, size_t j_end);
  Tensor planes_;                          // padding: a chunk of images as [C][image][H + 2p][W + 2p]
  std::array<size_t, 4> planes_layout_{};  // {C, images, H + 2p, W + 2p} of planes_
  std::vector<size_t> row_offset_;         // per row of dWᵀ: its first read in an image
  std::vector<float> block_sums_;   // per block of output lines: its dWᵀ [k*k*C, F]
};

}  // namespace nl
