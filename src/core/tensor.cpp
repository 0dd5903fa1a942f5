#include "core/tensor.h"

#include <algorithm>

namespace nl {

size_t numel(const Shape& shape) {
  size_t n = 1;
  for (size_t d : shape) n *= d;
  return n;
}

double numel_double(const Shape& shape) {
  double n = 1.0;
  for (size_t d : shape) n *= static_cast<double>(d);
  return n;
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor::Tensor(Shape shape, float fill_value) {
  reshape(shape);
  fill(fill_value);
}

void Tensor::reshape(const Shape& shape) {
  shape_ = shape;
  size_ = numel(shape);
  if (storage_.size() < size_ + kTailPadding) storage_.resize(size_ + kTailPadding);
}

void Tensor::fill(float value) { std::fill(storage_.begin(), storage_.begin() + size_, value); }

}  // namespace nl
