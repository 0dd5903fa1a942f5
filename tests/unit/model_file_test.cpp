// Model file: save -> load is bit-exact; every malformed or inconsistent file is refused
// with a message naming what is wrong; loading never throws anything else.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "features/network_catalogue.h"
#include "formats/model_file.h"
#include "core/runtime.h"
#include "formats/safetensors.h"
#include "features/network_catalogue.h"

namespace {

using Bytes = std::vector<uint8_t>;
using nlohmann::json;

// A model file taken apart: metadata and owned tensors, to be changed and written again.
struct Parts {
  std::map<std::string, std::string> metadata;
  std::map<std::string, nl::Tensor> tensors;

  Bytes write() const {
    std::vector<nl::NamedTensor> named;
    for (const auto& [name, t] : tensors) named.push_back({name, &t});
    return nl::write_safetensors(named, metadata);
  }
  json arch() const { return json::parse(metadata.at("architecture")); }
  void set_arch(const json& j) { metadata["architecture"] = j.dump(); }
};

Parts parts_of(const Bytes& bytes) {
  const nl::SafetensorsFile f = nl::parse_safetensors(bytes);
  Parts p;
  p.metadata = f.metadata;
  for (const auto& e : f.tensors) p.tensors.emplace(e.name, e.to_tensor());
  return p;
}

// Rewrites the header JSON in place, keeping the data section as it is.
Bytes with_header(const Bytes& bytes, const std::function<void(json&)>& edit) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | bytes[i];
  json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  edit(header);
  const std::string text = header.dump();
  Bytes out;
  out.reserve(bytes.size() + text.size());  // one allocation (GCC 12 misjudges the growing
                                            // insert as -Warray-bounds)
  const uint64_t length = text.size();  // 64-bit: shifting a wasm32 size_t by 32+ is undefined
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(length >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), bytes.begin() + 8 + static_cast<long>(n), bytes.end());
  return out;
}

void expect_refused(const Bytes& bytes, const std::string& needle) {
  CAPTURE(needle);
  try {
    nl::load_model(bytes);
    FAIL("loaded a malformed model file");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find(needle) != std::string::npos);
  }
}

bool same_bits(const nl::Tensor& a, const nl::Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

nl::Tensor seeded_input(const nl::Model& m, size_t batch) {
  nl::Tensor x(m.input_shape(batch));
  uint32_t s = 99;
  for (float& v : x.values()) {
    s = s * 1664525u + 1013904223u;
    v = float(s >> 8) / float(1 << 24) * 2.0f - 1.0f;
  }
  return x;
}

}  // namespace

TEST_CASE("model file: save -> load is bit-exact (parameters, metadata, outputs)") {
  nl::Model model = nl::make_demo_model(21, 7);
  model.training_record() = {{"epochs", 3}, {"history", {{{"loss", 0.125}}, {{"loss", 0.0625}}}}};
  const Bytes bytes = nl::serialize_model(model);

  nl::Model loaded = nl::load_model(bytes);
  CHECK(nl::serialize_model(loaded) == bytes);
  CHECK(loaded.classes() == model.classes());
  CHECK(nl::to_json(loaded.architecture()) == nl::to_json(model.architecture()));
  CHECK(loaded.preprocessing().mean == model.preprocessing().mean);
  CHECK(loaded.preprocessing().std == model.preprocessing().std);
  CHECK(loaded.training_record() == model.training_record());
  auto a = model.parameters(), b = loaded.parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(a[i].name == b[i].name);
    CHECK(same_bits(a[i].param->value, b[i].param->value));
  }

  nl::Runtime rt(1);
  const nl::Tensor x = seeded_input(model, 3);
  const nl::Tensor before = model.forward(rt, x, false);
  const nl::Tensor after = loaded.forward(rt, x, false);
  CHECK(same_bits(before, after));

  // The file is plain safetensors: tensors named <layer>.<param>, metadata as documented.
  const nl::SafetensorsFile f = nl::parse_safetensors(bytes);
  CHECK(f.metadata.at("format") == "neurolens/1");
  CHECK(json::parse(f.metadata.at("classes")) == json(nl::demo_classes()));
  REQUIRE(f.find("conv1.weight") != nullptr);
  CHECK(f.find("bn1.running_var") != nullptr);
  CHECK(f.find("fc.bias") != nullptr);
}

