#include "layers/winograd.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nl {

namespace {

constexpr size_t kPositions = 16;  // a transformed 4x4 block
// Channels (or filters) transformed together: one AVX-512 vector, four SSE or wasm ones. The
// transforms run on small arrays of this width so that the compiler vectorises across them.
constexpr size_t kLanes = 16;

// u[ξ][0..count) = (Bᵀ d B)[ξ] for `count` channels, where d[i*4+j] points at the channels of
// input row i, column j of the block and
//   Bᵀ = [1  0 -1  0]
//        [0  1  1  0]
//        [0 -1  1  0]
//        [0  1  0 -1].
void transform_input(const float* const d[kPositions], float* const u[kPositions], size_t count) {
  for (size_t c0 = 0; c0 < count; c0 += kLanes) {
    const size_t lanes = std::min(kLanes, count - c0);
    float t[kPositions][kLanes];  // Bᵀ d
    for (size_t j = 0; j < 4; ++j)
      for (size_t l = 0; l < lanes; ++l) {
        const float d0 = d[j][c0 + l], d1 = d[4 + j][c0 + l];
        const float d2 = d[8 + j][c0 + l], d3 = d[12 + j][c0 + l];
        t[j][l] = d0 - d2;
        t[4 + j][l] = d1 + d2;
        t[8 + j][l] = d2 - d1;
        t[12 + j][l] = d1 - d3;
      }
    for (size_t i = 0; i < 4; ++i) {
      float* u0 = u[i * 4] + c0;
      float* u1 = u[i * 4 + 1] + c0;
      float* u2 = u[i * 4 + 2] + c0;
      float* u3 = u[i * 4 + 3] + c0;
      for (size_t l = 0; l < lanes; ++l) {
        const float t0 = t[i * 4][l], t1 = t[i * 4 + 1][l], t2 = t[i * 4 + 2][l], t3 = t[i * 4 + 3][l];
        u0[l] = t0 - t2;
        u1[l] = t1 + t2;
        u2[l] = t2 - t1;
        u3[l] = t1 - t3;
      }
    }
  }
}

// y[r*2+s][0..count) = (Aᵀ m A)[r][s] + bias, clamped at 0 when relu, for `count` filters,
// where m[ξ] points at position ξ's filters and
//   Aᵀ = [1 1  1  0]
//        [0 1 -1 -1].
// y[k] is written only where it is not nullptr (outputs past the bottom or right edge).
void transform_output(const float* const m[kPositions], const float* bias, bool relu,
                      float* const y[4], size_t count) {
  for (size_t f0 = 0; f0 < count; f0 += kLanes) {
    const size_t lanes = std::min(kLanes, count - f0);
    float t[8][kLanes];  // Aᵀ m
    for (size_t j = 0; j < 4; ++j)
      for (size_t l = 0; l < lanes; ++l) {
        const float m0 = m[j][f0 + l], m1 = m[4 + j][f0 + l];
        const float m2 = m[8 + j][f0 + l], m3 = m[12 + j][f0 + l];
        t[j][l] = m0 + m1 + m2;
        t[4 + j][l] = m1 - m2 - m3;
      }
    float out[4][kLanes];
    const float floor = relu ? 0.0f : -INFINITY;
    for (size_t r = 0; r < 2; ++r)
      for (size_t l = 0; l < lanes; ++l) {
        const float t0 = t[r * 4][l], t1 = t[r * 4 + 1][l], t2 = t[r * 4 + 2][l], t3 = t[r * 4 + 3][l];
        const float b = bias[f0 + l];
        out[r * 2][l] = std::max(t0 + t1 + t2 + b, floor);
        out[r * 2 + 1][l] = std::max(t1 - t2 - t3 + b, floor);
      }
    for (size_t k = 0; k < 4; ++k)
      if (y[k] != nullptr) std::copy(out[k], out[k] + lanes, y[k] + f0);
  }
}

}  // namespace

void WinogradConv3x3::create(const float* weight, const float* bias, size_t filters,
                             size_t channels, size_t padding, bool relu) {
  if (filters == 0 || channels == 0)
    throw std::invalid_argument("Winograd 3x3 convolution: filters (" + std::to_string(filters) +
                                ") and channels (" + std::to_string(channels) + ") must be at least 1");
  if (padding > 2)
    throw std::invalid_argument("Winograd 3x3 convolution: padding " + std::to_string(padding) +
                                " exceeds 2 (the kernel's reach)");
  // V_ξ = (G g Gᵀ)[ξ] for the 3x3 kernel g of each filter and channel, with
  //   G = [1    0    0 ]
  //       [1/2  1/2  1/2]
  //       [1/2 -1/2  1/2]
  //       [0    0    1 ],
  // stored [16][F][C] (each product's right operand as [N][K]: XNN_FLAG_TRANSPOSE_WEIGHTS), so
  // that for one filter the loop runs along contiguous channels on both sides and vectorises:
  // this runs once per model load (and per step when fine-tuning), on the page's cold path.
  std::vector<float> v(kPositions * filters * channels);
  const size_t c_count = channels, plane = filters * channels;  // one position's [F][C]
  for (size_t f = 0; f < filters; ++f) {
    const float* __restrict g = weight + f * 9 * c_count;  // tap ky*3+kx at g + (ky*3+kx)*C
    float* __restrict out = v.data() + f * c_count;         // position ξ at out + ξ*F*C
    for (size_t c = 0; c < c_count; ++c) {
      float t[4][3];  // G g
      for (size_t kx = 0; kx < 3; ++kx) {
        const float g0 = g[kx * c_count + c], g1 = g[(3 + kx) * c_count + c], g2 = g[(6 + kx) * c_count + c];
        t[0][kx] = g0;
        t[1][kx] = 0.5f * (g0 + g1 + g2);
        t[2][kx] = 0.5f * (g0 - g1 + g2);
        t[3][kx] = g2;
      }
      for (size_t i = 0; i < 4; ++i) {  // (G g) Gᵀ
        out[(i * 4) * plane + c] = t[i][0];
        out[(i * 4 + 1) * plane + c] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        out[(i * 4 + 2) * plane + c] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        out[(i * 4 + 3) * plane + c] = t[i][2];
      }
    }
  }
  xnn_operator_t op = nullptr;
  check_xnn(xnn_create_batch_matrix_multiply_nc_f32_const_weights(kPositions, channels, filters, v.data(),
                                                                  XNN_FLAG_TRANSPOSE_WEIGHTS, &op),
            "create batch_matrix_multiply_nc_f32 (Winograd 3x3 convolution)");
  gemm_.reset(op);
  bias_.assign(filters, 0.0f);
  if (bias != nullptr) std::copy(bias, bias + filters, bias_.begin());
  filters_ = filters;
  channels_ = channels;
  padding_ = padding;
  relu_ = relu;
  zeros_.assign(channels, 0.0f);
  blocks_ = 0;  // a fresh operator must be reshaped
}

