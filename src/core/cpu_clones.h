// NL_CPU_CLONES: compile a hot loop of our own code for the CPU it runs on.
//
//   NL_CPU_CLONES void scale(float* v, size_t n, float k) { for (...) v[i] *= k; }
//
// Native builds target baseline x86-64 (SSE2, no FMA) so that they run on any x86-64 machine;
// XNNPACK picks its kernels at run time, but our own loops were vectorised 4 floats wide
// without fused multiply-add. A function marked NL_CPU_CLONES is also compiled for AVX2 with
// FMA (Haswell and later) and AVX-512 (Skylake-SP and later), and the loader picks the version
// for the CPU at hand (GCC and Clang function multi-versioning). The versions may round
// differently (FMA): results agree within float rounding, not bit for bit, across CPUs; on one
// CPU they are the same on any thread count. WebAssembly builds have one version (SIMD128).
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__wasm__)
#define NL_CPU_CLONES __attribute__((target_clones("avx512f", "fma", "default")))
#else
#define NL_CPU_CLONES
#endif
