#include "layers/dropout.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "layers/layer_checks.h"

namespace nl {

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

Dropout::Dropout(const LayerSpec& spec) : Layer(spec), name_hash_(fnv1a(spec.name)) {
  if (!(spec_.rate >= 0.0f && spec_.rate < 1.0f))
    throw_layer_error(spec_, "rate must be in [0, 1), got " + std::to_string(spec_.rate));
}

Shape Dropout::output_shape(const std::vector<Shape>& inputs) const {
  expect_input_count(spec_, inputs, 1);
  if (inputs[0].empty() || numel(inputs[0]) == 0)
    throw_layer_error(spec_, "input shape " + to_string(inputs[0]) + " is empty");
  return inputs[0];
}

void Dropout::load_training_state(const nlohmann::json& state) {
  if (!state.is_number_unsigned())
    throw_layer_error(spec_, "training state must be the number of training steps (an integer >= 0), got " +
                                 state.dump());
  step_ = state.get<uint64_t>();
}

void Dropout::forward(Runtime&, const std::vector<const Tensor*>& in, Tensor& out, bool training) {
  const Tensor& x = *in.at(0);
  out.reshape(output_shape({x.shape()}));
  last_training_ = training && spec_.rate > 0.0f;
  if (!last_training_) {
    std::copy(x.data(), x.data() + x.size(), out.data());
    if (training) ++step_;
    return;
  }
  // A distinct stream per (name, step): mix64(step) is the first output of a generator
  // started at `step`.
  Rng rng = Rng::with_state(name_hash_ ^ mix64(step_));
  ++step_;
  const float keep_scale = 1.0f / (1.0f - spec_.rate);
  // Compare 24-bit uniforms with the rate scaled to the same grid.
  const uint64_t threshold = static_cast<uint64_t>(std::llround(static_cast<double>(spec_.rate) * (1 << 24)));
  mask_.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint64_t u = rng.next() >> 40;  // uniform in [0, 2^24)
    mask_[i] = u >= threshold ? keep_scale : 0.0f;
    out[i] = x[i] * mask_[i];
  }
}

void Dropout::backward(Runtime&, const std::vector<const Tensor*>& in, const Tensor& out, const Tensor& dout,
                       const std::vector<Tensor*>& din) {
  expect_shape(spec_, dout.shape(), out.shape(), "output gradient");
  expect_shape(spec_, in.at(0)->shape(), out.shape(), "input");
  if (din.empty() || din[0] == nullptr) return;
  Tensor& dx = *din[0];
  dx.reshape(out.shape());
  if (!last_training_) {
    std::copy(dout.data(), dout.data() + dout.size(), dx.data());
    return;
  }
  if (mask_.size() != dout.size())
    throw_layer_error(spec_, "backward without a matching training forward (mask has " +
                                 std::to_string(mask_.size()) + " elements, gradient " +
                                 std::to_string(dout.size()) + ")");
  for (size_t i = 0; i < dout.size(); ++i) dx[i] = dout[i] * mask_[i];
}

}  // namespace nl
