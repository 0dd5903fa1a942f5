// Architecture and Preprocessing <-> JSON, with strict validation: unknown or misspelt
// fields, wrong JSON types and out-of-range values are errors naming the field.
//
//   {"input": {"height": 128, "width": 128, "channels": 1},
//    "layers": [{"name": "conv1", "type": "conv2d", "filters": 16, "kernel": 3,
//                "stride": 1, "padding": 1, "bias": false, "activation": "none"},
//               {"name": "bn1", "type": "batch_norm", "epsilon": 1e-5, "momentum": 0.1},
//               {"name": "res", "type": "add", "inputs": ["a", "b"], "activation": "relu"}, ...]}
//
// A layer without "inputs" reads the previous layer (the image for the first one).
#include <cctype>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

#include "core/architecture.h"
#include "layers/registry.h"

namespace nl {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

std::string layer_where(size_t i, const std::string& name) {
  std::string where = "architecture.layers[" + std::to_string(i) + "]";
  if (!name.empty()) where += " ('" + name + "')";
  return where;
}

// Which optional/required fields each type has besides name, type and inputs.
struct TypeFields {
  const char* type;
  std::set<std::string> fields;
};
const std::vector<TypeFields>& type_fields() {
  static const std::vector<TypeFields> table = {
      {"conv2d", {"filters", "kernel", "stride", "padding", "bias", "activation"}},
      {"dense", {"units", "bias", "activation"}},
      {"relu", {}},
      {"max_pool", {"kernel", "stride", "padding"}},
      {"avg_pool", {"kernel", "stride", "padding"}},
      {"global_avg_pool", {}},
      {"batch_norm", {"epsilon", "momentum"}},
      {"add", {"activation"}},
      {"dropout", {"rate"}},
      {"softmax", {}},
      {"flip", {}},
  };
  return table;
}
const std::set<std::string>& fields_of(const std::string& type) {
  for (const TypeFields& t : type_fields())
    if (type == t.type) return t.fields;
  static const std::set<std::string> none;
  return none;
}

std::string join(const std::set<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s.empty() ? "none" : s;
}

void reject_unknown_fields(const json& obj, const std::set<std::string>& allowed, const std::string& where,
                           const std::string& context) {
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!allowed.count(it.key()))
      fail(where, "unknown field '" + it.key() + "'" + context + " (allowed: " + join(allowed) + ")");
}

const json& require(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, std::string("missing field '") + key + "'");
  return *it;
}

// Integers only (no 3.0, no "3", no booleans); capped so that 32-bit size_t cannot truncate.
size_t as_size(const json& v, const std::string& field) {
  constexpr uint64_t cap = 1u << 30;
  // Parsed text gives unsigned for non-negative integers; JSON built in code may hold a
  // positive value as signed.
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)
    fail(field, "must not be negative, got " + std::to_string(v.get<int64_t>()));
  if (v.is_number_integer()) {
    const uint64_t x = v.get<uint64_t>();
    if (x > cap) fail(field, "value " + std::to_string(x) + " is absurdly large");
    return static_cast<size_t>(x);
  }
  fail(field, std::string("must be a non-negative integer, got ") + v.type_name() + " " + v.dump());
}

float as_float(const json& v, const std::string& field) {
  if (!v.is_number()) fail(field, std::string("must be a number, got ") + v.type_name() + " " + v.dump());
  const double x = v.get<double>();
  if (!std::isfinite(x) || std::fabs(x) > 3e38) fail(field, "must be a finite number, got " + v.dump());
  return static_cast<float>(x);
}

bool as_bool(const json& v, const std::string& field) {
  if (!v.is_boolean()) fail(field, std::string("must be true or false, got ") + v.type_name() + " " + v.dump());
  return v.get<bool>();
}

std::string as_string(const json& v, const std::string& field) {
  if (!v.is_string()) fail(field, std::string("must be a string, got ") + v.type_name() + " " + v.dump());
  return v.get<std::string>();
}

Activation as_activation(const json& v, const std::string& field) {
  const std::string s = as_string(v, field);
  if (s == "none") return Activation::none;
  if (s == "relu") return Activation::relu;
  fail(field, "unknown activation '" + s + "' (known: none, relu)");
}

const char* activation_name(Activation a) { return a == Activation::relu ? "relu" : "none"; }

