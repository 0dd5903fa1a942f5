// Smoke test of the XNNPACK build itself: a strided, padded 2-D convolution with odd sizes
// against a direct loop. Runs natively and (under node) in the wasm build.
#include <doctest/doctest.h>
#include <xnnpack.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace {

struct ConvShape {
  size_t batch, in_h, in_w, in_c, out_c, k_h, k_w, stride, pad;
  size_t out_h() const { return (in_h + 2 * pad - k_h) / stride + 1; }
  size_t out_w() const { return (in_w + 2 * pad - k_w) / stride + 1; }
};

// NHWC input, OHWI kernel, NHWC output.
std::vector<float> reference_conv(const ConvShape& s, const std::vector<float>& input,
                                  const std::vector<float>& kernel, const std::vector<float>& bias) {
  const size_t oh = s.out_h(), ow = s.out_w();
  std::vector<float> out(s.batch * oh * ow * s.out_c);
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t y = 0; y < oh; ++y)
      for (size_t x = 0; x < ow; ++x)
        for (size_t o = 0; o < s.out_c; ++o) {
          double acc = bias[o];
          for (size_t ky = 0; ky < s.k_h; ++ky) {
            const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(y * s.stride + ky) -
                                      static_cast<std::ptrdiff_t>(s.pad);
            if (iy < 0 || iy >= static_cast<std::ptrdiff_t>(s.in_h)) continue;
            for (size_t kx = 0; kx < s.k_w; ++kx) {
              const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(x * s.stride + kx) -
                                        static_cast<std::ptrdiff_t>(s.pad);
              if (ix < 0 || ix >= static_cast<std::ptrdiff_t>(s.in_w)) continue;
              for (size_t c = 0; c < s.in_c; ++c) {
                const float v = input[((n * s.in_h + iy) * s.in_w + ix) * s.in_c + c];
                const float w = kernel[((o * s.k_h + ky) * s.k_w + kx) * s.in_c + c];
                acc += static_cast<double>(v) * w;
              }
            }
          }
          out[((n * oh + y) * ow + x) * s.out_c + o] = static_cast<float>(acc);
        }
  return out;
}

std::vector<float> xnnpack_conv(const ConvShape& s, const std::vector<float>& input,
                                const std::vector<float>& kernel, const std::vector<float>& bias,
                                float out_min, float out_max) {
  REQUIRE(xnn_initialize(nullptr) == xnn_status_success);
  xnn_operator_t op = nullptr;
  const auto p = static_cast<uint32_t>(s.pad);
  REQUIRE(xnn_create_convolution2d_nhwc_f32(
              p, p, p, p, static_cast<uint32_t>(s.k_h), static_cast<uint32_t>(s.k_w),
              static_cast<uint32_t>(s.stride), static_cast<uint32_t>(s.stride), 1, 1,
              /*groups=*/1, s.in_c, s.out_c, /*input_channel_stride=*/s.in_c,
              /*output_channel_stride=*/s.out_c, kernel.data(), bias.data(), out_min, out_max,
              /*flags=*/0, nullptr, nullptr, &op) == xnn_status_success);
  REQUIRE(op != nullptr);

  size_t workspace_size = 0, workspace_alignment = 0, oh = 0, ow = 0;
  REQUIRE(xnn_reshape_convolution2d_nhwc_f32(op, s.batch, s.in_h, s.in_w, &workspace_size,
                                             &workspace_alignment, &oh, &ow,
                                             /*threadpool=*/nullptr) == xnn_status_success);
  CHECK(oh == s.out_h());
  CHECK(ow == s.out_w());

  // XNNPACK may read XNN_EXTRA_BYTES past the input; over-allocate and over-align the workspace.
  std::vector<float> padded_input(input.size() + XNN_EXTRA_BYTES / sizeof(float));
  std::copy(input.begin(), input.end(), padded_input.begin());
  std::vector<unsigned char> workspace(workspace_size + workspace_alignment + 64);
  void* ws = workspace.data();
  if (workspace_alignment > 1) {
    const auto addr = reinterpret_cast<std::uintptr_t>(ws);
    ws = reinterpret_cast<void*>((addr + workspace_alignment - 1) / workspace_alignment *
                                 workspace_alignment);
  }
  std::vector<float> out(s.batch * oh * ow * s.out_c, std::nanf(""));
  REQUIRE(xnn_setup_convolution2d_nhwc_f32(op, ws, padded_input.data(), out.data()) ==
          xnn_status_success);
  REQUIRE(xnn_run_operator(op, nullptr) == xnn_status_success);
  REQUIRE(xnn_delete_operator(op) == xnn_status_success);
  return out;
}

void check_close(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  const float abs_tol = 1e-4f, rel_tol = 1e-4f;
  size_t bad = 0;
  float worst = 0.0f;
  for (size_t i = 0; i < got.size(); ++i) {
    const float err = std::fabs(got[i] - want[i]);
    const float tol = std::max(abs_tol, rel_tol * std::fabs(want[i]));
    worst = std::max(worst, err);
    if (!(err <= tol)) {  // also catches NaN
      if (bad < 5) {
        CAPTURE(i);
        CHECK(got[i] == doctest::Approx(want[i]));
      }
      ++bad;
    }
  }
  INFO("max abs error " << worst);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("XNNPACK conv2d (stride 2, pad 1, odd sizes) matches a direct loop") {
  const ConvShape s{/*batch=*/2, /*in_h=*/11, /*in_w=*/13, /*in_c=*/3, /*out_c=*/7,
                    /*k_h=*/3, /*k_w=*/3, /*stride=*/2, /*pad=*/1};
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> input(s.batch * s.in_h * s.in_w * s.in_c);
  std::vector<float> kernel(s.out_c * s.k_h * s.k_w * s.in_c);
  std::vector<float> bias(s.out_c);
  for (auto* v : {&input, &kernel, &bias})
    for (auto& x : *v) x = dist(rng);

  const auto want = reference_conv(s, input, kernel, bias);

  SUBCASE("no activation") {
    const float inf = std::numeric_limits<float>::infinity();
    check_close(xnnpack_conv(s, input, kernel, bias, -inf, inf), want);
  }
  SUBCASE("fused ReLU via output_min = 0") {
    auto relu = want;
    for (auto& x : relu) x = std::max(x, 0.0f);
    check_close(
        xnnpack_conv(s, input, kernel, bias, 0.0f, std::numeric_limits<float>::infinity()), relu);
  }
}
