// mean_ensemble (src/ensemble.h): the merged model's probabilities are the softmax of the
// mean of its members' logits, computed here from the members run one by one; it survives
// a file round trip and folding; members that cannot be merged are refused by name.
// flip_averaged: the mean of a model's logits for the image and its mirror image, so an image
// and its mirror get the same probabilities; the same through folding, cloning and files.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "features/ensemble.h"
#include "core/model.h"
#include "formats/model_file.h"
#include "reference.h"
#include "features/network_catalogue.h"

namespace {

using nl::Model;
using nl::Runtime;
using nl::Tensor;
namespace ref = nl::ref;

const std::vector<std::string> kClasses = {"glioma", "meningioma", "notumor", "pituitary"};

Model member(uint64_t seed, size_t size = 20, size_t width = 0) {
  nl::Architecture arch = nl::make_architecture("tiny", size, 4);
  if (width != 0) arch.width = width;
  Model m(arch, kClasses, nl::Preprocessing{0.3f, 0.2f, true});
  m.init_params(seed);
  // Non-trivial batch-norm statistics, so that folding and merging have something to keep.
  for (nl::ParamRef& p : m.parameters())
    if (p.param->name == "running_mean" || p.param->name == "running_var")
      for (float& v : p.param->value.values()) v = p.param->name == "running_var" ? 0.5f + 0.1f * float(seed % 7) : 0.05f;
  m.params_changed();
  return m;
}

// Softmax over each row of logits [n, classes].
std::vector<double> softmax_rows(const std::vector<double>& mean, size_t n) {
  const size_t c = kClasses.size();
  std::vector<double> probs(n * c);
  for (size_t r = 0; r < n; ++r) {
    double peak = mean[r * c], sum = 0.0;
    for (size_t k = 1; k < c; ++k) peak = std::max(peak, mean[r * c + k]);
    for (size_t k = 0; k < c; ++k) sum += probs[r * c + k] = std::exp(mean[r * c + k] - peak);
    for (size_t k = 0; k < c; ++k) probs[r * c + k] /= sum;
  }
  return probs;
}

// The input batch [N,H,W,C] mirrored left to right.
Tensor mirrored(const Tensor& x) {
  const std::vector<double> m = ref::flip_width(x.dim(0), x.dim(1), x.dim(2), x.dim(3), ref::to_double(x.values()));
  Tensor t(x.shape());
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(m[i]);
  return t;
}

// The mean of the logits of each model run on its own input (a member seeing the mirror image
// is run on the mirrored batch here).
std::vector<double> mean_logits(Runtime& rt, const std::vector<std::pair<Model*, const Tensor*>>& runs) {
  std::vector<double> mean;
  for (const auto& [m, input] : runs) {
    m->forward(rt, *input, false);
    const Tensor& logits = m->logits();
    mean.resize(logits.size(), 0.0);
    for (size_t i = 0; i < logits.size(); ++i) mean[i] += logits[i] / double(runs.size());
  }
  return mean;
}

// softmax of the mean of the members' logits, for a batch.
std::vector<double> expected_probabilities(Runtime& rt, std::vector<Model*> members, const Tensor& input) {
  std::vector<std::pair<Model*, const Tensor*>> runs;
  for (Model* m : members) runs.push_back({m, &input});
  return softmax_rows(mean_logits(rt, runs), input.dim(0));
}

// A tensor's values, for ref::mismatch after the tensor has been overwritten.
std::vector<float> values_of(const Tensor& t) { return {t.values().begin(), t.values().end()}; }

}  // namespace

