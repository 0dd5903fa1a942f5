// Layer's members that are not virtual or not trivial (core/layer.h). They live with the
// layers because their errors have the layers' form (layer_checks.h).
#include "core/layer.h"

#include "layers/layer_checks.h"

namespace nl {

double Layer::planned_parameters(const std::vector<Shape>& inputs) const {
  double n = 0.0;
  for (const ParamShape& p : param_shapes(inputs)) n += numel_double(p.shape);
  return n;
}

void Layer::create_params(const std::vector<Shape>& inputs) {
  params_.clear();  // output_shape (via param_shapes) checks inputs against existing parameters
  for (const ParamShape& p : param_shapes(inputs))
    params_.push_back({p.name, Tensor(p.shape, p.initial), Tensor(), p.trainable});
  params_dirty_ = true;
}

Param* Layer::find_param(const std::string& name) {
  for (Param& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void Layer::load_training_state(const nlohmann::json& state) {
  throw_layer_error(spec_, "keeps no training state, but was given " + state.dump());
}

}  // namespace nl
