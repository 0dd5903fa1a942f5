// ConvWeightGradient (see the header): the tiled kernel for each instruction set, the
// zero-padded copy of the input it reads when the convolution pads, and the sum of the blocks.
#include "layers/conv_weight_gradient.h"

#include "core/cpu_clones.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nl {

namespace {

// A padding convolution's images are copied this many floats at a time at most (16 MB), whole
// images per chunk: big batches of big images would otherwise need another copy of the input.
constexpr size_t kPaddedBudgetFloats = size_t{1} << 22;
// A block is whole output lines, about this many output positions: its slice of dY (positions
// by 32 filters, 128 kB) stays in L2 while every row of dWᵀ is summed over it.
constexpr size_t kBlockPositions = 1024;
// Columns of dWᵀ (filters) per task: a multiple of every kernel's two-vector width (8, 16 and
// 32 floats), so that no task splits a tile and the partition is the same on every CPU.
constexpr size_t kTaskFilters = 32;

}  // namespace

// Output position (n, oy, ox) reads, for row i of dWᵀ (a tap and a channel), the input float
// input[n * image_stride + oy * line_stride + row_offset[i] + ox * position_step]: an NHWC input
// (zero-padded when the convolution pads) read in place.
struct ConvWeightGradientJob {
  const float* input;
  const size_t* row_offset;
  size_t image_stride, line_stride, position_step;
  const float* dy;          // the chunk's output gradient [image][out_h][out_w][filters]
  size_t filters, out_h, out_w;
  size_t rows;              // rows of dWᵀ: k*k*C
  size_t lines, lines_per_block;
  float* block_sums;        // per block: dWᵀ [rows, filters]
};

namespace {

using Job = ConvWeightGradientJob;

// Rows [i0, i0+Taps) by columns [j, j + Vecs*lanes) of dWᵀ, summed over output lines
// [line0, line1) into out (the block's dWᵀ). The sums stay in registers (Taps*Vecs vectors);
// each output position loads Vecs vectors of dY and broadcasts one input value per row.
// Inlined into each instruction set's version, so compiled for it.
template <class Vec, size_t Taps, size_t Vecs>
[[gnu::always_inline]] inline void tile(const Job& job, size_t line0, size_t line1, size_t i0, size_t j,
                                        float* out) {
  constexpr size_t kLanes = sizeof(Vec) / sizeof(float);
  const size_t f = job.filters, ow = job.out_w, s = job.position_step;
  Vec acc[Taps][Vecs] = {};
  for (size_t line = line0; line < line1; ++line) {
    const size_t n = line / job.out_h, oy = line % job.out_h;
    const float* base = job.input + n * job.image_stride + oy * job.line_stride;
    const float* a[Taps];
    for (size_t q = 0; q < Taps; ++q) a[q] = base + job.row_offset[i0 + q];
    const float* g = job.dy + line * ow * f + j;
    for (size_t ox = 0, ix = 0; ox < ow; ++ox, ix += s, g += f) {
      Vec b[Vecs];
      for (size_t v = 0; v < Vecs; ++v) std::memcpy(&b[v], g + v * kLanes, sizeof(Vec));
      for (size_t q = 0; q < Taps; ++q) {
        const float x = a[q][ix];
        for (size_t v = 0; v < Vecs; ++v) acc[q][v] += x * b[v];
      }
    }
  }
  for (size_t q = 0; q < Taps; ++q)
    for (size_t v = 0; v < Vecs; ++v)
      std::memcpy(out + (i0 + q) * f + j + v * kLanes, &acc[q][v], sizeof(Vec));
}

// The last rows of dWᵀ when there are fewer than a whole tile of them (remaining < Taps + 1).
template <class Vec, size_t Taps, size_t Vecs>
[[gnu::always_inline]] inline void last_rows(const Job& job, size_t line0, size_t line1, size_t i0, size_t j,
                                             float* out, size_t remaining) {
  if constexpr (Taps > 0) {
    if (remaining == Taps)
      tile<Vec, Taps, Vecs>(job, line0, line1, i0, j, out);
    else
      last_rows<Vec, Taps - 1, Vecs>(job, line0, line1, i0, j, out, remaining);
  }
}

// Every row of dWᵀ for columns [j, j + Vecs*lanes). (Sharing the rows of a short last tile
// evenly with the one before, 5 + 4 rather than 7 + 2 for a first layer's 9 rows, measured no
// faster: that layer's time is reading dY.)
template <class Vec, size_t Taps, size_t Vecs>
[[gnu::always_inline]] inline void column(const Job& job, size_t line0, size_t line1, size_t j, float* out) {
  size_t i0 = 0;
  for (; i0 + Taps <= job.rows; i0 += Taps) tile<Vec, Taps, Vecs>(job, line0, line1, i0, j, out);
  last_rows<Vec, Taps - 1, Vecs>(job, line0, line1, i0, j, out, job.rows - i0);
}

// One task: a block of output lines by the columns [j_begin, j_end) of dWᵀ, in tiles two
// vectors wide, then one vector, then single filters.
template <class Vec, size_t Taps>
[[gnu::always_inline]] inline void block_sum(const Job& job, size_t block, size_t j_begin, size_t j_end) {
  constexpr size_t kLanes = sizeof(Vec) / sizeof(float);
  const size_t line0 = block * job.lines_per_block;
  const size_t line1 = std::min(job.lines, line0 + job.lines_per_block);
  float* out = job.block_sums + block * job.rows * job.filters;
  size_t j = j_begin;
  for (; j + 2 * kLanes <= j_end; j += 2 * kLanes) column<Vec, Taps, 2>(job, line0, line1, j, out);
  for (; j + kLanes <= j_end; j += kLanes) column<Vec, Taps, 1>(job, line0, line1, j, out);
  for (; j < j_end; ++j) column<float, Taps, 1>(job, line0, line1, j, out);
}

// GCC/Clang vector extensions; the tile sizes fill each instruction set's registers without
// spilling: AVX-512 7 rows x 2 x 16 filters in 14 of 32 registers (the shape of XNNPACK's
// 7x32 kernel); AVX2 6 rows x 2 vectors in 12 of 16. 128-bit SIMD takes 4 rows x 2 vectors:
// WebAssembly has no fused multiply-add, so each product needs a temporary register too, and
// V8 keeps one of x86's 16 for itself; 6 rows spilled (Node, one thread, batch 32: s1's
// weight gradient 35.3 -> 22.2 ms, s3's 34.0 -> 24.1 ms, s4's 35.3 -> 28.8 ms).
using Vec4 = float __attribute__((vector_size(16)));
void block_sum_simd128(const Job& job, size_t block, size_t j_begin, size_t j_end) {
  block_sum<Vec4, 4>(job, block, j_begin, j_end);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__wasm__)
using Vec8 = float __attribute__((vector_size(32)));
using Vec16 = float __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"))) void block_sum_avx2(const Job& job, size_t block, size_t j_begin,
                                                        size_t j_end) {
  block_sum<Vec8, 6>(job, block, j_begin, j_end);
}
__attribute__((target("avx512f"))) void block_sum_avx512(const Job& job, size_t block, size_t j_begin,
                                                         size_t j_end) {
  block_sum<Vec16, 7>(job, block, j_begin, j_end);
}
#endif

