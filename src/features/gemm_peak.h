// The f32 matrix-product speed XNNPACK reaches on this machine: the yardstick for how close
// a model's inference comes to the hardware's limit (`neurolens bench --gemm-peak`, and the
// browser benchmark through the wasm module's gemmPeak()).
//
//   nl::Runtime rt(1);
//   nl::GemmPeak p = nl::measure_gemm_peak(rt, 0.5);   // ~0.5 s of work in all
//   printf("%.1f GFLOP/s at %zux%zux%zu\n", p.gflops_per_s, p.best.m, p.best.k, p.best.n);
//
// Each candidate shape runs on a fully_connected_nc_f32 operator (weights packed once, as
// inference does), so the figure is the GEMM micro-kernels' throughput without packing.
#pragma once
#include <cstddef>
#include <vector>

#include "core/runtime.h"

namespace nl {

struct GemmShape {
  size_t m, k, n;  // C[M,N] = A[M,K] · B[K,N]
};

struct GemmPeak {
  double gflops_per_s = 0.0;  // best over the shapes (median of each shape's timed runs)
  GemmShape best{0, 0, 0};     // the shape that reached it
  struct Entry {
    GemmShape shape;
    double gflops_per_s;
  };
  std::vector<Entry> shapes;  // every shape measured
};

// Shapes like the convolutions of a small CNN written as GEMMs (M = output pixels,
// K = kernel area x input channels, N = output channels), all cache-friendly and large.
const std::vector<GemmShape>& default_gemm_shapes();

// Times each shape for about seconds / shapes.size() (at least 3 runs after one warm-up)
// and keeps the median. Throws std::invalid_argument for a non-positive time or empty shape.
GemmPeak measure_gemm_peak(Runtime& rt, double seconds,
                           const std::vector<GemmShape>& shapes = default_gemm_shapes());

}  // namespace nl
