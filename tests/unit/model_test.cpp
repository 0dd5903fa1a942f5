// Model: architecture/preprocessing JSON round trip and rejection, a small ResNet-style
// network's gradients by finite differences (every parameter tensor and the input),
// folded() == unfolded in inference, any batch size, gradient accumulation, early stop,
// clone, counts.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>

#include "core/model.h"
#include "reference.h"

namespace {

using nl::Activation;
using nl::Architecture;
using nl::LayerSpec;
using nl::Model;
using nl::Runtime;
using nl::Shape;
using nl::Tensor;
using nlohmann::json;
namespace ref = nl::ref;

LayerSpec layer(const char* name, const char* type, std::vector<std::string> inputs = {}) {
  LayerSpec s;
  s.name = name;
  s.type = type;
  s.inputs = std::move(inputs);
  return s;
}
LayerSpec conv(const char* name, size_t filters, size_t kernel, size_t stride, size_t padding, bool bias = true) {
  LayerSpec s = layer(name, "conv2d");
  s.filters = filters;
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  s.bias = bias;
  return s;
}
LayerSpec pool(const char* name, const char* type, size_t kernel, size_t stride, size_t padding = 0) {
  LayerSpec s = layer(name, type);
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  return s;
}
LayerSpec dense(const char* name, size_t units) {
  LayerSpec s = layer(name, "dense");
  s.units = units;
  return s;
}

// conv -> bn -> relu -> conv -> bn -> add(skip) -> relu -> max_pool -> gap -> dense -> softmax
Architecture resnet() {
  Architecture a;
  a.height = 9;
  a.width = 7;
  a.channels = 2;
  a.layers = {conv("conv1", 4, 3, 1, 1),
              layer("bn1", "batch_norm"),
              layer("relu1", "relu"),
              conv("conv2", 4, 3, 1, 1, false),
              layer("bn2", "batch_norm"),
              layer("add", "add", {"bn2", "relu1"}),
              layer("relu2", "relu"),
              pool("pool", "max_pool", 2, 2),
              layer("gap", "global_avg_pool"),
              dense("fc", 3),
              layer("prob", "softmax")};
  return a;
}

const std::vector<std::string> kClasses = {"a", "b", "c"};

// Random weights and non-trivial batch-norm parameters and statistics.
void randomize(Model& m, uint64_t seed) {
  m.init_params(seed);
  for (nl::ParamRef& p : m.parameters()) {
    if (p.param->name == "gamma") ref::fill_uniform(p.param->value.values(), seed + 1, 0.5f, 1.5f);
    if (p.param->name == "beta") ref::fill_uniform(p.param->value.values(), seed + 2, -0.5f, 0.5f);
    if (p.param->name == "bias") ref::fill_uniform(p.param->value.values(), seed + 3, -0.2f, 0.2f);
    if (p.param->name == "running_mean") ref::fill_uniform(p.param->value.values(), seed + 4, -0.5f, 0.5f);
    if (p.param->name == "running_var") ref::fill_uniform(p.param->value.values(), seed + 5, 0.5f, 2.0f);
  }
  m.params_changed();
}

std::vector<double> doubles(const Tensor& t) { return ref::to_double(t.values()); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A vector, not a json: `json{x}` with one element is an array under GCC but a copy of x under
// clang (the wasm build), so single-layer lists must not go through a braced json.
json arch_json(const std::vector<json>& layers) {
  return {{"input", {{"height", 9}, {"width", 7}, {"channels", 1}}}, {"layers", json(layers)}};
}

// ---- whole-network finite differences ----

struct Net {
  Runtime& rt;
  Model& m;
  const Tensor& x;
  std::vector<size_t> labels;

  double loss() {
    m.forward(rt, x, true);
    const Tensor& z = m.logits();
    return ref::cross_entropy(z.dim(0), z.dim(1), doubles(z), labels);
  }
  // Which side of every ReLU kink and which max-pool winner the current forward sits on.
  std::vector<size_t> signature() {
    std::vector<size_t> sig;
    // The ReLUs' outputs, not their inputs': a training pass folds each into the layer before it.
    for (const char* name : {"relu1", "relu2"})
      for (float v : m.activation(m.layer_index(name)).values()) sig.push_back(v > 0.0f);
    const Tensor& pooled_in = m.activation(m.layer_index("relu2"));
    const ref::PoolGeometry g{pooled_in.dim(0), pooled_in.dim(1), pooled_in.dim(2), pooled_in.dim(3), 2, 2, 0};
    for (size_t i : ref::max_pool_argmax(g, doubles(pooled_in))) sig.push_back(i);
    return sig;
  }
  // Central difference of the loss in `value`; NaN when a kink lies within the step.
  double numeric(float& value, double eps) {
    const float keep = value;
    value = static_cast<float>(keep + eps);
    m.params_changed();
    const double plus = loss();
    const auto sig_plus = signature();
    value = static_cast<float>(keep - eps);
    m.params_changed();
    const double minus = loss();
    const auto sig_minus = signature();
    value = keep;
    m.params_changed();
    if (sig_plus != sig_minus) return NAN;
    return (plus - minus) / (2.0 * eps);
  }
};

}  // namespace

TEST_CASE("architecture JSON round trip") {
  Architecture a = resnet();
  a.layers[0].activation = Activation::relu;
  a.layers[1].epsilon = 1e-3f;
  a.layers[1].momentum = 0.05f;
  a.layers[5].activation = Activation::relu;
  a.layers[7] = pool("pool", "avg_pool", 3, 2, 1);
  LayerSpec drop = layer("drop", "dropout");
  drop.rate = 0.25f;
  a.layers.insert(a.layers.begin() + 9, drop);
  a.layers[10].bias = false;
  a.layers.insert(a.layers.begin(), layer("mirror", "flip", {"input"}));  // conv1 reads the mirrored image

  const json j = nl::to_json(a);
  CHECK(j["layers"][0] == json({{"name", "mirror"}, {"type", "flip"}, {"inputs", {"input"}}}));
  const Architecture b = nl::architecture_from_json(j);
  CHECK(nl::to_json(b) == j);
  CHECK(nl::architecture_from_json(json::parse(j.dump())).layers.size() == a.layers.size());
  REQUIRE(b.layers.size() == a.layers.size());
  CHECK(b.height == 9);
  CHECK(b.width == 7);
  CHECK(b.channels == 2);
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerSpec &x = a.layers[i], &y = b.layers[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    CHECK(x.type == y.type);
    CHECK(x.inputs == y.inputs);
    if (x.type == "conv2d") CHECK(x.filters == y.filters);
    if (x.type == "dense") CHECK(x.units == y.units);
    if (x.type == "conv2d" || x.type.find("pool") != std::string::npos) {
      CHECK(x.kernel == y.kernel);
      CHECK(x.stride == y.stride);
      CHECK(x.padding == y.padding);
    }
    if (x.type == "conv2d" || x.type == "dense") CHECK(x.bias == y.bias);
    CHECK(x.activation == y.activation);
    CHECK(x.rate == y.rate);
    if (x.type == "batch_norm") {
      CHECK(x.epsilon == y.epsilon);
      CHECK(x.momentum == y.momentum);
    }
  }
  // The model built from the parsed architecture works.
  Model m(b, kClasses);
  CHECK(m.layer_count() == a.layers.size());

  const nl::Preprocessing pre{0.25f, 0.5f};
  const nl::Preprocessing back = nl::preprocessing_from_json(nl::to_json(pre));
  CHECK(back.mean == 0.25f);
  CHECK(back.std == 0.5f);
  CHECK_FALSE(back.crop_to_head);
  CHECK(nl::preprocessing_from_json(nl::to_json(nl::Preprocessing{0.1f, 0.2f, true})).crop_to_head);
  // Models made before cropping existed have no "crop": they do not crop.
  CHECK_FALSE(nl::preprocessing_from_json({{"mean", 0.5}, {"std", 1}}).crop_to_head);
}

TEST_CASE("architecture JSON rejects bad input, naming the field") {
  const json conv1 = {{"name", "conv1"}, {"type", "conv2d"}, {"filters", 4}, {"kernel", 3}};
  auto with = [&](const char* key, json value) {
    json l = conv1;
    l[key] = std::move(value);
    return arch_json({l});
  };
  auto parse_error = [](const json& j) { return error_of([&] { nl::architecture_from_json(j); }); };

  CHECK(parse_error(arch_json({conv1, {{"name", "x"}, {"type", "lstm"}}})) ==
        "architecture.layers[1] ('x').type: unknown layer type 'lstm' (known: conv2d, dense, relu, max_pool, "
        "avg_pool, global_avg_pool, batch_norm, add, dropout, softmax, flip)");
  CHECK(parse_error(arch_json({conv1, {{"name", "r"}, {"type", "relu"}, {"inputs", {"nope"}}}})) ==
        "architecture.layers[1] ('r').inputs[0]: unknown input 'nope' (must be 'input' or the name of an earlier "
        "layer)");
  CHECK(parse_error(arch_json({{{"name", "r"}, {"type", "relu"}, {"inputs", {"later"}}},
                               {{"name", "later"}, {"type", "relu"}}})) ==
        "architecture.layers[0] ('r').inputs[0]: unknown input 'later' (must be 'input' or the name of an earlier "
        "layer)");
  CHECK(parse_error(with("kernel", 100)) == "architecture.layers[0] ('conv1').kernel: must be from 1 to 64, got 100");
  CHECK(parse_error(with("filters", -3)) == "architecture.layers[0] ('conv1').filters: must not be negative, got -3");
  CHECK(parse_error(with("filters", 70000)) ==
        "architecture.layers[0] ('conv1').filters: must be from 1 to 65536, got 70000");
  CHECK(parse_error(with("kernel", 3.5)) ==
        "architecture.layers[0] ('conv1').kernel: must be a non-negative integer, got number 3.5");
  CHECK(parse_error(with("kernel", "3")) ==
        "architecture.layers[0] ('conv1').kernel: must be a non-negative integer, got string \"3\"");
  CHECK(parse_error(with("padding", 3)) ==
        "architecture.layers[0] ('conv1').padding: must be smaller than the kernel (3), got 3");
  CHECK(parse_error(with("filter", 4)) ==
        "architecture.layers[0] ('conv1'): unknown field 'filter' for a conv2d layer (allowed: activation, bias, "
        "filters, inputs, kernel, name, padding, stride, type)");
  CHECK(parse_error(with("activation", "tanh")) ==
        "architecture.layers[0] ('conv1').activation: unknown activation 'tanh' (known: none, relu)");
  CHECK(parse_error(with("stride", 1e30)) ==
        "architecture.layers[0] ('conv1').stride: must be a non-negative integer, got number 1e+30");
  CHECK(parse_error(with("stride", 18446744073709551615ull)) ==
        "architecture.layers[0] ('conv1').stride: value 18446744073709551615 is absurdly large");
  CHECK(parse_error(arch_json({{{"name", "conv1"}, {"type", "conv2d"}, {"kernel", 3}}})) ==
        "architecture.layers[0] ('conv1'): missing field 'filters'");
  CHECK(parse_error(arch_json({{{"name", "r"}, {"type", "relu"}, {"activation", "relu"}}})) ==
        "architecture.layers[0] ('r'): unknown field 'activation' for a relu layer (allowed: inputs, name, type)");
  CHECK(parse_error(arch_json({{{"name", "f"}, {"type", "flip"}, {"kernel", 3}}})) ==
        "architecture.layers[0] ('f'): unknown field 'kernel' for a flip layer (allowed: inputs, name, type)");
  CHECK(parse_error(arch_json({conv1, conv1})) == "architecture.layers[1] ('conv1').name: duplicate layer name 'conv1'");
  CHECK(parse_error(arch_json({{{"name", "input"}, {"type", "relu"}}})) ==
        "architecture.layers[0] ('input').name: 'input' is reserved for the image");
  CHECK(parse_error(arch_json({{{"name", "a.b"}, {"type", "relu"}}})) ==
        "architecture.layers[0].name: 'a.b' is not a valid layer name (1 to 64 characters of A-Z a-z 0-9 _ -)");
  CHECK(parse_error(arch_json({{{"name", "sum"}, {"type", "add"}, {"inputs", {"input"}}}})) ==
        "architecture.layers[0] ('sum').inputs: a add layer takes 2 inputs, got 1");
  CHECK(parse_error(arch_json({{{"name", "d"}, {"type", "dropout"}, {"rate", 1.5}}})) ==
        "architecture.layers[0] ('d').rate: must be in [0, 1), got 1.500000");
  CHECK(parse_error(arch_json({})) == "architecture.layers: must contain at least one layer");
  CHECK(parse_error(json::array()) == "architecture: must be a JSON object, got array");
  CHECK(parse_error({{"input", {{"height", 5000}, {"width", 7}, {"channels", 1}}}, {"layers", json::array({conv1})}}) ==
        "architecture.input.height: must be from 1 to 4096, got 5000");
  CHECK(parse_error({{"input", {{"height", 9}, {"width", 7}}}, {"layers", json::array({conv1})}}) ==
        "architecture.input: missing field 'channels'");
  CHECK(parse_error({{"input", {{"height", 9}, {"width", 7}, {"channels", 1}}}, {"layers", json::array({conv1})}, {"x", 1}}) ==
        "architecture: unknown field 'x' (allowed: input, layers)");
  std::vector<json> many;
  for (int i = 0; i < 1001; ++i) many.push_back({{"name", "r" + std::to_string(i)}, {"type", "relu"}});
  CHECK(parse_error(arch_json(many)) == "architecture.layers: has 1001 layers, more than the limit of 1000");

  CHECK(error_of([] { nl::preprocessing_from_json({{"mean", 0.5}, {"std", 0}}); }) ==
        "preprocessing.std: must be positive, got 0.000000");
  CHECK(error_of([] { nl::preprocessing_from_json({{"mean", 0.5}}); }) == "preprocessing: missing field 'std'");
  CHECK(error_of([] { nl::preprocessing_from_json({{"mean", 0.5}, {"std", 1}, {"scale", 2}}); }) ==
        "preprocessing: unknown field 'scale' (allowed: crop, mean, std)");
  CHECK(error_of([] { nl::preprocessing_from_json({{"mean", 0.5}, {"std", 1}, {"crop", "brain"}}); }) ==
        "preprocessing.crop: must be \"head\" or \"none\", got \"brain\"");
  CHECK(error_of([] { nl::preprocessing_from_json({{"mean", 0.5}, {"std", 1}, {"crop", true}}); }) ==
        "preprocessing.crop: must be \"head\" or \"none\", got true");
}

TEST_CASE("Model rejects bad graphs: shapes, class count, budgets") {
  Architecture a = resnet();
  a.layers[3].filters = 8;  // conv2 -> bn2 now has 8 channels; relu1 has 4
  CHECK(error_of([&] { Model m(a, kClasses); }) ==
        "layer 'add' (add): input shapes [1,9,7,8] and [1,9,7,4] differ; add needs identical shapes");
  CHECK(error_of([] { Model m(resnet(), {"a", "b", "c", "d"}); }) ==
        "the model has 4 classes but its last layer 'prob' outputs 3 values per image");
  CHECK(error_of([] { Model m(resnet(), {"a", "b", "a"}); }) == "classes[2]: duplicate class name 'a'");
  Architecture no_head = resnet();
  no_head.layers.resize(7);
  CHECK(error_of([&] { Model m(no_head, kClasses); }) ==
        "the last layer 'relu2' outputs shape [1,9,7,4]; a classifier must output [batch, classes]");
  // A file asking for absurd sizes fails before anything large is allocated.
  Architecture huge;
  huge.height = huge.width = 2048;
  huge.layers = {dense("fc", 65536)};
  CHECK(error_of([&] { Model m(huge, {"x"}); }) ==
        "layer 'fc': the model would need more than 64M parameters (274877M up to this layer)");
  huge.layers = {conv("wide", 65536, 1, 1, 0), layer("gap", "global_avg_pool")};
  CHECK(error_of([&] { Model m(huge, {"x"}); }) ==
        "layer 'wide': the model's activations would exceed 256M floats per image (274882M up to this layer)");
  // Architectures built in code get the same field checks as parsed ones.
  Architecture bad_pool = resnet();
  bad_pool.layers[7].padding = 2;
  CHECK(error_of([&] { Model m(bad_pool, kClasses); }) ==
        "architecture.layers[7] ('pool').padding: must be smaller than the kernel (2), got 2");
}

TEST_CASE("a ResNet-style network's gradients match finite differences") {
  Runtime rt(1);
  Model m(resnet(), kClasses);
  randomize(m, 17);
  const Tensor x = ref::random_tensor({3, 9, 7, 2}, 18);
  Net net{rt, m, x, {0, 2, 1}};

  // Analytic: dLoss/dlogits = (softmax(logits) - onehot) / N for the mean cross-entropy.
  m.zero_grad();
  m.forward(rt, x, true);
  const Tensor& z = m.logits();
  CHECK(z.shape() == Shape{3, 3});
  const auto probs = ref::softmax(3, 3, doubles(z));
  const std::string prob_err = ref::mismatch(m.activation(m.layer_count() - 1).values(), probs, 1e-6, 1e-5);
  CHECK_MESSAGE(prob_err.empty(), prob_err);
  Tensor dlogits({3, 3});
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 3; ++c) dlogits[r * 3 + c] = static_cast<float>((probs[r * 3 + c] - (net.labels[r] == c)) / 3.0);
  m.backward(rt, dlogits, /*keep_all_gradients=*/true);