TEST_CASE("model file: F16 weights are half the size and give nearly the same outputs") {
  nl::Model model = nl::make_demo_model(21, 7);
  const Bytes f32 = nl::serialize_model(model);
  const Bytes f16 = nl::serialize_model(model, nl::Dtype::f16);
  size_t values = 0;
  for (const nl::ParamRef& p : model.parameters()) values += p.param->value.size();
  CHECK(f32.size() - f16.size() >= values * 2 - 64);  // headers differ by a few bytes
  nl::Model loaded = nl::load_model(f16);
  CHECK(nl::serialize_model(loaded, nl::Dtype::f16) == f16);  // stable once rounded
  auto a = model.parameters(), b = loaded.parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t k = 0; k < a[i].param->value.size(); ++k)
      CHECK(b[i].param->value[k] == nl::half_to_float(nl::float_to_half(a[i].param->value[k])));
  nl::Runtime rt(1);
  const nl::Tensor x = seeded_input(model, 3);
  const nl::Tensor before = model.forward(rt, x, false);
  const nl::Tensor after = loaded.forward(rt, x, false);
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i] == doctest::Approx(before[i]).epsilon(0.01));
  CHECK(loaded.training_record() == model.training_record());

  // A network far larger than the loader's size-guard slack loads from F16 too.
  nl::Model big(nl::make_architecture("resnet-xs", 32, 4), {"a", "b", "c", "d"});
  big.init_params(3);
  REQUIRE(big.parameter_count() > 500000);
  const Bytes big_f16 = nl::serialize_model(big, nl::Dtype::f16);
  CHECK(big_f16.size() < big.parameter_count() * 2 + 65536);
  CHECK(nl::load_model(big_f16).parameter_count() == big.parameter_count());
}