LayerSpec layer_from_json(const json& j, size_t index) {
  std::string where = layer_where(index, "");
  if (!j.is_object()) fail(where, std::string("must be an object, got ") + j.type_name());
  LayerSpec spec;
  spec.name = as_string(require(j, "name", where), where + ".name");
  where = layer_where(index, spec.name);
  spec.type = as_string(require(j, "type", where), where + ".type");
  if (!is_layer_type(spec.type)) {
    std::string known;
    for (const std::string& t : layer_types()) known += (known.empty() ? "" : ", ") + t;
    fail(where + ".type", "unknown layer type '" + spec.type + "' (known: " + known + ")");
  }
  std::set<std::string> allowed = fields_of(spec.type);
  for (const char* common : {"name", "type", "inputs"}) allowed.insert(common);
  reject_unknown_fields(j, allowed, where, " for a " + spec.type + " layer");

  if (auto it = j.find("inputs"); it != j.end()) {
    const std::string field = where + ".inputs";
    if (!it->is_array()) fail(field, std::string("must be an array of layer names, got ") + it->type_name());
    if (it->size() > 2) fail(field, "has " + std::to_string(it->size()) + " entries; layers take at most 2");
    for (size_t i = 0; i < it->size(); ++i)
      spec.inputs.push_back(as_string((*it)[i], field + "[" + std::to_string(i) + "]"));
  }
  const std::string t = spec.type;
  const bool windowed = t == "conv2d" || t == "max_pool" || t == "avg_pool";
  if (t == "conv2d") spec.filters = as_size(require(j, "filters", where), where + ".filters");
  if (t == "dense") spec.units = as_size(require(j, "units", where), where + ".units");
  if (windowed) {
    spec.kernel = as_size(require(j, "kernel", where), where + ".kernel");
    if (j.contains("stride")) spec.stride = as_size(j["stride"], where + ".stride");
    if (j.contains("padding")) spec.padding = as_size(j["padding"], where + ".padding");
  }
  if (j.contains("bias")) spec.bias = as_bool(j["bias"], where + ".bias");
  if (j.contains("activation")) spec.activation = as_activation(j["activation"], where + ".activation");
  if (t == "dropout") spec.rate = as_float(require(j, "rate", where), where + ".rate");
  if (j.contains("epsilon")) spec.epsilon = as_float(j["epsilon"], where + ".epsilon");
  if (j.contains("momentum")) spec.momentum = as_float(j["momentum"], where + ".momentum");
  return spec;
}

json layer_to_json(const LayerSpec& spec) {
  json j = json::object();
  j["name"] = spec.name;
  j["type"] = spec.type;
  if (!spec.inputs.empty()) j["inputs"] = spec.inputs;
  const std::set<std::string>& f = fields_of(spec.type);
  if (f.count("filters")) j["filters"] = spec.filters;
  if (f.count("units")) j["units"] = spec.units;
  if (f.count("kernel")) j["kernel"] = spec.kernel;
  if (f.count("stride")) j["stride"] = spec.stride;
  if (f.count("padding")) j["padding"] = spec.padding;
  if (f.count("bias")) j["bias"] = spec.bias;
  if (f.count("activation")) j["activation"] = activation_name(spec.activation);
  if (f.count("rate")) j["rate"] = spec.rate;
  if (f.count("epsilon")) j["epsilon"] = spec.epsilon;
  if (f.count("momentum")) j["momentum"] = spec.momentum;
  return j;
}

void check_range(size_t value, size_t lo, size_t hi, const std::string& field) {
  if (value < lo || value > hi)
    fail(field, "must be from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                    std::to_string(value));
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > ArchitectureLimits::max_name_length) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

void validate_layer_values(const LayerSpec& s, const std::string& where) {
  using L = ArchitectureLimits;
  const std::string& t = s.type;
  if (t == "conv2d") check_range(s.filters, 1, L::max_filters, where + ".filters");
  if (t == "dense") check_range(s.units, 1, L::max_filters, where + ".units");
  if (t == "conv2d" || t == "max_pool" || t == "avg_pool") {
    check_range(s.kernel, 1, L::max_kernel, where + ".kernel");
    check_range(s.stride, 1, L::max_kernel, where + ".stride");
    if (s.padding >= s.kernel)
      fail(where + ".padding", "must be smaller than the kernel (" + std::to_string(s.kernel) + "), got " +
                                   std::to_string(s.padding));
  }
  if (s.activation != Activation::none && t != "conv2d" && t != "dense" && t != "add")
    fail(where + ".activation", "only conv2d, dense and add layers have a fused activation");
  if (t == "dropout" && !(s.rate >= 0.0f && s.rate < 1.0f))
    fail(where + ".rate", "must be in [0, 1), got " + std::to_string(s.rate));
  if (t == "batch_norm") {
    if (!(s.epsilon > 0.0f && s.epsilon <= 1.0f))
      fail(where + ".epsilon", "must be in (0, 1], got " + std::to_string(s.epsilon));
    if (!(s.momentum >= 0.0f && s.momentum <= 1.0f))
      fail(where + ".momentum", "must be in [0, 1], got " + std::to_string(s.momentum));
  }
}

}  // namespace

