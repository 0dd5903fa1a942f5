// Image decoding (stb_image: JPEG, PNG, BMP, GIF, TGA) and preprocessing into the
// model's input tensor.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/architecture.h"
#include "core/tensor.h"

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

// A region of an image, in its pixels; it may reach past the edges (that part is black),
// so that a head touching one border is not squeezed.
struct CropBox {
  long x = 0, y = 0;  // top-left corner
  size_t width = 0, height = 0;
};

// The square around the head: on a copy shrunk to at most 64 pixels a side, the pixels
// brighter than a tenth of the brightest, grown by one pixel, and of those the largest
// 8-connected group (so letters, rulers, specks and lines beside the head do not count);
// its bounding box widened by 3% each side, squared about its centre, at least a third of
// the image's longer side. A black image gives the square around the whole image.
CropBox head_box(const GreyImage& image);

// The box's pixels, black where it lies outside the image.
GreyImage crop(const GreyImage& image, const CropBox& box);

// Writes the normalized [H,W,C] input for one image into out (H*W*C floats); the grey
// value is replicated when the model wants C > 1.
void to_input(const GreyImage& image, const Architecture& arch, const Preprocessing& pre,
              float* out);

// Where a model input came from: the decoded image's size and the part of it used (the
// whole image when not cropping). Lets a caller draw a heat map over the right pixels.
struct InputRegion {
  size_t image_width = 0, image_height = 0;
  CropBox box;
};

// An image given as 8-bit grey levels (row-major; a scan slice through its window), scaled as
// decode_grey scales an 8-bit sample: a JPEG and a scan slice with the same levels are equal.
GreyImage grey_from_levels(size_t width, size_t height, std::span<const uint8_t> levels);

// Crop to the head (if asked) + resize to width x height (only when the size differs).
GreyImage prepare_grey(GreyImage image, size_t width, size_t height, bool crop_to_head,
                       InputRegion* region = nullptr);

// decode_grey + prepare_grey: crop to the head (if asked) + resize to width x height (only when the size
// differs). region, if given, receives where the result came from.
GreyImage prepare_image(std::span<const uint8_t> bytes, size_t width, size_t height,
                        bool crop_to_head, InputRegion* region = nullptr);

// prepare_image + to_input: a [1,H,W,C] tensor.
Tensor preprocess(std::span<const uint8_t> bytes, const Architecture& arch,
                  const Preprocessing& pre, InputRegion* region = nullptr);
// The same for an image already decoded.
Tensor preprocess_grey(GreyImage image, const Architecture& arch, const Preprocessing& pre,
                       InputRegion* region = nullptr);

}  // namespace nl
