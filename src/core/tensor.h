// Tensor: a dense float32 array with a shape. Activations are NHWC ([N,H,W,C]);
// dense-layer activations are [N,C]. Storage keeps a few floats of tail padding
// because XNNPACK kernels may read (never write) up to XNN_EXTRA_BYTES past an input.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace nl {

using Shape = std::vector<size_t>;

size_t numel(const Shape& shape);
// numel in double, for budgets checked before allocating: a product of sizes may not fit a
// 32-bit size_t (wasm).
double numel_double(const Shape& shape);
std::string to_string(const Shape& shape);  // "[2,3,4]"

// Index of the largest value, the first one on ties (a NaN is never the largest unless it
// comes first). The one argmax: predicted classes everywhere go through it.
// Throws std::invalid_argument on an empty span.
size_t argmax(std::span<const float> values);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, float fill = 0.0f);

  const Shape& shape() const { return shape_; }
  size_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  size_t size() const { return size_; }
  float* data() { return storage_.data(); }
  const float* data() const { return storage_.data(); }
  std::span<float> values() { return {storage_.data(), size_}; }
  std::span<const float> values() const { return {storage_.data(), size_}; }
  float& operator[](size_t i) { return storage_[i]; }
  float operator[](size_t i) const { return storage_[i]; }

  // Sets the shape; keeps the allocation when it is large enough (contents unspecified).
  void reshape(const Shape& shape);
  void fill(float value);

 private:
  static constexpr size_t kTailPadding = 16;  // floats; >= XNN_EXTRA_BYTES / sizeof(float)
  Shape shape_;
  size_t size_ = 0;
  std::vector<float> storage_;
};

}  // namespace nl