  const double eps = 2e-3;
  size_t checked = 0, skipped = 0;
  for (nl::ParamRef& p : m.parameters()) {
    if (!p.param->trainable) continue;
    CAPTURE(p.name);
    const size_t n = p.param->value.size();
    for (size_t s = 0; s < std::min<size_t>(6, n); ++s) {
      const size_t i = (s * 7919 + 3) % n;  // distinct for n <= 6 too
      CAPTURE(i);
      const double num = net.numeric(p.param->value[i], eps);
      if (std::isnan(num)) {
        ++skipped;
        continue;
      }
      ++checked;
      const double got = p.param->grad[i];
      CHECK_MESSAGE(std::fabs(got - num) <= std::max(2e-4, 1e-2 * std::fabs(num)),
                    "analytic " << got << ", numeric " << num);
    }
  }
  CHECK(checked > 3 * skipped);
  CHECK(checked >= 25);

  // The input gradient: the model's gradient at conv1's output, through conv1.
  m.forward(rt, x, true);
  m.backward(rt, dlogits, true);
  Tensor dx;
  m.layer(0).backward(rt, {&x}, m.activation(0), m.gradient(0), {&dx});
  REQUIRE(dx.shape() == x.shape());
  Tensor probe = x;
  Net probe_net{rt, m, probe, net.labels};
  size_t input_checked = 0;
  for (size_t s = 0; s < 12; ++s) {
    const size_t i = (s * 104729 + 5) % x.size();
    CAPTURE(i);
    const double num = probe_net.numeric(probe[i], eps);
    if (std::isnan(num)) continue;
    ++input_checked;
    CHECK_MESSAGE(std::fabs(dx[i] - num) <= std::max(2e-4, 1e-2 * std::fabs(num)),
                  "analytic " << dx[i] << ", numeric " << num);
  }
  CHECK(input_checked >= 8);
}