struct Kernel {
  const char* instruction_set;
  void (*block_sum)(const Job&, size_t, size_t, size_t);
};

// Those this CPU runs, fastest first.
std::vector<Kernel> kernels_for_this_cpu() {
  std::vector<Kernel> kernels;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__wasm__)
  if (__builtin_cpu_supports("avx512f")) kernels.push_back({"avx512f", block_sum_avx512});
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) kernels.push_back({"avx2+fma", block_sum_avx2});
#endif
  kernels.push_back({"simd128", block_sum_simd128});
  return kernels;
}

// planes[ch][n][y + p][x + p] = the chunk's image n at (y, x), channel ch, for every pixel of
// the image; the border of p around each image is not written (the caller zeroes it once).
// Eight pixels at a time per channel: eight loads strided by C and one vector store.
NL_CPU_CLONES void fill_plane_rows(const float* image, size_t rows, size_t w, size_t c, size_t p,
                                   size_t channel_floats, float* planes) {
  const size_t wp = w + 2 * p;
  for (size_t y = 0; y < rows; ++y) {
    const float* src = image + y * w * c;
    float* row = planes + (y + p) * wp + p;
    size_t x0 = 0;
    for (; x0 + 8 <= w; x0 += 8)
      for (size_t ch = 0; ch < c; ++ch) {
        float v[8];
        for (size_t i = 0; i < 8; ++i) v[i] = src[(x0 + i) * c + ch];
        std::memcpy(row + ch * channel_floats + x0, v, sizeof v);
      }
    for (; x0 < w; ++x0)
      for (size_t ch = 0; ch < c; ++ch) row[ch * channel_floats + x0] = src[x0 * c + ch];
  }
}

}  // namespace

std::vector<std::string> ConvWeightGradient::instruction_sets() {
  std::vector<std::string> names;
  for (const Kernel& kernel : kernels_for_this_cpu()) names.push_back(kernel.instruction_set);
  return names;
}

