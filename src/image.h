// Image decoding (stb_image: JPEG, PNG, BMP, GIF, TGA) and preprocessing into the
// model's input tensor.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model.h"
#include "tensor.h"

namespace nl {

struct GreyImage {
  size_t width = 0, height = 0;
  std::vector<float> pixels;  // row-major, [0,1]
};

// Largest accepted width*height, checked from the header before decoding.
inline constexpr size_t kMaxImagePixels = 50'000'000;

// Decodes 1-4 channel images to grey (alpha ignored). Throws std::invalid_argument with
// a clear message: "empty file", "not an image (unrecognised format)", "corrupt or
// truncated JPEG: ...", "image 60000x60000 exceeds the 50000000-pixel limit".
GreyImage decode_grey(std::span<const uint8_t> bytes, size_t max_pixels = kMaxImagePixels);

// Area-averaging when shrinking, bilinear-style filtering when enlarging.
GreyImage resize(const GreyImage& image, size_t width, size_t height);

// Writes the normalized [H,W,C] input for one image into out (H*W*C floats); the grey
// value is replicated when the model wants C > 1.
void to_input(const GreyImage& image, const Architecture& arch, const Preprocessing& pre,
              float* out);

// decode_grey + resize + to_input: a [1,H,W,C] tensor.
Tensor preprocess(std::span<const uint8_t> bytes, const Architecture& arch,
                  const Preprocessing& pre);

}  // namespace nl