void validate_architecture(const Architecture& arch) {
  using L = ArchitectureLimits;
  check_range(arch.height, 1, L::max_image_side, "architecture.input.height");
  check_range(arch.width, 1, L::max_image_side, "architecture.input.width");
  check_range(arch.channels, 1, L::max_channels, "architecture.input.channels");
  if (arch.layers.empty()) fail("architecture.layers", "must contain at least one layer");
  if (arch.layers.size() > L::max_layers)
    fail("architecture.layers", "has " + std::to_string(arch.layers.size()) + " layers, more than the limit of " +
                                    std::to_string(L::max_layers));
  std::set<std::string> defined;
  for (size_t i = 0; i < arch.layers.size(); ++i) {
    const LayerSpec& s = arch.layers[i];
    const std::string where = layer_where(i, valid_name(s.name) ? s.name : "");
    if (!valid_name(s.name))
      fail(where + ".name", "'" + s.name.substr(0, 80) + "' is not a valid layer name (1 to " +
                                std::to_string(L::max_name_length) + " characters of A-Z a-z 0-9 _ -)");
    if (s.name == "input") fail(where + ".name", "'input' is reserved for the image");
    if (defined.count(s.name)) fail(where + ".name", "duplicate layer name '" + s.name + "'");
    if (!is_layer_type(s.type)) {
      std::string known;
      for (const std::string& t : layer_types()) known += (known.empty() ? "" : ", ") + t;
      fail(where + ".type", "unknown layer type '" + s.type + "' (known: " + known + ")");
    }
    const size_t wanted = s.type == "add" ? 2 : 1;
    if (s.type == "add" ? s.inputs.size() != 2 : s.inputs.size() > 1)
      fail(where + ".inputs", "a " + s.type + " layer takes " + std::to_string(wanted) + " input" +
                                  (wanted == 1 ? "" : "s") + ", got " + std::to_string(s.inputs.size()));
    for (size_t k = 0; k < s.inputs.size(); ++k)
      if (s.inputs[k] != "input" && !defined.count(s.inputs[k]))
        fail(where + ".inputs[" + std::to_string(k) + "]",
             "unknown input '" + s.inputs[k].substr(0, 80) +
                 "' (must be 'input' or the name of an earlier layer)");
    validate_layer_values(s, where);
    defined.insert(s.name);
  }
}

Architecture explicit_inputs(const Architecture& arch) {
  Architecture a = arch;
  for (size_t i = 0; i < a.layers.size(); ++i)
    if (a.layers[i].inputs.empty()) a.layers[i].inputs = {i == 0 ? "input" : a.layers[i - 1].name};
  return a;
}

json to_json(const Architecture& arch) {
  json layers = json::array();
  for (const LayerSpec& spec : arch.layers) layers.push_back(layer_to_json(spec));
  return {{"input", {{"height", arch.height}, {"width", arch.width}, {"channels", arch.channels}}},
          {"layers", std::move(layers)}};
}

json to_json(const Preprocessing& pre) {
  return {{"mean", pre.mean}, {"std", pre.std}, {"crop", pre.crop_to_head ? "head" : "none"}};
}

Architecture architecture_from_json(const json& j) {
  if (!j.is_object()) fail("architecture", std::string("must be a JSON object, got ") + j.type_name());
  reject_unknown_fields(j, {"input", "layers"}, "architecture", "");
  Architecture arch;
  const json& input = require(j, "input", "architecture");
  if (!input.is_object())
    fail("architecture.input", std::string("must be an object, got ") + input.type_name());
  reject_unknown_fields(input, {"height", "width", "channels"}, "architecture.input", "");
  arch.height = as_size(require(input, "height", "architecture.input"), "architecture.input.height");
  arch.width = as_size(require(input, "width", "architecture.input"), "architecture.input.width");
  arch.channels = as_size(require(input, "channels", "architecture.input"), "architecture.input.channels");
  const json& layers = require(j, "layers", "architecture");
  if (!layers.is_array())
    fail("architecture.layers", std::string("must be an array, got ") + layers.type_name());
  if (layers.size() > ArchitectureLimits::max_layers)
    fail("architecture.layers", "has " + std::to_string(layers.size()) + " layers, more than the limit of " +
                                    std::to_string(ArchitectureLimits::max_layers));
  for (size_t i = 0; i < layers.size(); ++i) arch.layers.push_back(layer_from_json(layers[i], i));
  validate_architecture(arch);
  return arch;
}

Preprocessing preprocessing_from_json(const json& j) {
  if (!j.is_object()) fail("preprocessing", std::string("must be a JSON object, got ") + j.type_name());
  reject_unknown_fields(j, {"mean", "std", "crop"}, "preprocessing", "");
  Preprocessing pre;
  pre.mean = as_float(require(j, "mean", "preprocessing"), "preprocessing.mean");
  pre.std = as_float(require(j, "std", "preprocessing"), "preprocessing.std");
  if (!(pre.std > 0.0f)) fail("preprocessing.std", "must be positive, got " + std::to_string(pre.std));
  if (j.contains("crop")) {  // absent in models made before cropping existed
    const json& crop = j.at("crop");
    if (crop == "head") {
      pre.crop_to_head = true;
    } else if (crop != "none") {
      std::string shown = crop.dump();
      if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
      fail("preprocessing.crop", "must be \"head\" or \"none\", got " + shown);
    }
  }
  return pre;
}

}  // namespace nl
