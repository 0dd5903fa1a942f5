// mean_ensemble (src/ensemble.h): the merged model's probabilities are the softmax of the
// mean of its members' logits, computed here from the members run one by one; it survives
// a file round trip and folding; members that cannot be merged are refused by name.
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

Model member(uint64_t seed, size_t size = 20) {
  Model m(nl::make_architecture("tiny", size, 4), kClasses, nl::Preprocessing{0.3f, 0.2f, true});
  m.init_params(seed);
  // Non-trivial batch-norm statistics, so that folding and merging have something to keep.
  for (nl::ParamRef& p : m.parameters())
    if (p.param->name == "running_mean" || p.param->name == "running_var")
      for (float& v : p.param->value.values()) v = p.param->name == "running_var" ? 0.5f + 0.1f * float(seed % 7) : 0.05f;
  m.params_changed();
  return m;
}

// softmax of the mean of the members' logits, for a batch.
std::vector<double> expected_probabilities(Runtime& rt, std::vector<Model*> members, const Tensor& input) {
  const size_t n = input.dim(0), c = kClasses.size();
  std::vector<double> mean(n * c, 0.0);
  for (Model* m : members) {
    m->forward(rt, input, false);
    const Tensor& logits = m->logits();
    for (size_t i = 0; i < n * c; ++i) mean[i] += logits[i] / double(members.size());
  }
  std::vector<double> probs(n * c);
  for (size_t r = 0; r < n; ++r) {
    double peak = mean[r * c], sum = 0.0;
    for (size_t k = 1; k < c; ++k) peak = std::max(peak, mean[r * c + k]);
    for (size_t k = 0; k < c; ++k) sum += probs[r * c + k] = std::exp(mean[r * c + k] - peak);
    for (size_t k = 0; k < c; ++k) probs[r * c + k] /= sum;
  }
  return probs;
}

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
