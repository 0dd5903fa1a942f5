#include "formats/onnx/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <limits>
#include <map>
#include <stdexcept>

namespace nl {

namespace {

using onnx::AttributeProto;
using onnx::NodeProto;
using onnx::TensorProto;

void set_ints(NodeProto* node, const char* name, std::initializer_list<int64_t> values) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_int(NodeProto* node, const char* name, int64_t value) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::INT);
  a->set_i(value);
}

void set_float(NodeProto* node, const char* name, float value) {
  AttributeProto* a = node->add_attribute();
  a->set_name(name);
  a->set_type(AttributeProto::FLOAT);
  a->set_f(value);
}

class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto* g) : g_(g) {}

  NodeProto* node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                  const std::string& output) {
    NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  // A float initializer from values already in ONNX's layout.
  void initializer(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& values) {
    TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    // raw_data is little-endian float32, which is this machine's layout (x86-64, wasm).
    t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  }

  // An int64 vector initializer (Slice's starts, ends, axes and steps).
  void int_initializer(const std::string& name, const std::vector<int64_t>& values) {
    TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }

  // A fused ReLU after `op` when the layer asks for one: op writes "<name>_linear", Relu "<name>".
  std::string pre_activation(const LayerSpec& spec) const {
    return spec.activation == Activation::relu ? spec.name + "_linear" : spec.name;
  }
  void activation(const LayerSpec& spec) {
    if (spec.activation == Activation::relu) node("Relu", spec.name + "_relu", {spec.name + "_linear"}, spec.name);
  }

 private:
  onnx::GraphProto* g_;
};

const Param& param(Layer& layer, const std::string& name) {
  for (const Param& p : layer.params())
    if (p.name == name) return p;
  throw std::invalid_argument("ONNX export: layer '" + layer.spec().name + "' has no parameter '" + name + "'");
}

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.values().begin(), t.values().end()); }

std::vector<int64_t> dims(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

}  // namespace