TEST_CASE("training passes fold each ReLU into the batch norm or add before it: same gradients, outputs kept where read") {
  // resnet(): bn1 -> relu1 and add -> relu2 fold (bn1 and add feed nothing else); bn2 feeds the add.
  Runtime rt(2);
  Model m(resnet(), kClasses);
  randomize(m, 27);
  const Tensor x = ref::random_tensor({3, 9, 7, 2}, 28);
  const Tensor dlogits = ref::random_tensor({3, 3}, 29);
  auto gradients = [&](bool keep_all) {
    m.zero_grad();
    m.forward(rt, x, true);
    m.backward(rt, dlogits, keep_all);
    std::vector<double> all;
    for (nl::ParamRef& p : m.parameters())
      for (float g : p.param->grad.values()) all.push_back(g);
    return all;
  };
  // Asked for every gradient, the ReLU's backward runs and the producer masks again: the same bits.
  const std::vector<double> folded = gradients(false);
  CHECK(error_of([&] { m.gradient(m.layer_index("bn1")); }).find("the gradient at layer 'bn1' was not computed") == 0);
  const std::vector<double> kept = gradients(true);
  CHECK(folded == kept);
  const Tensor& relu_out = m.activation(m.layer_index("relu1"));
  const Tensor& bn_grad = m.gradient(m.layer_index("bn1"));
  const Tensor& relu_grad = m.gradient(m.layer_index("relu1"));
  REQUIRE(bn_grad.shape() == relu_grad.shape());
  for (size_t i = 0; i < bn_grad.size(); ++i) CHECK(bn_grad[i] == (relu_out[i] > 0.0f ? relu_grad[i] : 0.0f));
  // The folded layers' own outputs are not kept by a training pass, and saying so beats stale values.
  CHECK(error_of([&] { m.activation(m.layer_index("bn1")); }).find("the output of layer 'bn1' was not kept") == 0);
  CHECK(error_of([&] { m.activation(m.layer_index("add")); }).find("the output of layer 'add' was not kept") == 0);
  // An inference pass keeps every output, and the ReLU's is max(0, its input).
  m.forward(rt, x, false);
  const Tensor& bn = m.activation(m.layer_index("bn1"));
  const Tensor& relu = m.activation(m.layer_index("relu1"));
  for (size_t i = 0; i < bn.size(); ++i) CHECK(relu[i] == std::max(bn[i], 0.0f));
  // A training pass's folded ReLU outputs against naive loops: relu1 = max(0, batch norm of
  // conv1's output with the batch's statistics), relu2 = max(0, bn2 + relu1).
  m.forward(rt, x, true);
  const Tensor& c1 = m.activation(m.layer_index("conv1"));
  const size_t c = c1.dim(3), rows = c1.size() / c;
  const nl::Layer& bn1 = m.layer(m.layer_index("bn1"));
  std::vector<double> want1 = ref::batch_norm_train(rows, c, doubles(c1), doubles(bn1.params()[0].value),
                                                    doubles(bn1.params()[1].value), bn1.spec().epsilon);
  for (double& v : want1) v = std::max(v, 0.0);
  CHECK(ref::mismatch(m.activation(m.layer_index("relu1")).values(), want1, 1e-5, 1e-4) == "");
  const Tensor& bn2 = m.activation(m.layer_index("bn2"));
  const Tensor& r1 = m.activation(m.layer_index("relu1"));
  std::vector<double> want2(bn2.size());
  for (size_t i = 0; i < bn2.size(); ++i) want2[i] = std::max(static_cast<double>(bn2[i]) + r1[i], 0.0);
  CHECK(ref::mismatch(m.activation(m.layer_index("relu2")).values(), want2, 1e-6, 1e-6) == "");
}