TEST_CASE("mean_ensemble: softmax of the mean of the members' logits, for 2 and 3 members") {
  Runtime rt(2);
  Model a = member(1), b = member(2), c = member(3);
  const Tensor input = ref::random_tensor(a.input_shape(3), 4, 0.0f, 1.0f);
  for (const std::vector<Model*>& members : {std::vector<Model*>{&a, &b}, std::vector<Model*>{&a, &b, &c}}) {
    CAPTURE(members.size());
    Model merged = nl::mean_ensemble(std::vector<const Model*>(members.begin(), members.end()));
    CHECK(merged.classes() == kClasses);
    CHECK(merged.preprocessing().crop_to_head);
    CHECK(merged.flops_per_image() == doctest::Approx(a.flops_per_image() * double(members.size())).epsilon(0.01));
    const std::vector<double> expected = expected_probabilities(rt, members, input);
    const Tensor& got = merged.forward(rt, input, false);
    CHECK_MESSAGE(ref::mismatch(got.values(), expected, 1e-6, 1e-4) == "", ref::mismatch(got.values(), expected, 1e-6, 1e-4));
    // The same after folding batch norms (what the page and evaluate run) and a file round trip.
    Model folded = merged.folded();
    CHECK(ref::mismatch(folded.forward(rt, input, false).values(), expected, 1e-5, 1e-4) == "");
    Model loaded = nl::load_model(nl::serialize_model(merged));
    CHECK(ref::mismatch(loaded.forward(rt, input, false).values(), expected, 1e-6, 1e-4) == "");
    CHECK(loaded.training_record()["ensemble"].size() == members.size());
  }
}

TEST_CASE("mean_ensemble refuses members that cannot be merged, naming the member and why") {
  Model a = member(1);
  Model small = member(2, 16);
  Model other_classes(nl::make_architecture("tiny", 20, 4), {"a", "b", "c", "d"}, a.preprocessing());
  Model uncropped(nl::make_architecture("tiny", 20, 4), kClasses, nl::Preprocessing{0.3f, 0.2f, false});
  CHECK_THROWS_WITH_AS(nl::mean_ensemble({&a}), "merging models: needs at least 2, got 1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::mean_ensemble({&a, &small}),
                       "merging models: member 2 takes 16x16x1 input, member 1 20x20x1", std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::mean_ensemble({&a, &other_classes}),
                       doctest::Contains("member 2 has other classes"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::mean_ensemble({&a, &uncropped}),
                       doctest::Contains("member 2 preprocesses images differently"), std::invalid_argument);
  nl::Architecture headless = a.architecture();
  headless.layers.pop_back();  // ends with dense: no softmax
  Model no_softmax(headless, kClasses, a.preprocessing());
  CHECK_THROWS_WITH_AS(nl::mean_ensemble({&a, &no_softmax}),
                       doctest::Contains("member 2 does not end with a dense layer followed by softmax"),
                       std::invalid_argument);
}

TEST_CASE("flip_averaged: the mean of the logits for the image and its mirror; mirrored images agree") {
  Runtime rt(2);
  Model a = member(5, 20, 21);  // odd width: the middle column stays where it is
  a.training_record() = {{"note", "model a"}};
  const Model tta = nl::flip_averaged(a);

  // One graph: the branch of member 2 starts with a flip layer reading the image.
  const nl::Architecture named = nl::explicit_inputs(tta.architecture());
  const size_t flip = tta.layer_index("flip_m2");
  CHECK(named.layers[flip].type == "flip");
  CHECK(named.layers[flip].inputs == std::vector<std::string>{"input"});
  CHECK(named.layers[flip + 1].name == "m2_" + a.architecture().layers[0].name);
  CHECK(named.layers[flip + 1].inputs == std::vector<std::string>{"flip_m2"});
  CHECK(named.layers[0].inputs == std::vector<std::string>{"input"});  // member 1 sees the image
  CHECK(tta.parameter_count() == 2 * a.parameter_count());
  CHECK(tta.flops_per_image() == doctest::Approx(2.0 * a.flops_per_image()).epsilon(0.01));
  // The original's record is kept, the mirrored member's marked.
  const nlohmann::json& record = tta.training_record();
  REQUIRE(record["ensemble"].size() == 2);
  CHECK(record["ensemble"][0] == nlohmann::json({{"note", "model a"}}));
  CHECK(record["ensemble"][1] == nlohmann::json({{"note", "model a"}, {"input_flipped", true}}));

  const Tensor input = ref::random_tensor(a.input_shape(3), 6, 0.0f, 1.0f);
  const Tensor flipped = mirrored(input);
  // Its logits are the mean of the model's logits for the batch and for the mirrored batch.
  const std::vector<double> expected_logits = mean_logits(rt, {{&a, &input}, {&a, &flipped}});
  const std::vector<double> expected = softmax_rows(expected_logits, 3);
  const std::vector<double> expected_mirror = softmax_rows(mean_logits(rt, {{&a, &flipped}, {&a, &input}}), 3);

  Model copies[] = {tta.clone(), tta.folded(), nl::load_model(nl::serialize_model(tta)),
                    nl::load_model(nl::serialize_model(tta.folded()))};
  const char* names[] = {"as merged", "folded", "saved and loaded", "folded, saved and loaded"};
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(names[i]);
    Model& m = copies[i];
    CHECK(m.layer(m.layer_index("flip_m2")).spec().type == "flip");
    const std::vector<float> probs = values_of(m.forward(rt, input, false));
    if (i == 0) {
      const std::string err = ref::mismatch(m.logits().values(), expected_logits, 1e-5, 1e-5);
      CHECK_MESSAGE(err.empty(), err);
    }
    const std::string err = ref::mismatch(probs, expected, 1e-5, 1e-4);
    CHECK_MESSAGE(err.empty(), err);
    // The mirrored batch gets the same probabilities, image by image.
    const std::vector<float> probs_mirror = values_of(m.forward(rt, flipped, false));
    const std::string same = ref::mismatch(probs_mirror, ref::to_double(probs), 1e-5, 0.0);
    CHECK_MESSAGE(same.empty(), same);
    CHECK(ref::mismatch(probs_mirror, expected_mirror, 1e-5, 1e-4) == "");
    CHECK(m.training_record() == tta.training_record());
  }
  // The model alone does tell the image from its mirror (else the test above proves nothing).
  const std::vector<float> plain = values_of(a.forward(rt, input, false));
  CHECK(ref::mismatch(values_of(a.forward(rt, flipped, false)), ref::to_double(plain), 1e-4, 0.0) != "");
}

