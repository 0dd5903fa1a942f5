#include "layers/pool_geometry.h"

#include <algorithm>

#include "layers/layer_checks.h"

namespace nl {

void check_pool_spec(const LayerSpec& spec) {
  if (spec.kernel == 0) throw_layer_error(spec, "kernel must be at least 1");
  if (spec.stride == 0) throw_layer_error(spec, "stride must be at least 1");
  if (spec.padding >= spec.kernel)
    throw_layer_error(spec, "padding " + std::to_string(spec.padding) + " must be smaller than kernel " +
                                std::to_string(spec.kernel));
}

Shape pool_output_shape(const LayerSpec& spec, const std::vector<Shape>& inputs) {
  expect_input_count(spec, inputs, 1);
  const Shape& in = inputs[0];
  expect_rank(spec, in, 4, "input");
  const size_t padded_h = in[1] + 2 * spec.padding, padded_w = in[2] + 2 * spec.padding;
  if (spec.kernel > padded_h)
    throw_layer_error(spec, "kernel " + std::to_string(spec.kernel) + " exceeds padded input height " +
                                std::to_string(padded_h));
  if (spec.kernel > padded_w)
    throw_layer_error(spec, "kernel " + std::to_string(spec.kernel) + " exceeds padded input width " +
                                std::to_string(padded_w));
  return {in[0], (padded_h - spec.kernel) / spec.stride + 1, (padded_w - spec.kernel) / spec.stride + 1,
          in[3]};
}

WindowRange pool_window(const LayerSpec& spec, size_t o, size_t size) {
  // Window in padded coordinates: [o*stride, o*stride + kernel); shift by -padding and clip.
  const size_t start = o * spec.stride;
  const size_t begin = start > spec.padding ? start - spec.padding : 0;
  const size_t end = std::min(size, start + spec.kernel > spec.padding ? start + spec.kernel - spec.padding : 0);
  return {begin, end};
}

}  // namespace nl
