#include "formats/model_file.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "formats/file_io.h"
#include "formats/safetensors.h"

namespace nl {

namespace {

constexpr const char* kFormat = "neurolens/1";

[[noreturn]] void fail(const std::string& message) {
  throw std::invalid_argument("model file: " + message);
}

const std::string& required_metadata(const SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) fail("__metadata__ has no '" + key + "'");
  return it->second;
}

// The parameter values the architecture needs, from the layer shapes alone (no allocation;
// in double, see Layer::planned_parameters). Model's constructor allocates every parameter,
// so a file claiming a huge architecture must be refused before it runs: loading may not
// allocate much more than the file's size. Stops at the first input it cannot resolve (the
// constructor then reports that error). The exact check, tensor by tensor, follows once the
// model exists.
double parameter_values_needed(const Architecture& arch) {
  std::map<std::string, Shape> shapes{{"input", Shape{1, arch.height, arch.width, arch.channels}}};
  Shape previous = shapes["input"];
  double total = 0.0;
  for (const LayerSpec& spec : arch.layers) {
    std::vector<Shape> inputs;
    if (spec.inputs.empty()) inputs.push_back(previous);
    for (const std::string& name : spec.inputs) {
      auto it = shapes.find(name);
      if (it == shapes.end()) return total;
      inputs.push_back(it->second);
    }
    const std::unique_ptr<Layer> layer = make_layer(spec);
    previous = layer->output_shape(inputs);
    total += layer->planned_parameters(inputs);
    shapes[spec.name] = previous;
  }
  return total;
}

std::vector<std::string> classes_from_json(const nlohmann::json& j) {
  if (!j.is_array()) fail("'classes' is not a JSON array");
  std::vector<std::string> classes;
  std::set<std::string> seen;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) fail("classes[" + std::to_string(i) + "] is not a string");
    std::string name = j[i].get<std::string>();
    if (name.empty()) fail("classes[" + std::to_string(i) + "] is empty");
    if (!seen.insert(name).second) fail("class '" + name + "' appears twice");
    classes.push_back(std::move(name));
  }
  if (classes.empty()) fail("'classes' is empty");
  return classes;
}

// No early exit and no branch on the data, so the loop vectorises: the loader checks every
// value of a model, and the position of a bad one is looked for only when there is one.
bool all_finite(std::span<const float> values) {
  bool finite = true;
  for (float v : values) finite &= std::fabs(v) <= std::numeric_limits<float>::max();  // false for NaN
  return finite;
}

std::string param_name(const Layer& layer, const Param& p) { return layer.spec().name + "." + p.name; }

// The outlier detector's tensors: always F32 (a precision matrix's entries span more than
// F16's range), named apart from every "<layer>.<param>" by the reserved prefix.
constexpr const char* kClassMeans = "confidence.class_means";
constexpr const char* kPrecision = "confidence.precision";

