# XNNPACK (with pthreadpool, cpuinfo, FXdiv) built from the pinned sources that scripts/setup
# unpacks (and patches) into build/deps/. Nothing is downloaded at configure time.
#
# Provides the targets XNNPACK and pthreadpool.
#
# Emscripten: build/deps/xnnpack carries cmake/patches/xnnpack-emscripten.patch (applied by
# scripts/setup), which
#   1. accepts CMAKE_SYSTEM_NAME "Emscripten",
#   2. sets XNNPACK_TARGET_PROCESSOR to "wasm" (no x86/ARM kernels),
#   3. adds PROD_WASM_MICROKERNEL_SRCS (+ PROD_WASMSIMD_MICROKERNEL_SRCS when
#      XNNPACK_ENABLE_WASM_SIMD) to the production kernels,
#   4. makes the two wasmsimd f32->qs8/qu8 vcvt kernels include <wasm_simd128.h> instead of
#      <arm_neon.h>.
# -msimd128 itself is added by the top-level CMakeLists (NEUROLENS_WASM_SIMD).


foreach(_dep xnnpack pthreadpool cpuinfo fxdiv)
  if(NOT EXISTS "${NEUROLENS_DEPS_DIR}/${_dep}/CMakeLists.txt")
    message(FATAL_ERROR "${NEUROLENS_DEPS_DIR}/${_dep} is missing: run scripts/setup first")
  endif()
endforeach()

# The dependency sources are part of the configuration: re-configure when setup re-unpacks them.
set(_xnn_stamp "${NEUROLENS_DEPS_DIR}/xnnpack/.neurolens-stamp")
if(NOT EXISTS "${_xnn_stamp}")
  message(FATAL_ERROR "${NEUROLENS_DEPS_DIR}/xnnpack was not unpacked by scripts/setup")
endif()
file(READ "${_xnn_stamp}" _xnn_stamp_text)
if(NOT _xnn_stamp_text MATCHES "xnnpack-emscripten\\.patch:")
  message(FATAL_ERROR "build/deps/xnnpack lacks the Emscripten patch: run scripts/setup")
endif()
file(READ "${NEUROLENS_DEPS_DIR}/pthreadpool/.neurolens-stamp" _pp_stamp_text)
if(NEUROLENS_WASM_THREADS AND NOT _pp_stamp_text MATCHES "pthreadpool-emscripten-threads\\.patch:")
  message(FATAL_ERROR "build/deps/pthreadpool lacks its threads patch: run scripts/setup")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_xnn_stamp}"
             "${NEUROLENS_DEPS_DIR}/pthreadpool/.neurolens-stamp")

# Where the sub-projects find each other (all local; this also disables their downloads).
set(CPUINFO_SOURCE_DIR "${NEUROLENS_DEPS_DIR}/cpuinfo" CACHE PATH "" FORCE)
set(PTHREADPOOL_SOURCE_DIR "${NEUROLENS_DEPS_DIR}/pthreadpool" CACHE PATH "" FORCE)
set(FXDIV_SOURCE_DIR "${NEUROLENS_DEPS_DIR}/fxdiv" CACHE PATH "" FORCE)

