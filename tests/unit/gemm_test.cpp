// Matrix products and transposes on XNNPACK (gemm.h) against naive loops; Runtime basics.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/gemm.h"
#include "features/gemm_peak.h"
#include "reference.h"

namespace {

using nl::MatMul;
using nl::MatMulForm;
using nl::Runtime;
using nl::Shape;
using nl::Tensor;

struct Mnk {
  size_t m, k, n;
};

// Odd sizes around typical microkernel tiles (mr up to 8, nr 8/16, kr 1/4).
const Mnk kSizes[] = {{1, 1, 1},   {7, 13, 5},  {5, 1, 9},   {1, 37, 3},
                      {17, 3, 33}, {67, 129, 33}, {9, 300, 1}};

std::vector<double> reference(MatMulForm form, const Tensor& a, const Tensor& b, const Mnk& s) {
  return nl::ref::matmul(a.values(), b.values(), s.m, s.k, s.n, form == MatMulForm::tn,
                         form == MatMulForm::nt);
}

Shape a_shape(MatMulForm form, const Mnk& s) {
  return form == MatMulForm::tn ? Shape{s.k, s.m} : Shape{s.m, s.k};
}
Shape b_shape(MatMulForm form, const Mnk& s) {
  return form == MatMulForm::nt ? Shape{s.n, s.k} : Shape{s.k, s.n};
}

std::string name(MatMulForm form) {
  return form == MatMulForm::nn ? "nn" : form == MatMulForm::nt ? "nt" : "tn";
}

}  // namespace

TEST_CASE("Runtime thread counts and check_xnn messages") {
  Runtime one(1);
  CHECK(one.threads() == 1);
  CHECK(one.threadpool() == nullptr);
  Runtime all(0);
  CHECK(all.threads() >= 1);
  CHECK((all.threads() > 1) == (all.threadpool() != nullptr));
  CHECK_NOTHROW(nl::check_xnn(xnn_status_success, "anything"));
  CHECK_THROWS_WITH_AS(nl::check_xnn(xnn_status_invalid_parameter, "create widget"),
                       "XNNPACK create widget: invalid parameter (status 2)", std::runtime_error);
}

TEST_CASE("matmul free functions match naive loops") {
  Runtime rt(1);
  uint64_t seed = 1;
  for (const Mnk& s : kSizes) {
    CAPTURE(s.m);
    CAPTURE(s.k);
    CAPTURE(s.n);
    for (MatMulForm form : {MatMulForm::nn, MatMulForm::nt, MatMulForm::tn}) {
      CAPTURE(name(form));
      const Tensor a = nl::ref::random_tensor(a_shape(form, s), seed++);
      const Tensor b = nl::ref::random_tensor(b_shape(form, s), seed++);
      const Tensor c = form == MatMulForm::nn   ? nl::matmul_nn(rt, a, b)
                       : form == MatMulForm::nt ? nl::matmul_nt(rt, a, b)
                                                : nl::matmul_tn(rt, a, b);
      CHECK(c.shape() == Shape{s.m, s.n});
      CHECK(nl::ref::mismatch(c.values(), reference(form, a, b, s), 1e-5, 1e-5) == "");
    }
  }
}

TEST_CASE("a cached MatMul follows shape changes and accumulates") {
  for (size_t threads : {1, 2}) {
    Runtime rt(threads);
    CAPTURE(threads);
    for (MatMulForm form : {MatMulForm::nn, MatMulForm::nt, MatMulForm::tn}) {
      CAPTURE(name(form));
      MatMul mm(form);
      uint64_t seed = 100;
      // Repeats and shape changes in both directions exercise reshape and workspace growth.
      const Mnk sequence[] = {{7, 13, 5}, {7, 13, 5}, {67, 129, 33}, {3, 2, 4}, {7, 13, 5}};
      for (const Mnk& s : sequence) {
        CAPTURE(s.m);
        CAPTURE(s.k);
        CAPTURE(s.n);
        const Tensor a = nl::ref::random_tensor(a_shape(form, s), seed++);
        const Tensor b = nl::ref::random_tensor(b_shape(form, s), seed++);
        Tensor c({s.m, s.n}, 123.0f);  // overwritten
        mm.run(rt, s.m, s.k, s.n, a.data(), b.data(), c.data());
        const std::vector<double> want = reference(form, a, b, s);
        CHECK(nl::ref::mismatch(c.values(), want, 1e-5, 1e-5) == "");

        Tensor acc = nl::ref::random_tensor({s.m, s.n}, seed++);
        std::vector<double> want_acc = nl::ref::to_double(acc.values());
        for (size_t i = 0; i < want_acc.size(); ++i) want_acc[i] += want[i];
        mm.run(rt, s.m, s.k, s.n, a.data(), b.data(), acc.data(), /*accumulate=*/true);
        CHECK(nl::ref::mismatch(acc.values(), want_acc, 1e-5, 1e-5) == "");
      }
    }
  }
}