ConvWeightGradient::ConvWeightGradient(std::string_view instruction_set) {
  const std::vector<Kernel> kernels = kernels_for_this_cpu();
  if (instruction_set.empty()) {
    block_sum_ = kernels.front().block_sum;
    return;
  }
  std::string available;
  for (const Kernel& kernel : kernels) {
    if (kernel.instruction_set == instruction_set) {
      block_sum_ = kernel.block_sum;
      return;
    }
    available += (available.empty() ? "" : ", ") + std::string(kernel.instruction_set);
  }
  throw std::invalid_argument("convolution weight gradient: this CPU cannot run the " +
                              std::string(instruction_set) + " kernel (it runs: " + available + ")");
}

void ConvWeightGradient::accumulate(Runtime& rt, const Tensor& x, const float* dy, const ConvWindow& window,
                                    size_t filters, float* dw) {
  const size_t batch = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  const size_t k = window.kernel, s = window.stride, p = window.padding, f = filters;
  const size_t hp = h + 2 * p, wp = w + 2 * p;
  const size_t oh = (hp - k) / s + 1, ow = (wp - k) / s + 1;
  const size_t rows = k * k * c;
  // Without padding, the input is read as it is (NHWC). With padding, from a copy with a zero
  // border (whole images at a time, up to the budget), so that every output line reads the same
  // way (testing each pixel against the image's edges made lines of 5-20 positions twice as
  // slow), and channel-major: a tile's rows (one tap's neighbouring channels) are then read as
  // separate sequential streams, where NHWC read a strided cache line for each position, which
  // was up to 1.5x slower from 64 channels on.
  const size_t image_floats = p == 0 ? h * w * c : hp * wp;
  const size_t images_per_chunk =
      p == 0 ? batch : std::clamp<size_t>(kPaddedBudgetFloats / (image_floats * c), 1, batch);
  const size_t lines_per_block = std::max<size_t>(1, kBlockPositions / ow);
  const size_t column_tasks = (f + kTaskFilters - 1) / kTaskFilters;
  row_offset_.resize(rows);
  for (size_t first = 0; first < batch; first += images_per_chunk) {
    const size_t count = std::min(images_per_chunk, batch - first);
    const float* input = x.data() + first * h * w * c;
    // Where a tap (kh, kw) and channel ch start in an image: NHWC steps, or the planes'.
    size_t channel_step = 1, row_step = w * c, column_step = c;
    if (p > 0) {
      const size_t channel_floats = count * image_floats;
      const std::array<size_t, 4> layout{c, count, hp, wp};
      if (layout != planes_layout_) {  // zero the borders, which the calls after do not write
        planes_.reshape({c, channel_floats});
        planes_.fill(0.0f);
        planes_layout_ = layout;
      }
      parallel_for(rt, count, [&](size_t n) {
        fill_plane_rows(input + n * h * w * c, h, w, c, p, channel_floats, planes_.data() + n * image_floats);
      });
      input = planes_.data();
      channel_step = channel_floats;
      row_step = wp;
      column_step = 1;
    }
    for (size_t kh = 0; kh < k; ++kh)
      for (size_t kw = 0; kw < k; ++kw)
        for (size_t ch = 0; ch < c; ++ch)
          row_offset_[(kh * k + kw) * c + ch] = ch * channel_step + kh * row_step + kw * column_step;
    const size_t lines = count * oh, blocks = (lines + lines_per_block - 1) / lines_per_block;
    block_sums_.resize(blocks * rows * f);
    const Job job{input, row_offset_.data(), image_floats, s * row_step, s * column_step, dy + first * oh * ow * f,
                  f, oh, ow, rows, lines, lines_per_block, block_sums_.data()};
    parallel_for(rt, blocks * column_tasks, [&](size_t task) {
      const size_t block = task / column_tasks, column = task % column_tasks;
      block_sum_(job, block, column * kTaskFilters, std::min(f, (column + 1) * kTaskFilters));
    });
    // dw [F, rows] += the blocks' dWᵀ summed in block order (in double), in tiles of 16 x 16 so
    // that neither side is read a float per cache line.
    constexpr size_t kTile = 16;
    parallel_for(rt, (f + kTile - 1) / kTile, [&](size_t tile) {
      const size_t j0 = tile * kTile, j1 = std::min(f, j0 + kTile);
      for (size_t i0 = 0; i0 < rows; i0 += kTile) {
        const size_t i1 = std::min(rows, i0 + kTile);
        double sum[kTile][kTile] = {};
        for (size_t b = 0; b < blocks; ++b) {
          const float* src = block_sums_.data() + b * rows * f;
          for (size_t i = i0; i < i1; ++i)
            for (size_t j = j0; j < j1; ++j) sum[i - i0][j - j0] += src[i * f + j];
        }
        for (size_t j = j0; j < j1; ++j)
          for (size_t i = i0; i < i1; ++i) dw[j * rows + i] += static_cast<float>(sum[i - i0][j - j0]);
      }
    });
  }
}

}  // namespace nl
