// Data augmentation for MRI slices: one affine warp (horizontal flip, rotation, scale,
// shift) with bilinear sampling, then a brightness/contrast change, on a grey [0,1] image
// already at the model's input size. Deterministic: the parameters come from a seeded Rng.
#pragma once
#include <cstddef>

#include "core/rng.h"

namespace nl {

struct AugmentOptions {
  bool flip = false;          // mirror left/right with probability 1/2 (brains are
                              // near-symmetric; tumours occur on either side)
  double rotation_deg = 0.0;  // angle uniform in [-rotation_deg, rotation_deg]
  double shift = 0.0;         // translation uniform in [-shift, shift] x size, per axis
  double scale = 0.0;         // zoom factor uniform in [1 - scale, 1 + scale]
  double brightness = 0.0;    // offset uniform in [-brightness, brightness] (grey units)
  double contrast = 0.0;      // gain about the image mean, uniform in [1-contrast, 1+contrast]

  // The defaults the shipped model is trained with; `strength` scales every jitter range
  // (rotation, shift, scale, brightness, contrast; 0 leaves only the flips). Throws
  // std::invalid_argument unless 0 <= strength <= 2.
  static AugmentOptions mri(double strength = 1.0);
  // Throws std::invalid_argument naming a negative / out-of-range strength.
  void validate() const;
};

// One draw of the transform.
struct AugmentParams {
  bool flip = false;
  double angle_rad = 0.0, scale = 1.0, shift_x = 0.0, shift_y = 0.0;  // shift in pixels
  double brightness = 0.0, contrast = 1.0;
};

AugmentParams sample_augment(const AugmentOptions& options, size_t width, size_t height,
                             Rng& rng);

// out(x,y) = source sampled at the inverse-transformed (x,y) with bilinear weights, black (0)
// outside; then v*contrast + (1-contrast)*mean + brightness, clamped to [0,1]. With the
// identity parameters out equals src exactly. src and out are width*height floats and must
// not overlap.
void augment_image(const float* src, size_t width, size_t height, const AugmentParams& params,
                   float* out);

}  // namespace nl