void WinogradConv3x3::run(Runtime& rt, const Tensor& x, Tensor& out) {
  if (!gemm_) throw std::logic_error("Winograd 3x3 convolution run before create");
  const size_t c = channels_, f = filters_, p = padding_;
  if (x.rank() != 4 || x.dim(3) != c || x.dim(1) + 2 * p < 3 || x.dim(2) + 2 * p < 3)
    throw std::invalid_argument("Winograd 3x3 convolution: input " + to_string(x.shape()) +
                                " is not [N,H,W," + std::to_string(c) + "] with H and W + 2*padding " +
                                std::to_string(2 * p) + " at least 3");
  const size_t images = x.dim(0), h = x.dim(1), w = x.dim(2);
  const size_t oh = h + 2 * p - 2, ow = w + 2 * p - 2;
  if (out.shape() != Shape{images, oh, ow, f})
    throw std::invalid_argument("Winograd 3x3 convolution: output " + to_string(out.shape()) + " is not " +
                                to_string(Shape{images, oh, ow, f}));
  const size_t rows = (oh + 1) / 2, cols = (ow + 1) / 2;  // blocks per image, down and across
  const size_t blocks = images * rows * cols;
  if (blocks != blocks_ || rt.threadpool() != pool_) {
    const size_t batch[1] = {kPositions};
    workspace_bytes_ = 0;
    workspace_alignment_ = 1;
    check_xnn(xnn_reshape_batch_matrix_multiply_nc_f32(gemm_.get(), 1, batch, batch, blocks, c, f,
                                                       &workspace_bytes_, &workspace_alignment_,
                                                       rt.threadpool()),
              "reshape batch_matrix_multiply_nc_f32 (Winograd 3x3 convolution)");
    blocks_ = blocks;
    pool_ = rt.threadpool();
  }
  transformed_input_.reshape({kPositions, blocks, c});
  transformed_output_.reshape({kPositions, blocks, f});
  float* const u_all = transformed_input_.data();
  float* const m_all = transformed_output_.data();

  // One task per row of blocks: each reads four input rows and writes its blocks of U.
  parallel_for(rt, images * rows, [&](size_t task) {
    const size_t image = task / rows, by = task % rows;
    const float* d[kPositions];
    float* u[kPositions];
    for (size_t bx = 0; bx < cols; ++bx) {
      const size_t block = task * cols + bx;
      for (size_t i = 0; i < 4; ++i)
        for (size_t j = 0; j < 4; ++j) {
          // Input row and column of this tap, shifted by the padding (may fall outside).
          const size_t iy = 2 * by + i, ix = 2 * bx + j;
          const bool inside = iy >= p && iy - p < h && ix >= p && ix - p < w;
          d[i * 4 + j] = inside ? x.data() + ((image * h + iy - p) * w + ix - p) * c : zeros_.data();
        }
      for (size_t q = 0; q < kPositions; ++q) u[q] = u_all + (q * blocks + block) * c;
      transform_input(d, u, c);
    }
  });

  void* workspace = workspace_.get(workspace_bytes_, workspace_alignment_);
  check_xnn(xnn_setup_batch_matrix_multiply_nc_f32(gemm_.get(), workspace, u_all, /*input_b=*/nullptr, m_all),
            "setup batch_matrix_multiply_nc_f32 (Winograd 3x3 convolution)");
  check_xnn(xnn_run_operator(gemm_.get(), rt.threadpool()),
            "run batch_matrix_multiply_nc_f32 (Winograd 3x3 convolution)");

  parallel_for(rt, images * rows, [&](size_t task) {
    const size_t image = task / rows, by = task % rows;
    const float* m[kPositions];
    float* y[4];
    for (size_t bx = 0; bx < cols; ++bx) {
      const size_t block = task * cols + bx;
      for (size_t q = 0; q < kPositions; ++q) m[q] = m_all + (q * blocks + block) * f;
      for (size_t r = 0; r < 2; ++r)
        for (size_t s = 0; s < 2; ++s) {
          const size_t oy = 2 * by + r, ox = 2 * bx + s;
          y[r * 2 + s] = oy < oh && ox < ow ? out.data() + ((image * oh + oy) * ow + ox) * f : nullptr;
        }
      transform_output(m, bias_.data(), relu_, y, f);
    }
  });
}

}  // namespace nl
