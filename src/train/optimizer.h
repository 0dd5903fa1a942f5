// AdamW (Adam with decoupled weight decay) and the learning-rate schedule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model.h"

namespace nl {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;  // decoupled: p -= lr * weight_decay * p, on weights only
  double max_grad_norm = 0.0; // > 0: gradients scaled so their global L2 norm is at most this
};

// Weight decay applies to the "weight" of conv2d and dense layers only: never to biases or
// batch-norm gamma/beta (decaying those only fights the normalisation).
bool is_decayed(const ParamRef& p);

// One Adam state (first and second moment) per trainable parameter of the model, keyed by
// the parameter's file name ("<layer>.<param>"). Parameters of frozen layers and batch-norm
// running statistics are never touched.
class AdamW {
 public:
  explicit AdamW(AdamWOptions options = {}) : options_(options) {}

  const AdamWOptions& options() const { return options_; }
  uint64_t steps() const { return steps_; }

  // Applies one update with learning rate lr from the gradients in Param::grad, then
  // calls model.params_changed(). Returns the global gradient norm before clipping.
  double step(Model& model, double lr);

  // State as named tensors ("adamw.m.<param>", "adamw.v.<param>") plus the step count, so a
  // resumed run continues exactly.
  std::map<std::string, Tensor> state_tensors() const;
  // Restores the state; throws std::invalid_argument naming a tensor whose shape does not
  // match the model's parameter, or a moment tensor for a parameter the model lacks.
  void load_state(Model& model, const std::map<std::string, Tensor>& tensors,
                  uint64_t steps);

 private:
  struct Moments {
    Tensor m, v;
  };
  AdamWOptions options_;
  uint64_t steps_ = 0;
  std::map<std::string, Moments> moments_;
};

// Linear warm-up from base_lr / warmup_steps to base_lr over the first warmup_steps steps,
// then cosine decay to min_lr at total_steps (and min_lr after it).
struct LrSchedule {
  double base_lr = 1e-3;
  double min_lr = 0.0;
  size_t warmup_steps = 0;
  size_t total_steps = 1;
  double at(size_t step) const;
};

}  // namespace nl
