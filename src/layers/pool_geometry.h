// Window geometry shared by max_pool and avg_pool: square kernel, stride, symmetric padding.
// Output size = floor((in + 2*padding - kernel) / stride) + 1, as XNNPACK computes it.
#pragma once
#include "core/layer.h"

namespace nl {

// Checks kernel >= 1, stride >= 1 and padding < kernel (so that every window overlaps the
// input: a window made only of padding would have no maximum and no average).
void check_pool_spec(const LayerSpec& spec);

// [N,H,W,C] -> [N,OH,OW,C]; throws when the kernel exceeds the padded input.
Shape pool_output_shape(const LayerSpec& spec, const std::vector<Shape>& inputs);

// The clipped window of output position o along one axis of length `size`: [begin, end).
struct WindowRange {
  size_t begin, end;
};
WindowRange pool_window(const LayerSpec& spec, size_t o, size_t size);

}  // namespace nl