TEST_CASE("folded() equals the unfolded model in inference") {
  Runtime rt(1);
  Model m(resnet(), kClasses);
  randomize(m, 23);
  const Model f = m.folded();
  std::vector<std::string> types;
  for (size_t i = 0; i < f.layer_count(); ++i) types.push_back(f.layer(i).spec().type);
  CHECK(types == std::vector<std::string>{"conv2d", "conv2d", "add", "max_pool", "global_avg_pool", "dense", "softmax"});
  const Model& fc = f;
  CHECK(fc.layer(fc.layer_index("conv1")).spec().activation == Activation::relu);
  CHECK(fc.layer(fc.layer_index("conv2")).spec().activation == Activation::none);
  CHECK(fc.layer(fc.layer_index("conv2")).spec().bias);  // had none; folding adds one
  CHECK(fc.layer(fc.layer_index("add")).spec().activation == Activation::relu);
  CHECK(fc.layer(fc.layer_index("add")).spec().inputs == std::vector<std::string>{"conv2", "conv1"});
  CHECK(f.parameter_count() == m.parameter_count() - 32 + 4);  // two BNs gone, conv2 gained a bias

  Model folded = m.folded();
  const Tensor x = ref::random_tensor({4, 9, 7, 2}, 24);
  const std::vector<double> want = doubles(m.forward(rt, x, false));
  const std::vector<double> want_logits = doubles(m.logits());
  const Tensor& got = folded.forward(rt, x, false);
  const std::string err = ref::mismatch(got.values(), want, 1e-5, 1e-4) +
                          ref::mismatch(folded.logits().values(), want_logits, 1e-4, 1e-4);
  CHECK_MESSAGE(err.empty(), err);

  // Nothing folds when the conv has a second consumer, or a ReLU sits between conv and BN.
  Architecture a;
  a.height = 6;
  a.width = 5;
  a.layers = {conv("c1", 3, 3, 1, 1), layer("bn", "batch_norm"), layer("sum", "add", {"bn", "c1"}),
              layer("r", "relu"), layer("bn2", "batch_norm"), layer("gap", "global_avg_pool"), dense("fc", 2)};
  Model m2(a, {"x", "y"});
  randomize(m2, 29);
  Model f2 = m2.folded();
  std::vector<std::string> types2;
  for (size_t i = 0; i < f2.layer_count(); ++i) types2.push_back(f2.layer(i).spec().type);
  CHECK(types2 == std::vector<std::string>{"conv2d", "batch_norm", "add", "batch_norm", "global_avg_pool", "dense"});
  const Tensor x2 = ref::random_tensor({3, 6, 5, 1}, 30);
  const std::vector<double> want2 = doubles(m2.forward(rt, x2, false));
  const std::string err2 = ref::mismatch(f2.forward(rt, x2, false).values(), want2, 1e-5, 1e-4);
  CHECK_MESSAGE(err2.empty(), err2);
}

