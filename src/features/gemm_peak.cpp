#include "features/gemm_peak.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/tensor.h"

namespace nl {

const std::vector<GemmShape>& default_gemm_shapes() {
  static const std::vector<GemmShape> shapes = {
      {1024, 288, 64}, {1024, 576, 128}, {256, 1152, 256}, {512, 576, 256}, {1024, 1024, 128},
  };
  return shapes;
}

namespace {

double time_shape(Runtime& rt, const GemmShape& s, double seconds) {
  Tensor a({s.m, s.k}), b({s.n, s.k}), bias({s.n}), c({s.m, s.n});
  // Small non-zero values: denormals or NaNs would measure something else.
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 7 % 13) - 6) * 0.01f;
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 5 % 11) - 5) * 0.01f;
  xnn_operator_t raw = nullptr;
  check_xnn(xnn_create_fully_connected_nc_f32(s.k, s.n, s.k, s.n, b.data(), bias.data(),
                                              -INFINITY, INFINITY, 0, nullptr, nullptr, &raw),
            "create fully_connected_nc_f32 (GEMM peak)");
  XnnOp op(raw);
  check_xnn(xnn_reshape_fully_connected_nc_f32(op.get(), s.m, rt.threadpool()),
            "reshape fully_connected_nc_f32 (GEMM peak)");
  check_xnn(xnn_setup_fully_connected_nc_f32(op.get(), a.data(), c.data()),
            "setup fully_connected_nc_f32 (GEMM peak)");
  using Clock = std::chrono::steady_clock;
  auto run_once = [&] {
    const auto t0 = Clock::now();
    check_xnn(xnn_run_operator(op.get(), rt.threadpool()), "run fully_connected_nc_f32 (GEMM peak)");
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  run_once();  // warm-up: caches, page faults
  std::vector<double> times;
  double spent = 0.0;
  while (times.size() < 3 || (spent < seconds && times.size() < 1000)) {
    times.push_back(run_once());
    spent += times.back();
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
  return flops / times[times.size() / 2] / 1e9;
}

}  // namespace

GemmPeak measure_gemm_peak(Runtime& rt, double seconds, const std::vector<GemmShape>& shapes) {
  if (!(seconds > 0.0) || !std::isfinite(seconds))
    throw std::invalid_argument("measure_gemm_peak: time budget must be a positive number of seconds, got " +
                                std::to_string(seconds));
  if (shapes.empty()) throw std::invalid_argument("measure_gemm_peak: no shapes to measure");
  GemmPeak peak;
  for (const GemmShape& s : shapes) {
    if (s.m == 0 || s.k == 0 || s.n == 0 || s.m > 8192 || s.k > 8192 || s.n > 8192)
      throw std::invalid_argument("measure_gemm_peak: shape " + std::to_string(s.m) + "x" +
                                  std::to_string(s.k) + "x" + std::to_string(s.n) +
                                  " has a side outside 1..8192");
    const double g = time_shape(rt, s, seconds / static_cast<double>(shapes.size()));
    peak.shapes.push_back({s, g});
    if (g > peak.gflops_per_s) {
      peak.gflops_per_s = g;
      peak.best = s;
    }
  }
  return peak;
}

}  // namespace nl
