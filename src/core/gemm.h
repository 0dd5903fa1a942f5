// Matrix products and transposes on XNNPACK, for backward passes (and anything else).
//
// Matrices are dense row-major float arrays. XNNPACK may read up to XNN_EXTRA_BYTES past
// the end of the left operand A (never writes there); a Tensor's storage has that slack,
// so pass Tensor data (or buffers with the same slack).
//
// The classes keep their XNNPACK operator between calls: it is created on first use and
// only reshaped when M, K or N change, so a layer that holds one MatMul per product pays
// the set-up cost once per batch size, not once per step. The products use
// xnn_*_dynamic_fully_connected_nc_f32, whose weights (B) are a run-time input: B is packed
// into the operator's workspace on every run, with no re-creation after B changes.
#pragma once
#include <cstddef>
#include <vector>

#include "core/runtime.h"
#include "core/tensor.h"

namespace nl {

// A growable byte buffer handed to XNNPACK as an operator workspace, aligned as it asks.
class Workspace {
 public:
  void* get(size_t bytes, size_t alignment);

 private:
  std::vector<unsigned char> bytes_;
};

// Which operands are stored transposed (BLAS naming: A then B, n = as is, t = transposed).
enum class MatMulForm {
  nn,  // C[M,N] = A[M,K] · B[K,N]
  nt,  // C[M,N] = A[M,K] · B[N,K]ᵀ
  tn,  // C[M,N] = A[K,M]ᵀ · B[K,N]   (A is transposed into a scratch buffer first)
};

// dst[cols,rows] = src[rows,cols]ᵀ on a cached xnn transpose_nd_x32 operator.
class Transposer {
 public:
  void run(Runtime& rt, size_t rows, size_t cols, const float* src, float* dst);

 private:
  XnnOp op_;
  size_t rows_ = 0, cols_ = 0;
};

// One cached matrix product of a fixed form.
class MatMul {
 public:
  explicit MatMul(MatMulForm form) : form_(form) {}

  // Writes C = op(A)·op(B) into c (m*n floats), or adds it to c when accumulate is true.
  // Any of m, k, n may be 0 (then C is zero-filled, or left alone when accumulating).
  void run(Runtime& rt, size_t m, size_t k, size_t n, const float* a, const float* b, float* c,
           bool accumulate = false);

  MatMulForm form() const { return form_; }

 private:
  void ensure_operator(Runtime& rt, size_t m, size_t k, size_t n);

  MatMulForm form_;
  XnnOp op_;
  size_t m_ = 0, k_ = 0, n_ = 0;  // shape the operator is reshaped for
  size_t workspace_bytes_ = 0, workspace_alignment_ = 1;
  Workspace workspace_;
  Transposer transposer_;
  Tensor a_transposed_;  // tn: A as [M,K]
  Tensor product_;       // accumulate: the product before it is added to C
};

// One-shot conveniences on 2-D tensors (operators created per call; use MatMul in loops).
// Each throws std::invalid_argument naming the shapes when they are not 2-D or do not agree.
Tensor matmul_nn(Runtime& rt, const Tensor& a, const Tensor& b);  // A[M,K]·B[K,N] -> [M,N]
Tensor matmul_nt(Runtime& rt, const Tensor& a, const Tensor& b);  // A[M,K]·B[N,K]ᵀ -> [M,N]
Tensor matmul_tn(Runtime& rt, const Tensor& a, const Tensor& b);  // A[K,M]ᵀ·B[K,N] -> [M,N]
Tensor transpose(Runtime& rt, const Tensor& a);                   // [R,C] -> [C,R]

}  // namespace nl