std::string model_to_onnx(Model& model) {
  const Architecture arch = explicit_inputs(model.architecture());
  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("NeuroLens");
  m.set_model_version(1);
  onnx::OperatorSetIdProto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  auto meta = [&](const std::string& key, const std::string& value) {
    onnx::StringStringEntryProto* e = m.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  };
  meta("classes", nlohmann::json(model.classes()).dump());
  meta("preprocessing", to_json(model.preprocessing()).dump());
  meta("input_layout", "NCHW; the model's preprocessed input (grey in [0,1], cropped to the head when "
                       "crop_to_head, resized to HxW, then (x - mean) / std)");

  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("neurolens");
  GraphWriter w(g);
  auto tensor_info = [](onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> shape) {
    v->set_name(name);
    onnx::TypeProto_Tensor* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(TensorProto::FLOAT);
    onnx::TensorShapeProto* s = tt->mutable_shape();
    s->add_dim()->set_dim_param("N");
    for (int64_t d : shape) s->add_dim()->set_dim_value(d);
  };
  tensor_info(g->add_input(), "input",
              {static_cast<int64_t>(arch.channels), static_cast<int64_t>(arch.height), static_cast<int64_t>(arch.width)});

  // The rank of each value as ONNX holds it (4: NCHW, 2: [N, features]).
  std::map<std::string, size_t> rank = {{"input", 4}};
  std::string last;
  for (size_t i = 0; i < arch.layers.size(); ++i) {
    const LayerSpec& spec = arch.layers[i];
    Layer& layer = model.layer(i);
    const std::vector<std::string>& in = spec.inputs;
    const std::string& x = in.at(0);
    const int64_t k = static_cast<int64_t>(spec.kernel), s = static_cast<int64_t>(spec.stride),
                  p = static_cast<int64_t>(spec.padding);
    size_t out_rank = rank.at(x);
    if (spec.type == "conv2d") {
      // OHWI -> OIHW
      const Tensor& wt = param(layer, "weight").value;
      const size_t O = wt.dim(0), K = wt.dim(1), I = wt.dim(3);
      std::vector<float> oihw(wt.size());
      for (size_t o = 0; o < O; ++o)
        for (size_t y = 0; y < K; ++y)
          for (size_t xx = 0; xx < K; ++xx)
            for (size_t c = 0; c < I; ++c) oihw[((o * I + c) * K + y) * K + xx] = wt[((o * K + y) * K + xx) * I + c];
      w.initializer(spec.name + ".weight", {int64_t(O), int64_t(I), int64_t(K), int64_t(K)}, oihw);
      std::vector<std::string> inputs = {x, spec.name + ".weight"};
      if (spec.bias) {
        w.initializer(spec.name + ".bias", {int64_t(O)}, values(param(layer, "bias").value));
        inputs.push_back(spec.name + ".bias");
      }
      NodeProto* n = w.node("Conv", spec.name, inputs, w.pre_activation(spec));
      set_ints(n, "kernel_shape", {k, k});
      set_ints(n, "strides", {s, s});
      set_ints(n, "pads", {p, p, p, p});
      w.activation(spec);
    } else if (spec.type == "dense") {
      std::string flat = x;
      if (rank.at(x) == 4) {
        // Our dense flattens NHWC (h, w, c); ONNX tensors are NCHW: back to NHWC, then flatten.
        set_ints(w.node("Transpose", spec.name + "_to_nhwc", {x}, spec.name + "_nhwc"), "perm", {0, 2, 3, 1});
        NodeProto* f = w.node("Flatten", spec.name + "_flatten", {spec.name + "_nhwc"}, spec.name + "_flat");
        set_int(f, "axis", 1);
        flat = spec.name + "_flat";
      }
      const Tensor& wt = param(layer, "weight").value;
      w.initializer(spec.name + ".weight", dims(wt.shape()), values(wt));
      std::vector<std::string> inputs = {flat, spec.name + ".weight"};
      if (spec.bias) {
        w.initializer(spec.name + ".bias", dims(param(layer, "bias").value.shape()), values(param(layer, "bias").value));
        inputs.push_back(spec.name + ".bias");
      }
      NodeProto* n = w.node("Gemm", spec.name, inputs, w.pre_activation(spec));
      set_int(n, "transB", 1);  // weight is [units, in_features]
      w.activation(spec);
      out_rank = 2;
    } else if (spec.type == "relu") {
      w.node("Relu", spec.name, {x}, spec.name);
    } else if (spec.type == "max_pool" || spec.type == "avg_pool") {
      NodeProto* n = w.node(spec.type == "max_pool" ? "MaxPool" : "AveragePool", spec.name, {x}, spec.name);
      set_ints(n, "kernel_shape", {k, k});
      set_ints(n, "strides", {s, s});
      set_ints(n, "pads", {p, p, p, p});
      // avg_pool divides by the pixels a window covers (padding excluded): ONNX's
      // count_include_pad = 0, its default, said explicitly.
      if (spec.type == "avg_pool") set_int(n, "count_include_pad", 0);
    } else if (spec.type == "global_avg_pool") {
      w.node("GlobalAveragePool", spec.name + "_pool", {x}, spec.name + "_nc11");
      set_int(w.node("Flatten", spec.name, {spec.name + "_nc11"}, spec.name), "axis", 1);
      out_rank = 2;
    } else if (spec.type == "batch_norm") {
      std::vector<std::string> inputs = {x};
      for (const char* pname : {"gamma", "beta", "running_mean", "running_var"}) {
        const Tensor& t = param(layer, pname).value;
        w.initializer(spec.name + "." + pname, dims(t.shape()), values(t));
        inputs.push_back(spec.name + "." + pname);
      }
      set_float(w.node("BatchNormalization", spec.name, inputs, spec.name), "epsilon", spec.epsilon);
    } else if (spec.type == "add") {
      std::vector<std::string> inputs(in.begin(), in.end());
      if (inputs.size() != 2) throw std::invalid_argument("ONNX export: add layer '" + spec.name + "' has " + std::to_string(inputs.size()) + " inputs (2 supported)");
      w.node("Add", spec.name, inputs, w.pre_activation(spec));
      w.activation(spec);
    } else if (spec.type == "dropout") {
      w.node("Identity", spec.name, {x}, spec.name);  // inference: dropout passes through
    } else if (spec.type == "flip") {
      // Mirror left to right: the W axis of NCHW read backwards, from the last column (-1) past
      // the first (INT64_MIN, ONNX's "to the start" for a negative step).
      if (rank.at(x) != 4)
        throw std::invalid_argument("ONNX export: flip layer '" + spec.name + "' needs an image input [N,C,H,W]");
      const std::string prefix = spec.name + ".";
      w.int_initializer(prefix + "starts", {-1});
      w.int_initializer(prefix + "ends", {std::numeric_limits<int64_t>::min()});
      w.int_initializer(prefix + "axes", {3});
      w.int_initializer(prefix + "steps", {-1});
      w.node("Slice", spec.name, {x, prefix + "starts", prefix + "ends", prefix + "axes", prefix + "steps"}, spec.name);
    } else if (spec.type == "softmax") {
      w.node("Identity", spec.name + "_logits", {x}, "logits");
      set_int(w.node("Softmax", spec.name, {x}, spec.name), "axis", -1);
    } else {
      throw std::invalid_argument("ONNX export: layer '" + spec.name + "' of type '" + spec.type + "' has no ONNX form here");
    }
    rank[spec.name] = out_rank;
    last = spec.name;
  }
  const size_t classes = model.classes().size();
  w.node("Identity", "output", {last}, "probabilities");
  auto output_info = [&](const std::string& name) {
    onnx::ValueInfoProto* v = g->add_output();
    v->set_name(name);
    onnx::TypeProto_Tensor* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(TensorProto::FLOAT);
    tt->mutable_shape()->add_dim()->set_dim_param("N");
    tt->mutable_shape()->add_dim()->set_dim_value(static_cast<int64_t>(classes));
  };
  output_info("probabilities");
  if (arch.layers.back().type == "softmax") output_info("logits");

  try {
    onnx::checker::check_model(m);
    onnx::shape_inference::InferShapes(m);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("ONNX export: the ONNX checker rejects the graph: ") + e.what());
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) throw std::runtime_error("ONNX export: protobuf could not serialize the model");
  return bytes;
}

}  // namespace nl
