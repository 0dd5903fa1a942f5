// Inverted dropout. Inference: identity. Training: each element is kept with probability
// 1 - rate and scaled by 1 / (1 - rate), so inference needs no rescaling. The random stream
// is deterministic: seeded from the layer name and a per-layer count of training steps, so
// a run repeats exactly and two dropout layers never share a mask. Plain loops (XNNPACK has
// no random operators).
#pragma once
#include <cstdint>
#include <vector>

#include "core/layer.h"

namespace nl {

class Dropout : public Layer {
 public:
  explicit Dropout(const LayerSpec& spec);
  Shape output_shape(const std::vector<Shape>& inputs) const override;
  void forward(Runtime& rt, const std::vector<const Tensor*>& in, Tensor& out, bool training) override;
  void backward(Runtime& rt, const std::vector<const Tensor*>& in, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override;

  // The training state is the number of training forwards so far (a JSON number): the next
  // one draws its mask from that stream.
  nlohmann::json training_state() const override { return step_; }
  void load_training_state(const nlohmann::json& state) override;

 private:
  uint64_t name_hash_;
  uint64_t step_ = 0;
  bool last_training_ = false;
  std::vector<float> mask_;  // 0 or 1/(1-rate) per element, from the last training forward
};

}  // namespace nl
