// The optimizers (AdamW, i.e. Adam with decoupled weight decay, and SGD with Nesterov
// momentum and decoupled weight decay) and the learning-rate schedule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model.h"

namespace nl {

enum class OptimizerKind { adamw, sgd };
// "adamw" / "sgd"; parse throws std::invalid_argument naming the unknown name.
const char* optimizer_name(OptimizerKind kind);
OptimizerKind parse_optimizer(const std::string& name);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::adamw;
  double beta1 = 0.9;         // AdamW: decay of the first moment
  double beta2 = 0.999;       // AdamW: decay of the second moment
  double epsilon = 1e-8;      // AdamW
  double momentum = 0.9;      // SGD: v = momentum*v + g; step along g + momentum*v (Nesterov)
  double weight_decay = 0.0;  // decoupled: p -= lr * weight_decay * p, on weights only
  double max_grad_norm = 0.0; // > 0: gradients scaled so their global L2 norm is at most this
};

// Weight decay applies to the "weight" of conv2d and dense layers only: never to biases or
// batch-norm gamma/beta (decaying those only fights the normalisation).
bool is_decayed(const ParamRef& p);

// Per trainable parameter of the model, keyed by the parameter's file name
// ("<layer>.<param>"), the optimizer's state: Adam's first and second moments, or SGD's
// momentum buffer. Parameters of frozen layers and batch-norm running statistics are never
// touched.
class Optimizer {
 public:
  explicit Optimizer(OptimizerOptions options = {}) : options_(options) {}

  const OptimizerOptions& options() const { return options_; }
  uint64_t steps() const { return steps_; }

  // Applies one update with learning rate lr from the gradients in Param::grad, then
  // calls model.params_changed(). Returns the global gradient norm before clipping. The
  // element-wise update runs on rt's threads (the same result on any thread count).
  double step(Runtime& rt, Model& model, double lr);

  // State as named tensors ("adamw.m.<param>" and "adamw.v.<param>", or "sgd.m.<param>")
  // plus the step count, so a resumed run continues exactly.
  std::map<std::string, Tensor> state_tensors() const;
  // Restores the state; throws std::invalid_argument naming a tensor whose shape does not
  // match the model's parameter, a tensor for a parameter the model lacks, or one that
  // belongs to the other optimizer.
  void load_state(Model& model, const std::map<std::string, Tensor>& tensors,
                  uint64_t steps);

 private:
  struct Moments {
    Tensor m, v;  // SGD uses m (the momentum buffer) only
  };
  void update(Runtime& rt, const ParamRef& p, Moments& mo, double lr, double grad_scale) const;

  OptimizerOptions options_;
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