set(XNNPACK_LIBRARY_TYPE "static" CACHE STRING "" FORCE)
set(XNNPACK_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(XNNPACK_BUILD_BENCHMARKS OFF CACHE BOOL "" FORCE)
set(XNNPACK_BUILD_ALL_MICROKERNELS OFF CACHE BOOL "" FORCE)
set(XNNPACK_ENABLE_KLEIDIAI OFF CACHE BOOL "" FORCE)
set(XNNPACK_USE_SYSTEM_LIBS OFF CACHE BOOL "" FORCE)
# The engine runs f32 operators only (plus an x32 transpose). These x86 micro-kernel families,
# XNNPACK's own options, hold nothing but int8 and half-precision kernels: turning them off also
# removes their uses from src/configs (XNN_ENABLE_*=0), so no f32 kernel choice changes (the
# shipped model's outputs stay bit-identical). AVX256SKX stays: it has an f32 softmax kernel.
# With GCC 12 on x86-64 this skips 47 files (XNNPACK itself drops AVX512FP16 and AVX-VNNI-INT8
# for GCC < 13). Not for wasm: these families are x86-only there anyway, and leaving the wasm
# builds' compile flags alone keeps their ccache entries.
if(NOT EMSCRIPTEN)
  foreach(_family AVXVNNI AVXVNNIINT8 AVX256VNNI AVX256VNNIGFNI AVX512VNNI AVX512VNNIGFNI
                  AVX512VBMI AVX512AMX AVX512FP16)
    set(XNNPACK_ENABLE_${_family} OFF CACHE BOOL "" FORCE)
  endforeach()
endif()
set(PTHREADPOOL_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(PTHREADPOOL_BUILD_BENCHMARKS OFF CACHE BOOL "" FORCE)
set(CPUINFO_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(CPUINFO_BUILD_UNIT_TESTS OFF CACHE BOOL "" FORCE)
set(CPUINFO_BUILD_MOCK_TESTS OFF CACHE BOOL "" FORCE)
set(CPUINFO_BUILD_BENCHMARKS OFF CACHE BOOL "" FORCE)
set(FXDIV_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(FXDIV_BUILD_BENCHMARKS OFF CACHE BOOL "" FORCE)
if(EMSCRIPTEN)
  # cmake/patches/pthreadpool-emscripten-threads.patch: real threads instead of the shim.
  if(NEUROLENS_WASM_THREADS)
    set(PTHREADPOOL_EMSCRIPTEN_THREADS ON CACHE BOOL "" FORCE)
  else()
    set(PTHREADPOOL_EMSCRIPTEN_THREADS OFF CACHE BOOL "" FORCE)
  endif()
  if(NEUROLENS_WASM_SIMD)
    set(XNNPACK_ENABLE_WASM_SIMD ON CACHE BOOL "" FORCE)
  else()
    set(XNNPACK_ENABLE_WASM_SIMD OFF CACHE BOOL "" FORCE)
    # The generic (non-SIMD) branch of src/configs/transpose-config.c tests only
    # XNN_ENABLE_RISCV_VECTOR, which XNNPACK's CMake enables on every processor.
    set(XNNPACK_ENABLE_RISCV_VECTOR OFF CACHE BOOL "" FORCE)
  endif()
endif()

# XNNPACK is third-party code: it is built with its own flags, never with our warnings or
# sanitizers (those are set per target in the top-level CMakeLists). SYSTEM makes its headers
# system headers for our targets.
add_subdirectory("${NEUROLENS_DEPS_DIR}/xnnpack" "${CMAKE_BINARY_DIR}/_deps/xnnpack" EXCLUDE_FROM_ALL SYSTEM)

if(NOT TARGET XNNPACK OR NOT TARGET pthreadpool)
  message(FATAL_ERROR "XNNPACK's CMake did not define the XNNPACK/pthreadpool targets")
endif()
# The engine uses XNNPACK's operator API, never its subgraph API (xnn_define_*, runtimes):
# leave the `subgraph` object library (32 files) out of libXNNPACK, so no build compiles it.
foreach(_prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
  get_target_property(_libs XNNPACK ${_prop})
  list(REMOVE_ITEM _libs subgraph "$<LINK_ONLY:subgraph>")
  set_property(TARGET XNNPACK PROPERTY ${_prop} "${_libs}")
endforeach()
# One generated WASM SIMD kernel of this XNNPACK version (unsigned 8-bit row sums, which we
# never call) assigns int8_t pointers to uint8_t ones: harmless, but 15 warnings in every wasm
# build would hide ours.
set(NEUROLENS_NOISY_XNNPACK_KERNEL
    "${NEUROLENS_DEPS_DIR}/xnnpack/src/qu8-rdsum/gen/qu8-rdsum-7p7x-wasmsimd-c32.c")
if(EMSCRIPTEN AND TARGET microkernels-prod AND EXISTS "${NEUROLENS_NOISY_XNNPACK_KERNEL}")
  set_source_files_properties("${NEUROLENS_NOISY_XNNPACK_KERNEL}"
                              TARGET_DIRECTORY microkernels-prod
                              PROPERTIES COMPILE_OPTIONS -Wno-pointer-sign)
endif()