TEST_CASE("flip_averaged of several models, and a mean ensemble with one mirrored member") {
  Runtime rt(2);
  Model a = member(1), b = member(2);
  const Tensor input = ref::random_tensor(a.input_shape(2), 8, 0.0f, 1.0f);
  const Tensor flipped = mirrored(input);

  Model both = nl::flip_averaged({&a, &b});
  // Members m1, m2 see the image; m3, m4 (copies of a and b) see its mirror.
  CHECK(both.architecture().layers[both.layer_index("flip_m3")].type == "flip");
  CHECK(both.architecture().layers[both.layer_index("flip_m4")].type == "flip");
  CHECK_THROWS_AS(both.layer_index("flip_m1"), std::out_of_range);
  CHECK(both.training_record()["ensemble"].size() == 4);
  CHECK(both.training_record()["ensemble"][3]["input_flipped"] == true);
  CHECK_FALSE(both.training_record()["ensemble"][1].contains("input_flipped"));
  const std::vector<double> expected =
      softmax_rows(mean_logits(rt, {{&a, &input}, {&b, &input}, {&a, &flipped}, {&b, &flipped}}), 2);
  const std::vector<float> probs = values_of(both.forward(rt, input, false));
  CHECK(ref::mismatch(probs, expected, 1e-5, 1e-4) == "");
  CHECK(ref::mismatch(values_of(both.forward(rt, flipped, false)), ref::to_double(probs), 1e-5, 0.0) == "");

  // The general form: any member may see the mirror image.
  Model mixed = nl::mean_ensemble_of({{&a, false}, {&b, true}});
  CHECK(ref::mismatch(values_of(mixed.forward(rt, input, false)),
                      softmax_rows(mean_logits(rt, {{&a, &input}, {&b, &flipped}}), 2), 1e-5, 1e-4) == "");
  CHECK(mixed.layer_index("flip_m2") == a.layer_count() - 1);  // after member 1's branch (all but its softmax)
}

TEST_CASE("flip_averaged refuses what mean_ensemble refuses, naming the model") {
  Model a = member(1);
  Model small = member(2, 16);
  CHECK_THROWS_WITH_AS(nl::flip_averaged(std::vector<const Model*>{}), "flip averaging: needs at least 1 model, got 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::flip_averaged({&a, &small}), "merging models: member 2 takes 16x16x1 input, member 1 20x20x1",
                       std::invalid_argument);
  nl::Architecture headless = a.architecture();
  headless.layers.pop_back();
  Model no_softmax(headless, kClasses, a.preprocessing());
  CHECK_THROWS_WITH_AS(nl::flip_averaged(no_softmax),
                       doctest::Contains("member 1 does not end with a dense layer followed by softmax"),
                       std::invalid_argument);
}