TEST_CASE("forward in inference works at any batch size") {
  Runtime rt(1);
  Model m(resnet(), kClasses);
  randomize(m, 31);
  const Tensor x = ref::random_tensor({5, 9, 7, 2}, 32);
  const std::vector<double> all = doubles(m.forward(rt, x, false));
  for (size_t b : {size_t{1}, size_t{2}, size_t{5}, size_t{1}}) {
    CAPTURE(b);
    Tensor part({b, 9, 7, 2});
    std::copy(x.data(), x.data() + part.size(), part.data());
    const Tensor& out = m.forward(rt, part, false);
    CHECK(out.shape() == Shape{b, 3});
    const std::string err = ref::mismatch(out.values(), std::vector<double>(all.begin(), all.begin() + b * 3), 1e-6, 1e-5);
    CHECK_MESSAGE(err.empty(), err);
    CHECK(m.output_shape(m.layer_index("pool"), b) == Shape{b, 4, 3, 4});
  }
  // A multi-threaded runtime (one thread in a single-threaded wasm build) gives the same answer.
  Runtime rt2(2);
  const std::string threaded = ref::mismatch(m.forward(rt2, x, false).values(), all, 1e-6, 1e-5);
  CHECK_MESSAGE(threaded.empty(), threaded);
  CHECK(error_of([&] { m.forward(rt, Tensor({2, 9, 7, 1}), false); }) == "model input must be [N,9,7,2] with N >= 1, got [2,9,7,1]");
}