void load_confidence(const SafetensorsFile& file, Model& model, std::set<std::string>& used) {
  auto it = file.metadata.find("confidence");
  if (it == file.metadata.end()) return;
  Confidence c;
  try {
    c = confidence_from_json(parse_untrusted_json(it->second, 8, "'confidence'"));
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  if (c.has_detector()) {
    for (const char* name : {kClassMeans, kPrecision}) {
      const SafetensorsEntry* entry = file.find(name);
      if (entry == nullptr) fail(std::string("confidence: missing tensor '") + name + "'");
      (name == kClassMeans ? c.class_means : c.precision) = entry->to_tensor();
      used.insert(name);
    }
  }
  try {
    model.set_confidence(std::move(c));
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
}

}  // namespace

std::vector<uint8_t> serialize_model(const Model& model, Dtype weights) {
  std::vector<NamedTensor> tensors;
  for (size_t i = 0; i < model.layer_count(); ++i) {
    const Layer& layer = model.layer(i);
    for (const Param& p : layer.params()) tensors.push_back({param_name(layer, p), &p.value, weights});
  }
  const Confidence& confidence = model.confidence();
  if (confidence.has_detector()) {
    tensors.push_back({kClassMeans, &confidence.class_means, Dtype::f32});
    tensors.push_back({kPrecision, &confidence.precision, Dtype::f32});
  }
  std::map<std::string, std::string> metadata{
      {"format", kFormat},
      {"architecture", to_json(model.architecture()).dump()},
      {"classes", nlohmann::json(model.classes()).dump()},
      {"preprocessing", to_json(model.preprocessing()).dump()},
      {"training", model.training_record().dump()},
  };
  if (confidence.temperature != 1.0 || confidence.uncertain_below != 0.0 || confidence.has_detector())
    metadata["confidence"] = to_json(confidence).dump();
  return write_safetensors(std::move(tensors), metadata);
}

Model load_model(std::span<const uint8_t> bytes) {
  const SafetensorsFile file = parse_safetensors(bytes);

  auto format = file.metadata.find("format");
  if (format == file.metadata.end())
    fail("not a NeuroLens model: __metadata__ has no 'format' (expected \"" +
         std::string(kFormat) + "\")");
  if (format->second != kFormat)
    fail("unsupported format '" + format->second + "' (expected \"" + kFormat + "\")");

  Architecture arch;
  Preprocessing pre;
  try {
    arch = architecture_from_json(
        parse_untrusted_json(required_metadata(file, "architecture"), 8, "'architecture'"));
  } catch (const std::invalid_argument& e) {
    fail(std::string("architecture: ") + e.what());
  }
  try {
    pre = preprocessing_from_json(
        parse_untrusted_json(required_metadata(file, "preprocessing"), 4, "'preprocessing'"));
  } catch (const std::invalid_argument& e) {
    fail(std::string("preprocessing: ") + e.what());
  }
  std::vector<std::string> classes =
      classes_from_json(parse_untrusted_json(required_metadata(file, "classes"), 2, "'classes'"));
  nlohmann::json training = nlohmann::json::object();
  if (auto it = file.metadata.find("training"); it != file.metadata.end()) {
    training = parse_untrusted_json(it->second, 32, "'training'");
    if (!training.is_object()) fail("'training' is not a JSON object");
  }

  uint64_t values_in_file = 0;
  for (const auto& t : file.tensors) values_in_file += t.bytes.size() / dtype_bytes(t.dtype);
  double needed = 0.0;
  try {
    needed = parameter_values_needed(arch);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  constexpr double kSlack = 1u << 16;  // a guard, not the exact check
  if (needed > static_cast<double>(values_in_file) + kSlack)  // printed capped: a double past 2^64 has no uint64
    fail("the architecture needs about " + std::to_string(static_cast<uint64_t>(std::min(needed, 1e19))) +
         " parameter values but the file holds only " + std::to_string(values_in_file));

  std::optional<Model> built;
  try {
    built.emplace(std::move(arch), std::move(classes), pre);
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  Model& model = *built;
  model.training_record() = std::move(training);

  std::set<std::string> used;
  for (ParamRef& ref : model.parameters()) {
    const SafetensorsEntry* entry = file.find(ref.name);
    Tensor& value = ref.param->value;
    if (entry == nullptr)
      fail("missing tensor '" + ref.name + "' (shape " + to_string(value.shape()) + ")");
    if (entry->shape != value.shape())
      fail("tensor '" + ref.name + "' has shape " + to_string(entry->shape) +
           " but the architecture needs " + to_string(value.shape()));
    entry->copy_to(value.values());
    if (!all_finite(value.values())) {
      const auto bad = std::find_if(value.values().begin(), value.values().end(), [](float v) { return !std::isfinite(v); });
      fail("tensor '" + ref.name + "' holds a non-finite value (" + std::to_string(*bad) +
           ") at index " + std::to_string(bad - value.values().begin()));
    }
    used.insert(ref.name);
  }
  load_confidence(file, model, used);
  for (const auto& t : file.tensors)
    if (!used.count(t.name)) fail("unexpected tensor '" + t.name + "' (not a parameter of the architecture)");
  model.params_changed();
  return std::move(model);
}

void save_model_file(const Model& model, const std::string& path, Dtype weights) {
  write_file_atomic(path, serialize_model(model, weights));
}

Model load_model_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, "model file");
  try {
    return load_model(bytes);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

}  // namespace nl