TEST_CASE("matmul with an empty dimension") {
  Runtime rt(1);
  MatMul mm(MatMulForm::nn);
  Tensor c({2, 3}, 5.0f);
  const Tensor a({2, 1}), b({1, 3});
  mm.run(rt, 2, 0, 3, a.data(), b.data(), c.data(), /*accumulate=*/true);
  for (float v : c.values()) CHECK(v == 5.0f);  // adding an empty sum changes nothing
  mm.run(rt, 2, 0, 3, a.data(), b.data(), c.data());
  for (float v : c.values()) CHECK(v == 0.0f);  // an empty sum is zero
  mm.run(rt, 0, 4, 3, a.data(), b.data(), c.data());  // no rows: nothing to write, no error
}

TEST_CASE("transpose matches naive loops") {
  Runtime rt(1);
  nl::Transposer cached;
  uint64_t seed = 200;
  const std::pair<size_t, size_t> sizes[] = {{1, 1}, {1, 7}, {7, 1}, {5, 3}, {33, 65}, {5, 3}};
  for (const auto& size : sizes) {
    const size_t rows = size.first, cols = size.second;  // (clang 14: no captured bindings)
    CAPTURE(rows);
    CAPTURE(cols);
    const Tensor a = nl::ref::random_tensor({rows, cols}, seed++);
    std::vector<double> want(rows * cols);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) want[c * rows + r] = a[r * cols + c];
    const Tensor t = nl::transpose(rt, a);
    CHECK(t.shape() == Shape{cols, rows});
    CHECK(nl::ref::mismatch(t.values(), want, 0, 0) == "");
    Tensor t2({cols, rows});
    cached.run(rt, rows, cols, a.data(), t2.data());
    CHECK(nl::ref::mismatch(t2.values(), want, 0, 0) == "");
  }
}

TEST_CASE("matmul rejects shapes that do not agree") {
  Runtime rt(1);
  const Tensor a({3, 4}), b({5, 6}), v({4});
  CHECK_THROWS_WITH_AS(nl::matmul_nn(rt, a, b),
                       "matmul_nn: shapes [3,4] and [5,6] do not agree (A[M,K]·B[K,N] needs A "
                       "columns == B rows)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::matmul_nt(rt, a, b),
                       "matmul_nt: shapes [3,4] and [5,6] do not agree (A[M,K]·B[N,K]ᵀ needs A "
                       "columns == B columns)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::matmul_tn(rt, a, b),
                       "matmul_tn: shapes [3,4] and [5,6] do not agree (A[K,M]ᵀ·B[K,N] needs A "
                       "rows == B rows)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::matmul_nn(rt, v, b), "matmul_nn: A must be 2-D, got shape [4]",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::transpose(rt, v), "transpose: the matrix must be 2-D, got shape [4]",
                       std::invalid_argument);
}

TEST_CASE("measure_gemm_peak reports every shape and the best of them") {
  nl::Runtime rt(1);
  const std::vector<nl::GemmShape> shapes = {{33, 17, 9}, {64, 48, 40}};
  const nl::GemmPeak peak = nl::measure_gemm_peak(rt, 0.01, shapes);
  REQUIRE(peak.shapes.size() == 2);
  double best = 0;
  for (const auto& e : peak.shapes) {
    CHECK(e.gflops_per_s > 0);
    CHECK(std::isfinite(e.gflops_per_s));
    best = std::max(best, e.gflops_per_s);
  }
  CHECK(peak.gflops_per_s == best);
  const nl::GemmShape& b = peak.best;
  const bool from_a_shape = (b.m == 33 && b.k == 17 && b.n == 9) || (b.m == 64 && b.k == 48 && b.n == 40);
  CHECK(from_a_shape);
}

TEST_CASE("measure_gemm_peak refuses a bad budget or shape, naming it") {
  nl::Runtime rt(1);
  CHECK_THROWS_WITH_AS(nl::measure_gemm_peak(rt, 0.0), doctest::Contains("positive number of seconds"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::measure_gemm_peak(rt, 0.01, {{4, 0, 4}}), doctest::Contains("4x0x4"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::measure_gemm_peak(rt, 0.01, {}), doctest::Contains("no shapes"), std::invalid_argument);
}