TEST_CASE("gradients add up where a node feeds several inputs; backward stops below trainable layers") {
  Runtime rt(1);
  Architecture a;
  a.height = 5;
  a.width = 4;
  a.layers = {conv("c", 3, 1, 1, 0), layer("twice", "add", {"c", "c"}), layer("gap", "global_avg_pool"),
              dense("fc", 2), layer("prob", "softmax")};
  Model m(a, {"x", "y"});
  randomize(m, 41);
  const Tensor x = ref::random_tensor({2, 5, 4, 1}, 42);
  m.forward(rt, x, true);
  CHECK(&m.logits() == &m.activation(3));
  const Tensor dlogits = ref::random_tensor({2, 2}, 43);
  m.backward(rt, dlogits, false);
  const Tensor& g_add = m.gradient(1);
  const Tensor& g_c = m.gradient(0);
  REQUIRE(g_c.size() == g_add.size());
  for (size_t i = 0; i < g_c.size(); ++i) CHECK(g_c[i] == doctest::Approx(2.0 * g_add[i]));
  CHECK(error_of([&] { m.gradient(4); }).find("the gradient at layer 'prob' was not computed") == 0);

  // Only the head trains: nothing below it is differentiated, frozen parameters get nothing.
  Model r(resnet(), kClasses);
  randomize(r, 44);
  for (size_t i = 0; i < r.layer_count(); ++i) r.layer(i).frozen = r.layer(i).spec().name != "fc";
  const Tensor xr = ref::random_tensor({2, 9, 7, 2}, 45);
  r.zero_grad();
  r.forward(rt, xr, true);
  std::vector<double> backward_ms;  // the per-layer profile: time only where backward ran
  r.backward(rt, ref::random_tensor({2, 3}, 46), false, &backward_ms);
  REQUIRE(backward_ms.size() == r.layer_count());
  for (size_t i = 0; i < r.layer_count(); ++i) {
    CAPTURE(r.layer(i).spec().name);
    CHECK(backward_ms[i] >= 0.0);
    if (i < r.layer_index("fc")) CHECK(backward_ms[i] == 0.0);
  }
  CHECK(backward_ms[r.layer_index("fc")] > 0.0);
  CHECK(r.gradient(r.layer_index("fc")).shape() == Shape{2, 3});
  CHECK_THROWS_AS(r.gradient(r.layer_index("gap")), std::logic_error);
  CHECK_THROWS_AS(r.gradient(0), std::logic_error);
  double fc_grad = 0.0, frozen_grad = 0.0;
  for (nl::ParamRef& p : r.parameters())
    for (float g : p.param->grad.values()) (p.layer->spec().name == "fc" ? fc_grad : frozen_grad) += std::fabs(g);
  CHECK(fc_grad > 0.0);
  CHECK(frozen_grad == 0.0);
  // Grad-CAM asks for everything: the gradient at a conv output is then available.
  r.backward(rt, ref::random_tensor({2, 3}, 46), true);
  CHECK(r.gradient(r.layer_index("conv2")).shape() == Shape{2, 9, 7, 4});
  CHECK(frozen_grad == 0.0);

  Model fresh(resnet(), kClasses);
  CHECK_THROWS_AS(fresh.backward(rt, Tensor({1, 3}), false), std::logic_error);
}