TEST_CASE("model file: save_model_file writes atomically and load_model_file reads it back") {
  const auto dir = std::filesystem::temp_directory_path() / ("neurolens_io_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "m.safetensors").string();
  nl::Model model = nl::make_demo_model(12, 3);
  nl::save_model_file(model, path);
  nl::save_model_file(model, path);  // overwriting an existing file works too
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK(nl::serialize_model(nl::load_model_file(path)) == nl::serialize_model(model));

  CHECK_THROWS_WITH_AS(nl::load_model_file((dir / "absent.safetensors").string()),
                       doctest::Contains("cannot open model file"), std::runtime_error);
  CHECK_THROWS_WITH_AS(nl::load_model_file(dir.string()), doctest::Contains("is a directory"), std::runtime_error);
  {
    std::ofstream(path, std::ios::binary) << "not a model";
  }
  CHECK_THROWS_WITH_AS(nl::load_model_file(path), doctest::Contains("m.safetensors: safetensors: header length"),
                       std::invalid_argument);
  CHECK_THROWS_AS(nl::save_model_file(model, (dir / "no" / "such" / "dir.safetensors").string()), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("model file: malformed framing is refused") {
  const Bytes good = nl::serialize_model(nl::make_demo_model(12, 3));
  expect_refused({}, "too short");
  expect_refused(Bytes(good.begin(), good.begin() + 100), "exceeds the");  // header cut
  expect_refused(Bytes(good.begin(), good.end() - 4), "exceed the data section");  // data cut
  Bytes longer = good;
  longer.push_back(0);
  expect_refused(longer, "data section is");
  Bytes bad_json = good;
  bad_json[9] = '!';
  expect_refused(bad_json, "not well-formed JSON");
  // Every truncation point fails cleanly (sampled: the file is a few thousand bytes).
  for (size_t n = 0; n < good.size(); n += 37) {
    CAPTURE(n);
    CHECK_THROWS_AS(nl::load_model(Bytes(good.begin(), good.begin() + static_cast<long>(n))), std::invalid_argument);
  }
}

TEST_CASE("model file: tensor entries must be F32, in bounds and tile the data") {
  const Bytes good = nl::serialize_model(nl::make_demo_model(12, 3));
  expect_refused(with_header(good, [](json& h) { h["conv2.weight"]["dtype"] = "F64"; }),
                 "tensor 'conv2.weight': dtype F64 is not supported (only F32, F16)");
  expect_refused(with_header(good, [](json& h) {
                   auto& o = h["fc.weight"]["data_offsets"];
                   o[1] = o[1].get<uint64_t>() + 1000000;
                 }),
                 "tensor 'fc.weight': data_offsets");
  expect_refused(with_header(good, [](json& h) {
                   // Move conv1.weight (stored after conv1.bias) onto conv1.bias's bytes.
                   const uint64_t begin = h["conv1.bias"]["data_offsets"][0];
                   const uint64_t len = h["conv1.weight"]["data_offsets"][1].get<uint64_t>() -
                                        h["conv1.weight"]["data_offsets"][0].get<uint64_t>();
                   h["conv1.weight"]["data_offsets"] = {begin, begin + len};
                 }),
                 "tensor 'conv1.weight': data_offsets [640,928] overlap tensor 'conv1.bias'");
}

TEST_CASE("model file: content must match the architecture") {
  const Bytes good = nl::serialize_model(nl::make_demo_model(12, 3));
  const Parts base = parts_of(good);

  {
    Parts p = base;
    p.tensors.erase("fc.bias");
    expect_refused(p.write(), "missing tensor 'fc.bias' (shape [4])");
  }
  {
    Parts p = base;
    p.tensors.emplace("fc.extra", nl::Tensor({2}));
    expect_refused(p.write(), "unexpected tensor 'fc.extra'");
  }
  {
    Parts p = base;
    const nl::Shape want = p.tensors.at("conv2.weight").shape();
    p.tensors["conv2.weight"] = nl::Tensor({want[0] + 1, want[1], want[2], want[3]});
    expect_refused(p.write(), "tensor 'conv2.weight' has shape [" + std::to_string(want[0] + 1));
    expect_refused(p.write(), "but the architecture needs " + nl::to_string(want));
  }
  {
    Parts p = base;
    p.tensors.at("bn2.gamma")[3] = std::numeric_limits<float>::quiet_NaN();
    expect_refused(p.write(), "tensor 'bn2.gamma' holds a non-finite value (nan) at index 3");
  }
  {
    Parts p = base;
    json a = p.arch();
    for (auto& l : a["layers"])
      if (l["name"] == "conv2") l["type"] = "conv3d";
    p.set_arch(a);
    expect_refused(p.write(), "unknown layer type 'conv3d'");
  }
  {
    Parts p = base;
    json a = p.arch();
    for (auto& l : a["layers"])
      if (l["name"] == "conv1") l["filters"] = 9;
    p.set_arch(a);
    expect_refused(p.write(), "tensor 'conv1.weight' has shape [8,3,3,1] but the architecture needs [9,3,3,1]");
  }
  {
    Parts p = base;
    p.metadata.erase("format");
    expect_refused(p.write(), "not a NeuroLens model: __metadata__ has no 'format'");
    p.metadata["format"] = "neurolens/2";
    expect_refused(p.write(), "unsupported format 'neurolens/2'");
  }
  for (const char* key : {"architecture", "preprocessing", "classes"}) {
    Parts p = base;
    p.metadata.erase(key);
    expect_refused(p.write(), std::string("__metadata__ has no '") + key + "'");
    p.metadata[key] = "{";
    expect_refused(p.write(), "not well-formed JSON");
  }
  {
    Parts p = base;
    p.metadata["architecture"] = std::string(50000, '[');
    expect_refused(p.write(), "nests deeper than");
  }
  {
    Parts p = base;
    p.metadata["classes"] = R"(["glioma","meningioma","glioma","pituitary"])";
    expect_refused(p.write(), "class 'glioma' appears twice");
    p.metadata["classes"] = R"(["glioma","","notumor","pituitary"])";
    expect_refused(p.write(), "classes[1] is empty");
    p.metadata["classes"] = R"(["glioma",3,"notumor","pituitary"])";
    expect_refused(p.write(), "classes[1] is not a string");
    p.metadata["classes"] = R"({"a":1})";
    expect_refused(p.write(), "'classes' is not a JSON array");
    p.metadata["classes"] = R"(["glioma","meningioma","notumor"])";
    expect_refused(p.write(), "3 classes");
  }
  {
    Parts p = base;
    p.metadata["training"] = "[1]";
    expect_refused(p.write(), "'training' is not a JSON object");
    p.metadata.erase("training");
    CHECK(nl::load_model(p.write()).training_record() == json::object());
  }
}

TEST_CASE("model file: a small file claiming a huge architecture is refused before allocating") {
  // 60000 dense units on a 32x32 image, then 4: ~62M parameters (within the runtime's own
  // limits), claimed by a file of a few hundred bytes.
  nl::Architecture arch;
  arch.height = arch.width = 32;
  nl::LayerSpec fc;
  fc.name = "fc";
  fc.type = "dense";
  fc.units = 60000;
  arch.layers.push_back(fc);
  fc.name = "fc2";
  fc.units = 4;
  arch.layers.push_back(fc);
  std::vector<std::string> classes;
  for (int i = 0; i < 4; ++i) classes.push_back("c" + std::to_string(i));
  const std::map<std::string, std::string> metadata{{"format", "neurolens/1"},
                                                    {"architecture", nl::to_json(arch).dump()},
                                                    {"classes", json(classes).dump()},
                                                    {"preprocessing", nl::to_json(nl::Preprocessing{}).dump()}};
  const Bytes bytes = nl::write_safetensors({}, metadata);
  CHECK(bytes.size() < 1000);
  expect_refused(bytes, "the architecture needs about 61740004 parameter values but the file holds only 0");
}

TEST_CASE("model file: random corruption never escapes as anything but invalid_argument") {
  const Bytes good = nl::serialize_model(nl::make_demo_model(8, 5));
  uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | good[i];
  uint32_t s = 2024;
  auto next = [&] { return s = s * 1664525u + 1013904223u; };
  int loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    Bytes bad = good;
    for (int k = 0; k < 3; ++k) bad[8 + next() % header] = static_cast<uint8_t>(next() >> 24);
    try {
      nl::load_model(bad);
      ++loaded;  // e.g. a digit changed inside a float that stays valid
    } catch (const std::invalid_argument&) {
    }
  }
  CHECK(loaded < 400);
}
