#include "features/ensemble.h"

#include <stdexcept>
#include <string>

namespace nl {

namespace {

[[noreturn]] void fail(size_t member, const std::string& what) {
  throw std::invalid_argument("merging models: member " + std::to_string(member + 1) + " " + what);
}

}  // namespace

Model mean_ensemble_of(const std::vector<EnsembleMember>& members) {
  if (members.size() < 2)
    throw std::invalid_argument("merging models: needs at least 2, got " + std::to_string(members.size()));
  for (size_t k = 0; k < members.size(); ++k)
    if (members[k].model == nullptr) fail(k, "is missing (null)");
  const Model& first = *members[0].model;
  Architecture arch;
  arch.height = first.architecture().height;
  arch.width = first.architecture().width;
  arch.channels = first.architecture().channels;
  std::vector<std::string> logits;  // each branch's scaled logits layer
  for (size_t k = 0; k < members.size(); ++k) {
    const Model& m = *members[k].model;
    const Architecture& a = m.architecture();
    if (a.height != arch.height || a.width != arch.width || a.channels != arch.channels)
      fail(k, "takes " + std::to_string(a.width) + "x" + std::to_string(a.height) + "x" +
                  std::to_string(a.channels) + " input, member 1 " + std::to_string(arch.width) + "x" +
                  std::to_string(arch.height) + "x" + std::to_string(arch.channels));
    if (m.classes() != first.classes()) fail(k, "has other classes than member 1 (or another order)");
    const Preprocessing& p = m.preprocessing();
    const Preprocessing& q = first.preprocessing();
    if (p.mean != q.mean || p.std != q.std || p.crop_to_head != q.crop_to_head)
      fail(k, "preprocesses images differently from member 1 (mean, std or cropping)");
    const Architecture named = explicit_inputs(a);
    const size_t n = named.layers.size();
    if (n < 2 || named.layers[n - 1].type != "softmax" || named.layers[n - 2].type != "dense" ||
        named.layers[n - 1].inputs[0] != named.layers[n - 2].name)
      fail(k, "does not end with a dense layer followed by softmax");
    const std::string prefix = "m" + std::to_string(k + 1) + "_";
    // What the branch reads as its image. Member layers are all renamed "m<k>_...", so
    // "flip_m<k>" cannot collide with one of them.
    std::string image = "input";
    if (members[k].flipped) {
      LayerSpec flip;
      flip.name = "flip_m" + std::to_string(k + 1);
      flip.type = "flip";
      flip.inputs = {"input"};
      arch.layers.push_back(flip);
      image = flip.name;
    }
    for (size_t i = 0; i + 1 < n; ++i) {  // all but the softmax
      LayerSpec s = named.layers[i];
      s.name = prefix + s.name;
      for (std::string& in : s.inputs) in = in == "input" ? image : prefix + in;
      arch.layers.push_back(std::move(s));
    }
    logits.push_back(prefix + named.layers[n - 2].name);
  }
  // Sum the scaled logits pairwise: mean_2 = l1 + l2, mean_3 = mean_2 + l3, ...
  std::string sum = logits[0];
  for (size_t k = 1; k < logits.size(); ++k) {
    LayerSpec add;
    add.name = "mean_logits" + (k + 1 < logits.size() ? "_" + std::to_string(k + 1) : std::string());
    add.type = "add";
    add.inputs = {sum, logits[k]};
    arch.layers.push_back(add);
    sum = add.name;
  }
  LayerSpec softmax;
  softmax.name = "softmax";
  softmax.type = "softmax";
  softmax.inputs = {sum};
  arch.layers.push_back(softmax);

  Model out(std::move(arch), first.classes(), first.preprocessing());
  size_t at = 0;
  nlohmann::json records = nlohmann::json::array();
  for (const EnsembleMember& member : members) {
    const Model& m = *member.model;
    if (member.flipped) ++at;  // the flip layer: no parameters
    const size_t n = m.layer_count();
    for (size_t i = 0; i + 1 < n; ++i, ++at) {
      const Layer& from = m.layer(i);
      Layer& to = out.layer(at);
      const bool logit_layer = i + 2 == n;
      for (size_t p = 0; p < from.params().size(); ++p) {
        Tensor value = from.params()[p].value;
        if (logit_layer)
          for (float& v : value.values()) v /= static_cast<float>(members.size());
        to.params()[p].value = std::move(value);
      }
      to.params_changed();
    }
    nlohmann::json record = m.training_record();
    if (member.flipped) {
      if (!record.is_object()) record = {{"record", record}};
      record["input_flipped"] = true;
    }
    records.push_back(std::move(record));
  }
  out.training_record() = {{"ensemble", records}};
  return out;
}

Model mean_ensemble(const std::vector<const Model*>& members) {
  std::vector<EnsembleMember> plain;
  for (const Model* m : members) plain.push_back({m, false});
  return mean_ensemble_of(plain);
}

Model flip_averaged(const std::vector<const Model*>& models) {
  if (models.empty()) throw std::invalid_argument("flip averaging: needs at least 1 model, got 0");
  // The models first, then their mirror images: a model that cannot be merged is refused
  // as "member <its position>" (each mirror image repeats a model already checked).
  std::vector<EnsembleMember> members;
  for (const Model* m : models) members.push_back({m, false});
  for (const Model* m : models) members.push_back({m, true});
  return mean_ensemble_of(members);
}

Model flip_averaged(const Model& model) { return flip_averaged(std::vector<const Model*>{&model}); }

}  // namespace nl