TEST_CASE("clone, parameters, counts") {
  Runtime rt(1);
  Model m(resnet(), kClasses, {0.1f, 0.2f});
  randomize(m, 51);
  m.training_record()["epochs"] = 3;
  m.layer(0).frozen = true;
  Model c = m.clone();
  CHECK(c.training_record() == m.training_record());
  CHECK(c.preprocessing().std == 0.2f);
  CHECK(c.layer(0).frozen);
  const Tensor x = ref::random_tensor({2, 9, 7, 2}, 52);
  const std::vector<double> want = doubles(m.forward(rt, x, false));
  CHECK(doubles(c.forward(rt, x, false)) == want);
  c.parameters()[0].param->value[0] += 1.0f;
  c.params_changed();
  CHECK(doubles(m.forward(rt, x, false)) == want);

  std::vector<std::string> names;
  for (const nl::ParamRef& p : m.parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"conv1.weight", "conv1.bias", "bn1.gamma", "bn1.beta", "bn1.running_mean",
                                          "bn1.running_var", "conv2.weight", "bn2.gamma", "bn2.beta",
                                          "bn2.running_mean", "bn2.running_var", "fc.weight", "fc.bias"});
  // conv1 3*3*2*4+4, bn 4*4 twice, conv2 3*3*4*4, fc 4*3+3.
  CHECK(m.parameter_count() == 76 + 16 + 144 + 16 + 15);
  CHECK(m.layer_index("gap") == 8);
  CHECK_THROWS_WITH_AS(m.layer_index("nope"), "the model has no layer named 'nope'", std::out_of_range);

  Architecture small;
  small.height = 4;
  small.width = 4;
  small.channels = 2;
  small.layers = {pool("p", "max_pool", 2, 2), layer("gap", "global_avg_pool"), layer("prob", "softmax")};
  Model s(small, {"x", "y"});
  CHECK(s.flops_per_image() == doctest::Approx(2 * 2 * 2 * 4 + 8 + 4 * 2));  // pool, gap, softmax
  CHECK(s.parameter_count() == 0);
}

