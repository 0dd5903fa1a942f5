#include "core/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace nl {

void* Workspace::get(size_t bytes, size_t alignment) {
  if (alignment == 0) alignment = 1;
  if (bytes_.size() < bytes + alignment) bytes_.resize(bytes + alignment);
  const auto base = reinterpret_cast<uintptr_t>(bytes_.data());
  const uintptr_t aligned = (base + alignment - 1) / alignment * alignment;
  return reinterpret_cast<void*>(aligned);
}

void MatMul::ensure_operator(Runtime& rt, size_t m, size_t k, size_t n) {
  if (!op_) {
    // The operator sees B as fully-connected weights: [out=N][in=K] by default, [in=K][out=N]
    // with XNN_FLAG_TRANSPOSE_WEIGHTS.
    const uint32_t flags = form_ == MatMulForm::nt ? 0 : XNN_FLAG_TRANSPOSE_WEIGHTS;
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_dynamic_fully_connected_nc_f32(-INFINITY, INFINITY, flags, &op),
              "create dynamic fully connected (matmul)");
    op_.reset(op);
    m_ = k_ = n_ = 0;
  }
  if (m == m_ && k == k_ && n == n_) return;
  check_xnn(xnn_reshape_dynamic_fully_connected_nc_f32(op_.get(), m, k, n, /*input_stride=*/k,
                                                       /*output_stride=*/n, &workspace_bytes_,
                                                       &workspace_alignment_, rt.threadpool()),
            "reshape dynamic fully connected (matmul)");
  m_ = m;
  k_ = k;
  n_ = n;
}

void MatMul::run(Runtime& rt, size_t m, size_t k, size_t n, const float* a, const float* b,
                 float* c, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty sum; XNNPACK rejects zero input channels
    if (!accumulate) std::fill(c, c + m * n, 0.0f);
    return;
  }
  const float* lhs = a;
  if (form_ == MatMulForm::tn) {
    a_transposed_.reshape({m, k});
    transposer_.run(rt, k, m, a, a_transposed_.data());
    lhs = a_transposed_.data();
  }
  float* out = c;
  if (accumulate) {
    product_.reshape({m, n});
    out = product_.data();
  }
  ensure_operator(rt, m, k, n);
  void* workspace = workspace_.get(workspace_bytes_, workspace_alignment_);
  // B is packed into the workspace on every run, but the packing routines (this version)
  // skip what they expect to be zero already: the bias slots when bias is NULL and the
  // padding of K and N up to the kernel's tile. A reused workspace holds the previous
  // product's packed weights there, so it must be cleared first.
  std::memset(workspace, 0, workspace_bytes_);
  check_xnn(xnn_setup_dynamic_fully_connected_nc_f32(op_.get(), workspace, lhs, b,
                                                     /*bias=*/nullptr, out),
            "setup dynamic fully connected (matmul)");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run dynamic fully connected (matmul)");
  if (accumulate) {
    const size_t count = m * n;
    for (size_t i = 0; i < count; ++i) c[i] += out[i];
  }
}

void Transposer::run(Runtime& rt, size_t rows, size_t cols, const float* src, float* dst) {
  if (rows == 0 || cols == 0) return;
  if (!op_) {
    xnn_operator_t op = nullptr;
    check_xnn(xnn_create_transpose_nd_x32(0, &op), "create transpose");
    op_.reset(op);
    rows_ = cols_ = 0;
  }
  if (rows != rows_ || cols != cols_) {
    const size_t shape[2] = {rows, cols};
    const size_t perm[2] = {1, 0};
    check_xnn(xnn_reshape_transpose_nd_x32(op_.get(), 2, shape, perm, rt.threadpool()),
              "reshape transpose");
    rows_ = rows;
    cols_ = cols;
  }
  check_xnn(xnn_setup_transpose_nd_x32(op_.get(), src, dst), "setup transpose");
  check_xnn(xnn_run_operator(op_.get(), rt.threadpool()), "run transpose");
}

namespace {

void require_2d(const Tensor& t, const char* fn, const char* which) {
  if (t.rank() != 2)
    throw std::invalid_argument(std::string(fn) + ": " + which + " must be 2-D, got shape " +
                                to_string(t.shape()));
}

void require_equal(size_t x, size_t y, const char* fn, const Tensor& a, const Tensor& b,
                   const char* rule) {
  if (x != y)
    throw std::invalid_argument(std::string(fn) + ": shapes " + to_string(a.shape()) + " and " +
                                to_string(b.shape()) + " do not agree (" + rule + ")");
}

}  // namespace

Tensor matmul_nn(Runtime& rt, const Tensor& a, const Tensor& b) {
  require_2d(a, "matmul_nn", "A");
  require_2d(b, "matmul_nn", "B");
  require_equal(a.dim(1), b.dim(0), "matmul_nn", a, b, "A[M,K]·B[K,N] needs A columns == B rows");
  Tensor c({a.dim(0), b.dim(1)});
  MatMul(MatMulForm::nn).run(rt, a.dim(0), a.dim(1), b.dim(1), a.data(), b.data(), c.data());
  return c;
}

Tensor matmul_nt(Runtime& rt, const Tensor& a, const Tensor& b) {
  require_2d(a, "matmul_nt", "A");
  require_2d(b, "matmul_nt", "B");
  require_equal(a.dim(1), b.dim(1), "matmul_nt", a, b,
                "A[M,K]·B[N,K]ᵀ needs A columns == B columns");
  Tensor c({a.dim(0), b.dim(0)});
  MatMul(MatMulForm::nt).run(rt, a.dim(0), a.dim(1), b.dim(0), a.data(), b.data(), c.data());
  return c;
}

Tensor matmul_tn(Runtime& rt, const Tensor& a, const Tensor& b) {
  require_2d(a, "matmul_tn", "A");
  require_2d(b, "matmul_tn", "B");
  require_equal(a.dim(0), b.dim(0), "matmul_tn", a, b, "A[K,M]ᵀ·B[K,N] needs A rows == B rows");
  Tensor c({a.dim(1), b.dim(1)});
  MatMul(MatMulForm::tn).run(rt, a.dim(1), a.dim(0), b.dim(1), a.data(), b.data(), c.data());
  return c;
}

Tensor transpose(Runtime& rt, const Tensor& a) {
  require_2d(a, "transpose", "the matrix");
  Tensor t({a.dim(1), a.dim(0)});
  Transposer().run(rt, a.dim(0), a.dim(1), a.data(), t.data());
  return t;
}

}  // namespace nl
