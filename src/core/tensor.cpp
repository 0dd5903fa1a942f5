#include "core/tensor.h"

#include <algorithm>
#include <stdexcept>

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

size_t argmax(std::span<const float> values) {
  if (values.empty()) throw std::invalid_argument("argmax of no values");
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i)
    if (values[i] > values[best]) best = i;
  return best;
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