TEST_CASE("the model's training state: every layer that keeps one, by name") {
  Runtime rt(1);
  Architecture a = resnet();
  LayerSpec drop = layer("drop", "dropout");
  drop.rate = 0.5f;
  a.layers.insert(a.layers.begin() + 9, drop);  // between gap and fc
  Model m(a, kClasses);
  randomize(m, 61);
  CHECK(m.training_state().dump() == R"({"drop":0})");
  const Tensor x = ref::random_tensor({2, 9, 7, 2}, 62);
  m.forward(rt, x, true);
  m.forward(rt, x, true);
  CHECK(m.training_state().dump() == R"({"drop":2})");
  CHECK(Model(resnet(), kClasses).training_state() == json::object());

  Model resumed = m.clone();  // parameters, not the training state
  CHECK(resumed.training_state().dump() == R"({"drop":0})");
  resumed.load_training_state(json::parse(m.training_state().dump()));
  CHECK(doubles(resumed.forward(rt, x, true)) == doubles(m.forward(rt, x, true)));

  CHECK_THROWS_WITH_AS(resumed.load_training_state(json::parse(R"({"nope":1})")), "the model has no layer named 'nope'",
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(resumed.load_training_state(json::parse(R"({"fc":1})")),
                       "layer 'fc' (dense): keeps no training state, but was given 1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(resumed.load_training_state(json::array()),
                       "layer training state must be a JSON object by layer name, got []", std::invalid_argument);
}
