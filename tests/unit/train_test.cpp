// Training: loss and its gradient (finite differences), AdamW and SGD against hand-computed steps,
// the schedule, augmentation (determinism, identity, exact geometry), the duplicate-aware
// stratified split, a tiny network learning a synthetic task, checkpoint/resume reproducing
// an uninterrupted run bit for bit, and the cancel flag.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <span>
#include <set>
#include <stdexcept>
#include <string>

#include "formats/image.h"
#include "features/ensemble.h"
#include "core/model.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "reference.h"
#include "features/network_catalogue.h"
#include "train/augment.h"
#include "train/batches.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/loss.h"
#include "train/optimizer.h"
#include "train/plot.h"
#include "core/rng.h"
#include "train/trainer.h"
#include "train_synthetic.h"

namespace {

using namespace nl;
using nl::test::synthetic_shape;
namespace ref = nl::ref;

// Naive loss in double: -sum_j t_j log softmax(z)_j, averaged.
double reference_loss(const Tensor& z, const std::vector<int>& labels, double smoothing) {
  const size_t n = z.dim(0), c = z.dim(1);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t j = 0; j < c; ++j) sum += std::exp(static_cast<double>(z[i * c + j]));
    for (size_t j = 0; j < c; ++j) {
      const double t = (static_cast<size_t>(labels[i]) == j ? 1.0 - smoothing : 0.0) + smoothing / c;
      total -= t * (static_cast<double>(z[i * c + j]) - std::log(sum));
    }
  }
  return total / n;
}

Dataset synthetic_dataset(size_t per_class, size_t size, uint64_t seed) {
  Dataset data({"disc", "hbar", "vbar", "square"}, size, size);
  for (size_t k = 0; k < per_class; ++k)
    for (int c = 0; c < 4; ++c) {
      const uint64_t s = derive_seed(seed, {static_cast<uint64_t>(c), k});
      data.add_decoded("c" + std::to_string(c) + "/" + std::to_string(k), c, s,
                       synthetic_shape(c, size, s));
    }
  return data;
}

TrainOptions quiet_options(size_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 8;
  o.lr = 1e-2;
  o.min_lr = 1e-4;
  o.warmup_epochs = 1;
  o.weight_decay = 1e-4;
  o.label_smoothing = 0.0;
  o.augment = AugmentOptions{};
  o.seed = 7;
  return o;
}

std::vector<size_t> all_items(const Dataset& d) {
  std::vector<size_t> v(d.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = i;
  return v;
}

}  // namespace

TEST_CASE("softmax cross-entropy matches the naive loss and finite differences") {
  for (double smoothing : {0.0, 0.1}) {
    const size_t n = 3, c = 5;
    Tensor z = ref::random_tensor({n, c}, 11, -3.0f, 3.0f);
    const std::vector<int> labels = {4, 0, 2};
    Tensor dz;
    const double loss = softmax_cross_entropy(z, labels, static_cast<float>(smoothing), &dz);
    CHECK(loss == doctest::Approx(reference_loss(z, labels, smoothing)).epsilon(1e-9));
    std::vector<double> numeric(n * c);
    for (size_t i = 0; i < n * c; ++i) {
      const float keep = z[i];
      const float h = 1e-2f;
      z[i] = keep + h;
      const double up = reference_loss(z, labels, smoothing);
      z[i] = keep - h;
      const double down = reference_loss(z, labels, smoothing);
      z[i] = keep;
      numeric[i] = (up - down) / (2.0 * h);
    }
    const std::string bad = ref::mismatch(dz.values(), numeric, 1e-4, 1e-3);
    CHECK_MESSAGE(bad.empty(), bad);
    // Each row of dlogits sums to zero (softmax and target both sum to one).
    for (size_t i = 0; i < n; ++i) {
      double s = 0;
      for (size_t j = 0; j < c; ++j) s += dz[i * c + j];
      CHECK(std::fabs(s) < 1e-6);
    }
  }
}

TEST_CASE("softmax cross-entropy is stable for huge logits and checks its input") {
  Tensor z({2, 3});
  const float v[] = {1000.0f, 0.0f, -1000.0f, 5e4f, 5e4f, 5e4f};
  std::copy(v, v + 6, z.data());
  Tensor dz;
  const std::vector<int> labels = {0, 1};
  const double loss = softmax_cross_entropy(z, labels, 0.0f, &dz);
  CHECK(std::isfinite(loss));
  CHECK(loss == doctest::Approx(std::log(3.0) / 2).epsilon(1e-6));  // row 0 ~0, row 1 log 3
  for (float g : dz.values()) CHECK(std::isfinite(g));

  const std::vector<int> bad_label = {0, 3};
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, bad_label), doctest::Contains("label 3"),
                       std::invalid_argument);
  const std::vector<int> one = {0};
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, one), doctest::Contains("1 labels for a batch of 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(softmax_cross_entropy(z, labels, 1.0f), doctest::Contains("smoothing"),
                       std::invalid_argument);
  CHECK(count_correct(z, labels) == 1);  // row 1 is a three-way tie: the first class wins
}

TEST_CASE("accuracy helpers") {
  Tensor s({3, 3});
  const float v[] = {0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0.0f, 0.0f, 0.0f, 1.0f};
  std::copy(v, v + 9, s.data());
  CHECK(argmax_rows(s) == std::vector<int>{1, 0, 2});  // a tie picks the first
  const std::vector<int> labels = {1, 1, 2};
  CHECK(count_correct(s, labels) == 2);
  Tensor p = softmax_rows(s);
  for (size_t i = 0; i < 3; ++i) CHECK(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2] == doctest::Approx(1.0));
}

namespace {
Model dense_model(size_t side = 1, size_t channels = 3, size_t classes = 2) {
  Architecture a;
  a.height = side;
  a.width = side;
  a.channels = channels;
  LayerSpec fc;
  fc.name = "fc";
  fc.type = "dense";
  fc.units = classes;
  a.layers.push_back(fc);
  std::vector<std::string> names;
  for (size_t i = 0; i < classes; ++i) names.push_back("c" + std::to_string(i));
  return Model(a, names);
}
}  // namespace

TEST_CASE("AdamW and SGD updates over several chunks give the same bits on one and two threads") {
  // 9 x 9 x 13 inputs x 23 classes = 24219 weights: more than one chunk of the element-wise
  // update, the last one partial.
  for (OptimizerKind kind : {OptimizerKind::adamw, OptimizerKind::sgd}) {
    CAPTURE(optimizer_name(kind));
    std::vector<float> after[2];
    for (size_t t = 0; t < 2; ++t) {
      Runtime rt(t + 1);
      Model model = dense_model(9, 13, 23);
      OptimizerOptions o;
      o.kind = kind;
      Optimizer opt(o);
      for (uint64_t step = 0; step < 3; ++step) {
        for (const ParamRef& p : model.parameters())
          nl::ref::fill_uniform(p.param->gradient().values(), 90 + step, -1.0f, 1.0f);
        opt.step(rt, model, 0.01);
      }
      const std::span<const float> w = model.parameters()[0].param->value.values();
      REQUIRE(w.size() == 24219);
      after[t].assign(w.begin(), w.end());
    }
    CHECK(nl::ref::mismatch(after[1], nl::ref::to_double(after[0]), 0, 0) == "");
  }
}

TEST_CASE("AdamW steps match hand-computed values; biases are not decayed; frozen layers stay") {
  Runtime rt(2);  // the update runs element-wise on the runtime's threads
  Model model = dense_model();
  std::vector<ParamRef> params = model.parameters();
  REQUIRE(params.size() == 2);
  ParamRef& w = params[0];
  ParamRef& b = params[1];
  REQUIRE(w.name == "fc.weight");
  REQUIRE(b.name == "fc.bias");
  CHECK(is_decayed(w));
  CHECK_FALSE(is_decayed(b));
  const std::vector<float> w0 = {0.5f, -1.0f, 2.0f, 0.25f, 0.0f, -0.75f};
  const std::vector<float> b0 = {0.3f, -0.2f};
  const std::vector<float> g1 = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, 0.0f}, gb1 = {1.0f, -2.0f};
  const std::vector<float> g2 = {-0.3f, 0.1f, 0.2f, 0.6f, -0.5f, 0.05f}, gb2 = {0.5f, 0.25f};
  std::copy(w0.begin(), w0.end(), w.param->value.data());
  std::copy(b0.begin(), b0.end(), b.param->value.data());

  const double lr = 0.1, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  OptimizerOptions o;
  o.weight_decay = wd;
  Optimizer adam(o);
  // Hand computation in double, step by step.
  auto expect = [&](const std::vector<float>& p0, const std::vector<float>& ga,
                    const std::vector<float>& gb, bool decay) {
    std::vector<double> out;
    for (size_t i = 0; i < p0.size(); ++i) {
      double p = p0[i];
      double m = 0, v = 0;
      const float gs[2] = {ga[i], gb[i]};
      for (int t = 1; t <= 2; ++t) {
        const double g = gs[t - 1];
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        const double mhat = m / (1 - std::pow(b1, t)), vhat = v / (1 - std::pow(b2, t));
        if (decay) p -= lr * wd * p;
        p -= lr * mhat / (std::sqrt(vhat) + eps);
      }
      out.push_back(p);
    }
    return out;
  };
  std::copy(g1.begin(), g1.end(), w.param->gradient().data());
  std::copy(gb1.begin(), gb1.end(), b.param->gradient().data());
  adam.step(rt, model, lr);
  std::copy(g2.begin(), g2.end(), w.param->gradient().data());
  std::copy(gb2.begin(), gb2.end(), b.param->gradient().data());
  adam.step(rt, model, lr);
  CHECK(adam.steps() == 2);
  std::string bad = ref::mismatch(w.param->value.values(), expect(w0, g1, g2, true), 1e-6, 1e-5);
  CHECK_MESSAGE(bad.empty(), bad);
  bad = ref::mismatch(b.param->value.values(), expect(b0, gb1, gb2, false), 1e-6, 1e-5);
  CHECK_MESSAGE(bad.empty(), bad);

  // State round trip: a copy continues exactly like the original.
  Model twin = dense_model();
  for (size_t i = 0; i < 2; ++i) twin.parameters()[i].param->value = model.parameters()[i].param->value;
  Optimizer restored(o);
  restored.load_state(twin, adam.state_tensors(), adam.steps());
  for (Model* m : {&model, &twin}) {
    std::copy(g1.begin(), g1.end(), m->parameters()[0].param->gradient().data());
    std::copy(gb2.begin(), gb2.end(), m->parameters()[1].param->gradient().data());
  }
  adam.step(rt, model, 0.05);
  restored.step(rt, twin, 0.05);
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < model.parameters()[i].param->value.size(); ++k)
      CHECK(model.parameters()[i].param->value[k] == twin.parameters()[i].param->value[k]);

  // Frozen: nothing moves, not even by weight decay.
  model.layer(0).frozen = true;
  const Tensor before = model.parameters()[0].param->value;
  adam.step(rt, model, 0.1);
  for (size_t k = 0; k < before.size(); ++k) CHECK(model.parameters()[0].param->value[k] == before[k]);
}

TEST_CASE("AdamW clips the global gradient norm and rejects bad state") {
  Runtime rt(2);  // the update runs element-wise on the runtime's threads
  Model model = dense_model();
  for (ParamRef& p : model.parameters()) {
    p.param->value.fill(0.0f);
    p.param->gradient().fill(3.0f);  // 8 values: norm sqrt(72)
  }
  OptimizerOptions o;
  o.max_grad_norm = 1.0;
  Optimizer adam(o);
  CHECK(adam.step(rt, model, 0.1) == doctest::Approx(std::sqrt(72.0)));
  // The first Adam step moves every parameter by lr (sign of g), clipped or not.
  for (ParamRef& p : model.parameters())
    for (float v : p.param->value.values()) CHECK(v == doctest::Approx(-0.1).epsilon(1e-6));

  std::map<std::string, Tensor> state = adam.state_tensors();
  state["adamw.m.fc.weight"] = Tensor({3, 2});
  CHECK_THROWS_WITH_AS(adam.load_state(model, state, 1), doctest::Contains("adamw.m.fc.weight"),
                       std::invalid_argument);
  state = {{"adamw.m.nope.weight", Tensor({1})}};
  CHECK_THROWS_WITH_AS(adam.load_state(model, state, 1), doctest::Contains("names no trainable"),
                       std::invalid_argument);
}

TEST_CASE("SGD (Nesterov) steps match hand-computed values; its state round-trips") {
  Runtime rt(2);  // the update runs element-wise on the runtime's threads
  Model model = dense_model();
  std::vector<ParamRef> params = model.parameters();
  ParamRef& w = params[0];
  ParamRef& b = params[1];
  const std::vector<float> w0 = {0.5f, -1.0f, 2.0f, 0.25f, 0.0f, -0.75f}, b0 = {0.3f, -0.2f};
  const std::vector<float> g1 = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, 0.0f}, gb1 = {1.0f, -2.0f};
  const std::vector<float> g2 = {-0.3f, 0.1f, 0.2f, 0.6f, -0.5f, 0.05f}, gb2 = {0.5f, 0.25f};
  const std::vector<float> g3 = {0.7f, 0.0f, -0.1f, 0.2f, 0.3f, -0.6f}, gb3 = {-1.5f, 0.75f};
  std::copy(w0.begin(), w0.end(), w.param->value.data());
  std::copy(b0.begin(), b0.end(), b.param->value.data());

  const double lrs[3] = {0.1, 0.05, 0.02}, wd = 0.01, mu = 0.8;
  OptimizerOptions o;
  o.kind = OptimizerKind::sgd;
  o.momentum = mu;
  o.weight_decay = wd;
  Optimizer sgd(o);
  // PyTorch's SGD(nesterov=True) with decoupled decay, in double: v = mu v + g;
  // p = p (1 - lr wd) - lr (g + mu v).
  auto expect = [&](const std::vector<float>& p0, const std::vector<std::vector<float>>& gs,
                    bool decay) {
    std::vector<double> out;
    for (size_t i = 0; i < p0.size(); ++i) {
      double p = p0[i], v = 0;
      for (size_t t = 0; t < gs.size(); ++t) {
        const double g = gs[t][i];
        v = mu * v + g;
        if (decay) p -= lrs[t] * wd * p;
        p -= lrs[t] * (g + mu * v);
      }
      out.push_back(p);
    }
    return out;
  };
  auto set_grads = [](Model& m, const std::vector<float>& gw, const std::vector<float>& gb) {
    std::copy(gw.begin(), gw.end(), m.parameters()[0].param->gradient().data());
    std::copy(gb.begin(), gb.end(), m.parameters()[1].param->gradient().data());
  };
  set_grads(model, g1, gb1);
  sgd.step(rt, model, lrs[0]);
  set_grads(model, g2, gb2);
  sgd.step(rt, model, lrs[1]);
  CHECK(sgd.steps() == 2);

  // The state holds one momentum buffer per parameter and nothing of Adam's.
  const std::map<std::string, Tensor> state = sgd.state_tensors();
  CHECK(state.size() == 2);
  CHECK(state.count("sgd.m.fc.weight") == 1);
  CHECK(state.count("sgd.m.fc.bias") == 1);
  Model twin = dense_model();
  for (size_t i = 0; i < 2; ++i) twin.parameters()[i].param->value = model.parameters()[i].param->value;
  Optimizer restored(o);
  restored.load_state(twin, state, sgd.steps());
  set_grads(model, g3, gb3);
  set_grads(twin, g3, gb3);
  sgd.step(rt, model, lrs[2]);
  restored.step(rt, twin, lrs[2]);

  std::string bad = ref::mismatch(w.param->value.values(), expect(w0, {g1, g2, g3}, true), 1e-6, 1e-5);
  CHECK_MESSAGE(bad.empty(), bad);
  bad = ref::mismatch(b.param->value.values(), expect(b0, {gb1, gb2, gb3}, false), 1e-6, 1e-5);
  CHECK_MESSAGE(bad.empty(), bad);
  for (size_t i = 0; i < 2; ++i)
    for (size_t k = 0; k < model.parameters()[i].param->value.size(); ++k)
      CHECK(model.parameters()[i].param->value[k] == twin.parameters()[i].param->value[k]);

  // The other optimizer's state is refused by name, both ways.
  Optimizer adam{OptimizerOptions{}};
  CHECK_THROWS_WITH_AS(adam.load_state(model, state, 2), doctest::Contains("'sgd.m.fc.bias' for adamw"),
                       std::invalid_argument);
  std::map<std::string, Tensor> adam_state = {{"adamw.v.fc.bias", Tensor({2})}};
  CHECK_THROWS_WITH_AS(restored.load_state(model, adam_state, 2),
                       doctest::Contains("'adamw.v.fc.bias' for sgd"), std::invalid_argument);
  CHECK(parse_optimizer("sgd") == OptimizerKind::sgd);
  CHECK(parse_optimizer("adamw") == OptimizerKind::adamw);
  CHECK_THROWS_WITH_AS(parse_optimizer("adam"), doctest::Contains("unknown optimizer 'adam'"),
                       std::invalid_argument);
}

TEST_CASE("learning-rate schedule: linear warm-up then cosine to the minimum") {
  LrSchedule s{1.0, 0.1, 4, 14};
  CHECK(s.at(0) == doctest::Approx(0.25));
  CHECK(s.at(3) == doctest::Approx(1.0));
  CHECK(s.at(4) == doctest::Approx(1.0));
  CHECK(s.at(9) == doctest::Approx(0.55));  // halfway through the cosine
  CHECK(s.at(14) == doctest::Approx(0.1));
  CHECK(s.at(100) == doctest::Approx(0.1));
  for (size_t t = 4; t < 14; ++t) CHECK(s.at(t + 1) <= s.at(t));
}

TEST_CASE("augmentation: the MRI ranges scale with the strength") {
  const AugmentOptions base = AugmentOptions::mri(), strong = AugmentOptions::mri(1.5);
  CHECK(base.rotation_deg == 12.0);
  CHECK(strong.flip);
  CHECK(strong.rotation_deg == doctest::Approx(1.5 * base.rotation_deg));
  CHECK(strong.shift == doctest::Approx(1.5 * base.shift));
  CHECK(strong.scale == doctest::Approx(1.5 * base.scale));
  CHECK(strong.brightness == doctest::Approx(1.5 * base.brightness));
  CHECK(strong.contrast == doctest::Approx(1.5 * base.contrast));
  strong.validate();
  AugmentOptions::mri(2.0).validate();  // the strongest allowed is still a valid set of ranges
  const AugmentOptions flips_only = AugmentOptions::mri(0.0);
  CHECK(flips_only.flip);
  CHECK(flips_only.rotation_deg == 0.0);
  CHECK(flips_only.contrast == 0.0);
  CHECK_THROWS_WITH_AS(AugmentOptions::mri(2.5), "augmentation: strength 2.500000 is outside [0, 2]",
                       std::invalid_argument);
  CHECK_THROWS_AS(AugmentOptions::mri(-0.1), std::invalid_argument);
}

TEST_CASE("augmentation: identity at zero strength, deterministic for a seed, exact geometry") {
  const size_t w = 13, h = 9;
  Tensor src = ref::random_tensor({h, w}, 5, 0.0f, 1.0f);
  std::vector<float> out(w * h), out2(w * h);

  Rng rng(1);
  const AugmentParams id = sample_augment(AugmentOptions{}, w, h, rng);
  augment_image(src.data(), w, h, id, out.data());
  for (size_t i = 0; i < w * h; ++i) REQUIRE(out[i] == src[i]);

  // Same seed, same result; another seed, another result.
  const AugmentOptions strong = AugmentOptions::mri();
  Rng r1(42), r2(42), r3(43);
  augment_image(src.data(), w, h, sample_augment(strong, w, h, r1), out.data());
  augment_image(src.data(), w, h, sample_augment(strong, w, h, r2), out2.data());
  CHECK(out == out2);
  augment_image(src.data(), w, h, sample_augment(strong, w, h, r3), out2.data());
  CHECK(out != out2);
  for (float v : out) CHECK((v >= 0.0f && v <= 1.0f));

  // Mirror: exact.
  AugmentParams flip;
  flip.flip = true;
  augment_image(src.data(), w, h, flip, out.data());
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x) CHECK(out[y * w + x] == src[y * w + (w - 1 - x)]);

  // Whole-pixel shift: exact, black where the source is outside.
  AugmentParams shift;
  shift.shift_x = 2;
  shift.shift_y = -1;
  augment_image(src.data(), w, h, shift, out.data());
  for (long y = 0; y < static_cast<long>(h); ++y)
    for (long x = 0; x < static_cast<long>(w); ++x) {
      const long sx = x - 2, sy = y + 1;
      const float expect = (sx < 0 || sy >= static_cast<long>(h)) ? 0.0f : src[sy * w + sx];
      CHECK(out[y * w + x] == doctest::Approx(expect).epsilon(1e-6));
    }

  // Half-pixel shift: bilinear average of neighbours (naive reference).
  shift.shift_x = 0.5;
  shift.shift_y = 0;
  augment_image(src.data(), w, h, shift, out.data());
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 1; x < w; ++x)
      CHECK(out[y * w + x] == doctest::Approx(0.5 * (src[y * w + x - 1] + src[y * w + x])).epsilon(1e-6));

  // A 90-degree rotation of a square image permutes pixels exactly (to rounding).
  const size_t n = 7;
  Tensor sq = ref::random_tensor({n, n}, 9, 0.0f, 1.0f);
  std::vector<float> rot(n * n);
  AugmentParams r90;
  r90.angle_rad = std::numbers::pi / 2;
  augment_image(sq.data(), n, n, r90, rot.data());
  // Output o = c + R(90)(s - c): s = c + R(-90)(o - c) -> sx = c + (oy - c), sy = c - (ox - c).
  for (size_t y = 0; y < n; ++y)
    for (size_t x = 0; x < n; ++x)
      CHECK(rot[y * n + x] == doctest::Approx(sq[(n - 1 - x) * n + y]).epsilon(1e-5));

  // Brightness/contrast: v*c + (1-c)*mean + b, clamped.
  AugmentParams bc;
  bc.contrast = 1.5;
  bc.brightness = 0.1;
  augment_image(src.data(), w, h, bc, out.data());
  double mean = 0;
  for (float v : src.values()) mean += v;
  mean /= w * h;
  for (size_t i = 0; i < w * h; ++i)
    CHECK(out[i] == doctest::Approx(std::clamp(src[i] * 1.5 - 0.5 * mean + 0.1, 0.0, 1.0)).epsilon(1e-5));

  AugmentOptions bad;
  bad.rotation_deg = -1;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("rotation_deg"), std::invalid_argument);
}

TEST_CASE("split: stratified, byte-identical files on one side, reproducible") {
  Dataset data({"a", "b", "c"}, 2, 2);
  const std::vector<float> px(4, 0.5f);
  const size_t sizes[3] = {40, 23, 61};
  uint64_t next_hash = 1;
  std::map<uint64_t, size_t> copies;
  for (int c = 0; c < 3; ++c)
    for (size_t k = 0; k < sizes[c]; ++k) {
      // Every 5th file is a twin of the previous one; every 11th a triplet member.
      uint64_t hash = (k % 5 == 4 || k % 11 == 10) ? next_hash - 1 : next_hash++;
      data.add_decoded(std::string(1, "abc"[c]) + std::to_string(k), c, hash * 1000 + c, px);
      ++copies[hash * 1000 + c];
    }
  // Also one pair of identical files under two classes.
  data.add_decoded("a-twin-of-b", 0, 777777, px);
  data.add_decoded("b-twin-of-a", 1, 777777, px);

  const Split s = split_dataset(data, 0.2, 3);
  CHECK(s.train.size() + s.validation.size() == data.size());
  CHECK(s.cross_class_groups == 1);
  size_t groups = 1, files = 2;
  for (const auto& [hash, n] : copies)
    if (n > 1) ++groups, files += n;
  CHECK(s.duplicate_groups == groups);
  CHECK(s.duplicate_files == files);

  std::map<uint64_t, std::set<bool>> side;
  for (size_t i : s.train) side[data.item(i).hash].insert(false);
  for (size_t i : s.validation) side[data.item(i).hash].insert(true);
  for (const auto& entry : side) CHECK_MESSAGE(entry.second.size() == 1, "hash " << entry.first << " split");

  std::vector<size_t> val_per_class(3, 0), per_class = data.class_counts();
  for (size_t i : s.validation) ++val_per_class[data.item(i).label];
  for (int c = 0; c < 3; ++c) {
    const double target = 0.2 * per_class[c];
    CHECK(val_per_class[c] >= std::llround(target));
    CHECK(val_per_class[c] <= std::llround(target) + 2);  // overshoot < largest group
  }

  const Split again = split_dataset(data, 0.2, 3);
  CHECK(again.validation == s.validation);
  CHECK(split_digest(data, again) == split_digest(data, s));
  const Split other = split_dataset(data, 0.2, 4);
  CHECK(other.validation != s.validation);
  CHECK(split_digest(data, other) != split_digest(data, s));

  const nlohmann::json j = split_to_json(data, s, 0.2, 3);
  CHECK(j["validation"].size() == s.validation.size());
  CHECK(j["train"].size() == s.train.size());
  CHECK(j["duplicate_groups"] == groups);

  CHECK(split_dataset(data, 0.0, 1).validation.empty());
  CHECK_THROWS_WITH_AS(split_dataset(data, 0.95, 1), doctest::Contains("validation fraction"),
                       std::invalid_argument);
}

TEST_CASE("split_fold: stratified folds that keep twins together and cover every item once") {
  Dataset data({"a", "b", "c"}, 2, 2, false);
  const std::vector<float> px(4, 0.5f);
  const size_t sizes[3] = {40, 23, 61};
  uint64_t next_hash = 1;
  for (int c = 0; c < 3; ++c)
    for (size_t k = 0; k < sizes[c]; ++k) {
      const uint64_t hash = (k % 5 == 4) ? next_hash - 1 : next_hash++;  // every 5th a twin
      data.add_decoded(std::string(1, "abc"[c]) + std::to_string(k), c, hash * 1000 + c, px);
    }
  const size_t folds = 3;
  std::vector<int> times_in_validation(data.size(), 0);
  std::map<uint64_t, std::set<size_t>> folds_of_hash;
  for (size_t f = 0; f < folds; ++f) {
    const Split s = split_fold(data, folds, f, 7);
    CHECK(s.train.size() + s.validation.size() == data.size());
    std::vector<size_t> per_class(3, 0);
    for (size_t i : s.validation) {
      ++times_in_validation[i];
      ++per_class[data.item(i).label];
      folds_of_hash[data.item(i).hash].insert(f);
    }
    for (int c = 0; c < 3; ++c) {  // a third of each class, give or take one twin pair
      CHECK(per_class[c] + 2 >= sizes[c] / folds);
      CHECK(per_class[c] <= sizes[c] / folds + 2);
    }
    CHECK(split_fold(data, folds, f, 7).validation == s.validation);
  }
  for (size_t i = 0; i < data.size(); ++i) CHECK_MESSAGE(times_in_validation[i] == 1, data.item(i).path);
  for (const auto& entry : folds_of_hash) CHECK_MESSAGE(entry.second.size() == 1, "hash " << entry.first);
  CHECK(split_fold(data, folds, 0, 8).validation != split_fold(data, folds, 0, 7).validation);
  CHECK_THROWS_WITH_AS(split_fold(data, 3, 3, 1), doctest::Contains("fold 3 is outside 0..2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(split_fold(data, 1, 0, 1), doctest::Contains("fold count 1"),
                       std::invalid_argument);
}

TEST_CASE("content hash: equal bytes equal hashes, any change differs") {
  std::vector<uint8_t> a = {1, 2, 3, 4}, b = a, c = {1, 2, 3, 5}, d = {1, 2, 3, 4, 0};
  CHECK(content_hash(a) == content_hash(b));
  CHECK(content_hash(a) != content_hash(c));
  CHECK(content_hash(a) != content_hash(d));
}

TEST_CASE("dataset: undecodable bytes are skipped with the reason, labels checked") {
  Dataset data({"x", "y"}, 4, 4);
  const std::vector<uint8_t> junk = {'h', 'e', 'l', 'l', 'o'};
  CHECK_FALSE(data.add("x/junk.jpg", 0, junk));
  CHECK(data.size() == 0);
  REQUIRE(data.skipped().size() == 1);
  CHECK(data.skipped()[0].rfind("x/junk.jpg: ", 0) == 0);
  CHECK_THROWS_WITH_AS(data.add_decoded("z", 2, 0, std::vector<float>(16)),
                       doctest::Contains("label 2"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(data.add_decoded("z", 1, 0, std::vector<float>(15)),
                       doctest::Contains("15 pixels"), std::invalid_argument);
}

TEST_CASE("architectures: catalogue builds, shipped one within budget") {
  for (const ArchitectureInfo& info : architecture_catalogue()) {
    Model m(make_architecture(info.name, 0, 4), {"glioma", "meningioma", "notumor", "pituitary"});
    CHECK(m.parameter_count() > 0);
    CHECK(m.flops_per_image() > 0);
  }
  // As scripts/train makes the shipped model: resnet-s at 160x160 (F16 weights, but even F32
  // fits the 6 MB budget).
  Model shipped(make_architecture("resnet-s", 160, 4), {"a", "b", "c", "d"});
  CHECK(shipped.parameter_count() * 4 < 6'000'000);
  CHECK(shipped.flops_per_image() < 300e6);
  CHECK_THROWS_WITH_AS(make_architecture("resnet-zz", 0, 4), doctest::Contains("resnet-s"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_architecture("resnet-s", 16, 4), doctest::Contains("input size 16"),
                       std::invalid_argument);
}

TEST_CASE("a tiny network drives a synthetic task to near-zero loss") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(12, 16, 1);
  Model model(make_architecture("tiny", 16, 4), data.classes());
  model.init_params(3);
  TrainOptions o = quiet_options(40);
  SUBCASE("AdamW") {}
  SUBCASE("SGD with Nesterov momentum") {
    o.optimizer = OptimizerKind::sgd;
    o.lr = 0.05;
  }
  Trainer trainer(rt, model, data, all_items(data), {}, o);
  size_t batches_seen = 0;
  TrainCallbacks count_batches;
  count_batches.on_batch = [&](const BatchProgress&) { ++batches_seen; };
  CHECK(trainer.run(count_batches) == TrainStatus::finished);
  CHECK(batches_seen == 40 * trainer.batches_per_epoch());
  const EpochRecord& last = trainer.history().back();
  CHECK(last.train_loss < 0.05);
  CHECK(last.train_accuracy == 1.0);
  CHECK(trainer.history().front().train_loss > 10 * last.train_loss);
  const std::vector<size_t> items = all_items(data);
  const Evaluation ev = evaluate(rt, model, data, items);
  CHECK(ev.accuracy == 1.0);
  CHECK(ev.loss < 0.05);
  size_t total = 0;
  for (size_t r = 0; r < 4; ++r) {
    CHECK(ev.confusion[r][r] == 12);
    for (size_t c = 0; c < 4; ++c) total += ev.confusion[r][c];
  }
  CHECK(total == data.size());
}

namespace {
// tiny with a dropout layer, so the checkpoint must carry the dropout stream too.
Architecture tiny_with_dropout(size_t size) {
  Architecture a = make_architecture("tiny", size, 4);
  LayerSpec d;
  d.name = "drop";
  d.type = "dropout";
  d.rate = 0.25f;
  const auto fc = std::find_if(a.layers.begin(), a.layers.end(), [](const LayerSpec& s) { return s.name == "fc"; });
  a.layers.insert(fc, d);
  return a;
}
}  // namespace

TEST_CASE("checkpoint + resume reproduce an uninterrupted run exactly; cancel stops between batches") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(6, 12, 2);
  const Split split = split_dataset(data, 0.25, 1);
  TrainOptions o = quiet_options(3);
  o.augment = AugmentOptions::mri();
  o.label_smoothing = 0.1;
  o.ema_decay = 0.9;  // the averaged weights must survive the checkpoint too
  SUBCASE("AdamW") {}
  SUBCASE("SGD") {  // its momentum buffers must survive the checkpoint
    o.optimizer = OptimizerKind::sgd;
    o.lr = 0.05;
  }

  Model straight(tiny_with_dropout(12), data.classes());
  straight.init_params(5);
  Trainer t1(rt, straight, data, split.train, split.validation, o);
  CHECK(t1.run({}) == TrainStatus::finished);
  CHECK(t1.epochs_done() == 3);

  Model interrupted(tiny_with_dropout(12), data.classes());
  interrupted.init_params(5);
  Trainer t2(rt, interrupted, data, split.train, split.validation, o);
  std::atomic<bool> cancel{false};
  std::vector<uint8_t> saved;
  size_t batches_after_cancel = 0;
  TrainCallbacks cb;
  cb.on_checkpoint = [&] {
    if (t2.epochs_done() == 1) {
      saved = t2.checkpoint({{"note", "after one epoch"}});
      cancel = true;
    }
  };
  cb.on_batch = [&](const BatchProgress&) { batches_after_cancel += cancel.load(); };
  CHECK(t2.run(cb, &cancel) == TrainStatus::cancelled);
  CHECK(batches_after_cancel == 0);
  CHECK(t2.epochs_done() == 1);
  REQUIRE_FALSE(saved.empty());

  Checkpoint ck = load_checkpoint(saved);
  CHECK(ck.extra["note"] == "after one epoch");
  Model resumed = std::move(ck.model);
  Trainer t3(rt, resumed, data, split.train, split.validation, ck.options);
  t3.resume(ck);
  CHECK(t3.epochs_done() == 1);
  CHECK(t3.run({}) == TrainStatus::finished);

  std::vector<ParamRef> a = straight.parameters(), b = resumed.parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].name == b[i].name);
    bool same = true;
    for (size_t k = 0; k < a[i].param->value.size(); ++k)
      same = same && a[i].param->value[k] == b[i].param->value[k];
    CHECK_MESSAGE(same, a[i].name << " differs after resume");
  }
  for (size_t e = 0; e < 3; ++e) {
    CHECK(t1.history()[e].train_loss == t3.history()[e].train_loss);
    CHECK(t1.history()[e].val_accuracy == t3.history()[e].val_accuracy);
    CHECK(t1.history()[e].val_loss == t3.history()[e].val_loss);
  }
  CHECK(t1.best_epoch() == t3.best_epoch());
  CHECK(t1.steps() == t3.steps());
  // The best epoch's weights came through the checkpoint as well.
  Model best1 = straight.clone(), best3 = resumed.clone();
  REQUIRE(t1.copy_best_into(best1));
  REQUIRE(t3.copy_best_into(best3));
  CHECK(serialize_model(best1) == serialize_model(best3));

  // The dropout stream is in the layers' training state. A checkpoint written before that
  // existed has it as "dropout_steps" and resumes alike.
  {
    const SafetensorsFile file = parse_safetensors(saved);
    std::map<std::string, std::string> metadata = file.metadata;
    nlohmann::json state = nlohmann::json::parse(metadata.at("checkpoint"));
    REQUIRE(state.at("layer_state").dump() == "{\"drop\":" + state.at("steps").dump() + "}");
    state["dropout_steps"] = state.at("layer_state");
    state.erase("layer_state");
    metadata["checkpoint"] = state.dump();
    std::vector<Tensor> values;
    for (const SafetensorsEntry& e : file.tensors) values.push_back(e.to_tensor());
    std::vector<NamedTensor> named;
    for (size_t i = 0; i < values.size(); ++i) named.push_back({file.tensors[i].name, &values[i]});
    Checkpoint old = load_checkpoint(write_safetensors(std::move(named), metadata));
    Model old_model = std::move(old.model);
    Trainer t6(rt, old_model, data, split.train, split.validation, old.options);
    t6.resume(old);
    CHECK(t6.run({}) == TrainStatus::finished);
    CHECK(serialize_model(old_model) == serialize_model(resumed));
  }

  // Other options than the checkpoint's are refused.
  Model again = load_checkpoint(saved).model;
  TrainOptions changed = o;
  changed.lr *= 2;
  Trainer t4(rt, again, data, split.train, split.validation, changed);
  CHECK_THROWS_WITH_AS(t4.resume(load_checkpoint(saved)), doctest::Contains("other training options"),
                       std::invalid_argument);
  TrainOptions other_optimizer = o;
  other_optimizer.optimizer =
      o.optimizer == OptimizerKind::sgd ? OptimizerKind::adamw : OptimizerKind::sgd;
  Model again2 = load_checkpoint(saved).model;
  Trainer t5(rt, again2, data, split.train, split.validation, other_optimizer);
  CHECK_THROWS_WITH_AS(t5.resume(load_checkpoint(saved)), doctest::Contains("other training options"),
                       std::invalid_argument);

  // A model file is not a checkpoint, and a damaged checkpoint is refused.
  CHECK_THROWS_WITH_AS(load_checkpoint(serialize_model(straight)), doctest::Contains("not a training checkpoint"),
                       std::invalid_argument);
  std::vector<uint8_t> cut(saved.begin(), saved.begin() + saved.size() / 2);
  CHECK_THROWS_AS(load_checkpoint(cut), std::invalid_argument);
}

TEST_CASE("the best epoch is kept by validation accuracy, ties by loss; fine-tuning freezes layers") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(4, 12, 3);
  const Split split = split_dataset(data, 0.25, 2);
  Model model(make_architecture("tiny", 12, 4), data.classes());
  model.init_params(1);
  TrainOptions o = quiet_options(4);
  o.trainable_layers = 1;  // only the final dense layer learns
  const Model before = model.clone();
  Trainer trainer(rt, model, data, split.train, split.validation, o);
  std::vector<std::pair<size_t, Model>> bests;
  TrainCallbacks keep_bests;
  keep_bests.on_best = [&](const Model& m, const EpochRecord& r) { bests.emplace_back(r.epoch, m.clone()); };
  trainer.run(keep_bests);
  REQUIRE_FALSE(bests.empty());
  CHECK(bests.back().first == static_cast<size_t>(trainer.best_epoch()));
  Model kept = model.clone();
  REQUIRE(trainer.copy_best_into(kept));
  CHECK(serialize_model(kept) == serialize_model(bests.back().second));
  const EpochRecord& best = trainer.history()[trainer.best_epoch() - 1];
  for (const EpochRecord& r : trainer.history()) {
    CHECK(r.val_accuracy <= best.val_accuracy);
    if (r.val_accuracy == best.val_accuracy) CHECK(r.val_loss >= best.val_loss);
  }
  Model& b = const_cast<Model&>(before);
  std::vector<ParamRef> p0 = b.parameters(), p1 = model.parameters();
  for (size_t i = 0; i < p0.size(); ++i) {
    if (!p0[i].param->trainable) continue;  // running statistics still follow the data
    bool same = true;
    for (size_t k = 0; k < p0[i].param->value.size(); ++k) same = same && p0[i].param->value[k] == p1[i].param->value[k];
    CHECK_MESSAGE(same == (p0[i].name.rfind("fc.", 0) != 0), p0[i].name);
  }
  o.trainable_layers = 99;
  CHECK_THROWS_WITH_AS(Trainer(rt, model, data, split.train, split.validation, o),
                       doctest::Contains("99 trainable layers"), std::invalid_argument);
}

TEST_CASE("fine-tuning the last K layers counts along every path: residual blocks, ensembles") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(2, 32, 4);
  const std::vector<size_t> items = {0, 1, 2, 3, 4, 5, 6, 7};
  auto trained = [&](Model& m, size_t k) {
    TrainOptions o = quiet_options(1);
    o.trainable_layers = k;
    Trainer t(rt, m, data, items, {}, o);
    std::vector<std::string> names;
    for (size_t i = 0; i < m.layer_count(); ++i)
      if (!m.layer(i).frozen && !m.layer(i).params().empty()) names.push_back(m.layer(i).spec().name);
    return names;
  };
  // Two tiny models merged: K = 1 is both dense heads; K = 2 adds each one's last batch norm.
  Model a(make_architecture("tiny", 32, 4), data.classes()), b(make_architecture("tiny", 32, 4), data.classes());
  Model both = mean_ensemble({&a, &b});
  CHECK(trained(both, 1) == std::vector<std::string>{"m1_fc", "m2_fc"});
  CHECK(trained(both, 2) == std::vector<std::string>{"m1_c2_bn", "m1_fc", "m2_c2_bn", "m2_fc"});
  // A residual net: the block's output batch norm and its shortcut's are both 2 from the head.
  Model res(make_architecture("resnet-s", 32, 4), data.classes());
  const std::vector<std::string> res2 = trained(res, 2);
  CHECK(res2.size() == 3);
  CHECK(res2.back() == "fc");
}

TEST_CASE("the trainer refuses data that does not fit the model") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(2, 12, 4);
  Model other_size(make_architecture("tiny", 16, 4), data.classes());
  CHECK_THROWS_WITH_AS(Trainer(rt, other_size, data, {0, 1}, {}, quiet_options(1)),
                       doctest::Contains("16x16"), std::invalid_argument);
  Model other_classes(make_architecture("tiny", 12, 4), {"w", "x", "y", "z"});
  CHECK_THROWS_WITH_AS(Trainer(rt, other_classes, data, {0, 1}, {}, quiet_options(1)),
                       doctest::Contains("classes"), std::invalid_argument);
  Model ok(make_architecture("tiny", 12, 4), data.classes());
  CHECK_THROWS_WITH_AS(Trainer(rt, ok, data, {}, {}, quiet_options(1)),
                       doctest::Contains("no training images"), std::invalid_argument);
  TrainOptions bad = quiet_options(1);
  bad.batch_size = 0;
  CHECK_THROWS_WITH_AS(Trainer(rt, ok, data, {0}, {}, bad), doctest::Contains("batch size"),
                       std::invalid_argument);
}

TEST_CASE("batches go through the model's preprocessing exactly as to_input does") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(1, 12, 5);
  Model model(make_architecture("tiny", 12, 4), data.classes(), Preprocessing{0.3f, 0.2f});
  const std::vector<size_t> items = {2, 0};
  Tensor input;
  make_batch(rt, model, data, items, nullptr, 0, 0, input);
  CHECK(input.shape() == Shape{2, 12, 12, 1});
  for (size_t k = 0; k < 2; ++k) {
    GreyImage g;
    g.width = g.height = 12;
    g.pixels.assign(data.image(items[k]), data.image(items[k]) + 144);
    std::vector<float> expect(144);
    to_input(g, model.architecture(), model.preprocessing(), expect.data());
    for (size_t i = 0; i < 144; ++i) CHECK(input[k * 144 + i] == expect[i]);
    CHECK(input[k * 144 + 5] == doctest::Approx((data.image(items[k])[5] - 0.3) / 0.2).epsilon(1e-5));
  }
}

TEST_CASE("training curves SVG") {
  std::vector<EpochRecord> h;
  for (size_t e = 1; e <= 5; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.train_loss = 1.0 / e;
    r.train_accuracy = 0.5 + 0.1 * e;
    r.has_validation = true;
    r.val_loss = 1.2 / e;
    r.val_accuracy = 0.45 + 0.1 * e;
    h.push_back(r);
  }
  const std::string svg = training_curves_svg(h, "a & b");
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("a &amp; b") != std::string::npos);
  size_t polylines = 0;
  for (size_t p = svg.find("<polyline"); p != std::string::npos; p = svg.find("<polyline", p + 1)) ++polylines;
  CHECK(polylines == 4);
  CHECK(training_curves_svg({}, "empty").find("</svg>") != std::string::npos);
}

TEST_CASE("training gives the same weights on one and two threads") {
  const Dataset data = synthetic_dataset(6, 12, 6);
  TrainOptions o = quiet_options(2);
  o.augment = AugmentOptions::mri();
  std::vector<Tensor> weights[2];
  for (size_t t = 0; t < 2; ++t) {
    Runtime rt(t + 1);
    Model model(make_architecture("tiny", 12, 4), data.classes());
    model.init_params(8);
    Trainer trainer(rt, model, data, all_items(data), {}, o);
    trainer.run({});
    for (ParamRef& p : model.parameters()) weights[t].push_back(p.param->value);
  }
  REQUIRE(weights[0].size() == weights[1].size());
  for (size_t i = 0; i < weights[0].size(); ++i) {
    const std::vector<double> one(weights[0][i].values().begin(), weights[0][i].values().end());
    const std::string bad = ref::mismatch(weights[1][i].values(), one, 0.0, 0.0);
    CHECK_MESSAGE(bad.empty(), "parameter " << i << ": " << bad);
  }
}

TEST_CASE("Trainer::step is the loop's step: an epoch of steps equals an epoch of run()") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(6, 12, 4);  // 24 images: 3 batches of 8
  TrainOptions o = quiet_options(1);
  o.augment = AugmentOptions::mri();
  o.label_smoothing = 0.1;
  o.mixup = 0.4;
  o.ema_decay = 0.9;
  const std::vector<size_t> items = all_items(data);

  Model looped(tiny_with_dropout(12), data.classes());
  looped.init_params(3);
  Trainer t1(rt, looped, data, items, {}, o);
  REQUIRE(t1.run({}) == TrainStatus::finished);

  Model stepped(tiny_with_dropout(12), data.classes());
  stepped.init_params(3);
  Trainer t2(rt, stepped, data, items, {}, o);
  std::vector<size_t> order = items;  // the first epoch's order, drawn as the loop draws it
  Rng(derive_seed(o.seed, {0x5E0ull, 1})).shuffle(order);
  REQUIRE(t2.batches_per_epoch() == 3);
  double loss_sum = 0.0;
  size_t correct = 0;
  for (size_t b = 0; b < 3; ++b) {
    const StepResult s = t2.step(std::span<const size_t>(order).subspan(b * 8, 8), 1, b);
    CHECK(s.lr == t2.schedule().at(b));
    CHECK(s.batch_seconds + s.forward_seconds + s.backward_seconds + s.optimizer_seconds > 0.0);
    loss_sum += s.loss * 8.0;
    correct += s.correct;
  }
  CHECK(t2.steps() == t1.steps());
  CHECK(t2.epochs_done() == 0);
  CHECK(loss_sum / 24.0 == t1.history()[0].train_loss);
  CHECK(static_cast<double>(correct) / 24.0 == t1.history()[0].train_accuracy);

  // The live weights, their average and the optimizer's state, as checkpoints hold them.
  auto same = [](const std::map<std::string, Tensor>& x, const std::map<std::string, Tensor>& y) {
    if (x.size() != y.size()) return false;
    for (const auto& [name, t] : x) {
      auto it = y.find(name);
      if (it == y.end() || it->second.shape() != t.shape() ||
          !std::equal(t.values().begin(), t.values().end(), it->second.values().begin()))
        return false;
    }
    return true;
  };
  const Checkpoint a = load_checkpoint(t1.checkpoint()), b = load_checkpoint(t2.checkpoint());
  CHECK(serialize_model(a.model) == serialize_model(b.model));
  REQUIRE_FALSE(a.ema.empty());
  CHECK(same(a.ema, b.ema));
  REQUIRE_FALSE(a.optimizer.empty());
  CHECK(same(a.optimizer, b.optimizer));
  CHECK(a.state.at("layer_state") == b.state.at("layer_state"));

  // A step whose loss is not finite names where it happened.
  Model diverging(tiny_with_dropout(12), data.classes());
  diverging.init_params(3);
  for (ParamRef& p : diverging.parameters())
    for (float& v : p.param->value.values()) v = std::numeric_limits<float>::quiet_NaN();
  diverging.params_changed();
  Trainer t3(rt, diverging, data, items, {}, o);
  CHECK_THROWS_WITH_AS(t3.step(std::span<const size_t>(order).first(8), 2, 4),
                       doctest::Contains("at epoch 2, batch 5"), std::runtime_error);
}

TEST_CASE("weight averaging (EMA): the final model is the hand-computed average of every step") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(4, 12, 7);
  TrainOptions o = quiet_options(2);
  o.ema_decay = 0.8;
  Model model(make_architecture("tiny", 12, 4), data.classes());
  model.init_params(2);
  std::vector<std::vector<double>> ema;  // per parameter tensor, in double
  size_t step = 0;
  auto update = [&](double d) {
    std::vector<ParamRef> ps = model.parameters();
    for (size_t i = 0; i < ps.size(); ++i)
      for (size_t k = 0; k < ps[i].param->value.size(); ++k)
        ema[i][k] = d * ema[i][k] + (1 - d) * ps[i].param->value[k];
  };
  Trainer trainer(rt, model, data, all_items(data), all_items(data), o);
  TrainCallbacks cb;
  cb.on_batch = [&](const BatchProgress&) {
    ++step;
    if (ema.empty()) {  // the first step starts the average at the values after it
      for (ParamRef& p : model.parameters()) ema.emplace_back(p.param->value.values().begin(), p.param->value.values().end());
      return;
    }
    update(std::min(0.8, (1.0 + step) / (10.0 + step)));
  };
  std::vector<double> val_acc;
  cb.on_epoch = [&](const EpochRecord& r) { val_acc.push_back(r.val_accuracy); };
  CHECK(trainer.run(cb) == TrainStatus::finished);
  std::vector<ParamRef> ps = model.parameters();
  REQUIRE(ps.size() == ema.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    const std::string bad = ref::mismatch(ps[i].param->value.values(), ema[i], 1e-6, 1e-5);
    CHECK_MESSAGE(bad.empty(), ps[i].name << ": " << bad);
  }
  // The last validation ran on the averaged weights the model now holds.
  const std::vector<size_t> items = all_items(data);
  CHECK(evaluate(rt, model, data, items).accuracy == doctest::Approx(val_acc.back()));
}

TEST_CASE("mixup: Beta(a, a) draws and the reversed-batch blend") {
  nl::Rng rng(9);
  for (double a : {0.2, 1.0, 2.0}) {
    CAPTURE(a);
    double sum = 0.0, sq = 0.0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const double x = rng.beta_symmetric(a);
      REQUIRE(x >= 0.0);
      REQUIRE(x <= 1.0);
      sum += x;
      sq += x * x;
    }
    const double mean = sum / n, var = sq / n - mean * mean;
    CHECK(mean == doctest::Approx(0.5).epsilon(0.03));
    CHECK(var == doctest::Approx(1.0 / (4 * (2 * a + 1))).epsilon(0.05));
  }

  Tensor batch({3, 2});  // three "images" of two values
  for (size_t i = 0; i < 6; ++i) batch[i] = static_cast<float>(i);
  nl::mix_with_reversed(batch, 0.75);
  const std::vector<float> want = {0.75f * 0 + 0.25f * 4, 0.75f * 1 + 0.25f * 5, 2, 3,
                                   0.75f * 4 + 0.25f * 0, 0.75f * 5 + 0.25f * 1};
  CHECK(std::vector<float>(batch.values().begin(), batch.values().end()) == want);
}

TEST_CASE("mixup training is reproducible, still learns, and is recorded") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(4, 12, 7);
  TrainOptions o = quiet_options(6);
  o.mixup = 0.4;
  auto train = [&] {
    Model model(make_architecture("tiny", 12, 4), data.classes());
    model.init_params(2);
    Trainer trainer(rt, model, data, all_items(data), all_items(data), o);
    REQUIRE(trainer.run({}) == TrainStatus::finished);
    std::vector<float> w;
    for (ParamRef& p : model.parameters()) w.insert(w.end(), p.param->value.values().begin(), p.param->value.values().end());
    return std::make_pair(w, trainer.history());
  };
  const auto run1 = train();
  const auto run2 = train();
  CHECK(run1.first == run2.first);
  CHECK(run1.second.back().train_loss < run1.second.front().train_loss);
  CHECK(run1.second.back().val_accuracy > 0.5);
  CHECK(nl::to_json(o).at("mixup").get<double>() == 0.4);
  o.mixup = 2.5;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("mixup alpha"), std::invalid_argument);
}

namespace {
// Per-channel mean and unbiased variance of an [N,H,W,C] activation, in double.
void channel_statistics(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const size_t c = x.shape().back(), rows = x.size() / c;
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < c; ++k) mean[k] += x[r * c + k];
  for (size_t k = 0; k < c; ++k) mean[k] /= static_cast<double>(rows);
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < c; ++k) var[k] += (x[r * c + k] - mean[k]) * (x[r * c + k] - mean[k]);
  for (size_t k = 0; k < c; ++k) var[k] /= static_cast<double>(rows - 1);
}

const Tensor& param_of(Model& m, const std::string& layer, size_t i) {
  return m.layer(m.layer_index(layer)).params().at(i).value;
}
}  // namespace

TEST_CASE("batch-norm recalibration: running statistics become the average batch statistics") {
  Runtime rt(1);
  const Dataset data = synthetic_dataset(5, 12, 11);  // 20 images: batches of 8, 8 (and 4 left out)
  Model model(make_architecture("tiny", 12, 4), data.classes());
  model.init_params(5);
  const std::vector<size_t> items = all_items(data);

  // The expected values, batch by batch from the activations feeding each batch norm.
  std::map<std::string, std::vector<double>> mean_sum, var_sum;
  Tensor input;
  for (size_t begin = 0; begin + 8 <= items.size(); begin += 8) {
    make_batch(rt, model, data, std::span<const size_t>(items).subspan(begin, 8), nullptr, 0, 0, input);
    model.forward(rt, input, /*training=*/true);
    for (const std::string bn : {"c1", "c2"}) {
      std::vector<double> m, v;
      channel_statistics(model.activation(model.layer_index(bn)), m, v);
      auto& ms = mean_sum[bn];
      auto& vs = var_sum[bn];
      ms.resize(m.size());
      vs.resize(v.size());
      for (size_t k = 0; k < m.size(); ++k) ms[k] += m[k] / 2, vs[k] += v[k] / 2;
    }
  }
  Model fresh(make_architecture("tiny", 12, 4), data.classes());
  fresh.init_params(5);
  CHECK(recalibrate_batch_norm(rt, fresh, data, items, 8) == 2);
  for (const std::string bn : {"c1", "c2"}) {
    const Tensor& mean = param_of(fresh, bn + "_bn", 2);
    const Tensor& var = param_of(fresh, bn + "_bn", 3);
    REQUIRE(mean.size() == mean_sum[bn].size());
    for (size_t k = 0; k < mean.size(); ++k) {
      CHECK(mean[k] == doctest::Approx(mean_sum[bn][k]).epsilon(1e-5));
      CHECK(var[k] == doctest::Approx(var_sum[bn][k]).epsilon(1e-5));
    }
  }

  SUBCASE("a frozen layer keeps its statistics") {
    Model m(make_architecture("tiny", 12, 4), data.classes());
    m.init_params(5);
    m.layer(m.layer_index("c1_bn")).frozen = true;
    auto values = [](const Tensor& t) { return std::vector<float>(t.values().begin(), t.values().end()); };
    const std::vector<float> c1_before = values(param_of(m, "c1_bn", 3));
    const std::vector<float> c2_before = values(param_of(m, "c2_bn", 3));
    CHECK(recalibrate_batch_norm(rt, m, data, items, 8) == 2);
    CHECK(values(param_of(m, "c1_bn", 3)) == c1_before);
    CHECK(values(param_of(m, "c2_bn", 3)) != c2_before);
  }
  SUBCASE("the trainer recalibrates before validating, and records the option") {
    TrainOptions o = quiet_options(2);
    o.batch_size = 20;  // one batch: the statistics do not depend on the subset's order
    o.bn_recalibration_images = 1000;
    Model m(make_architecture("tiny", 12, 4), data.classes());
    m.init_params(5);
    Trainer trainer(rt, m, data, items, items, o);
    REQUIRE(trainer.run({}) == TrainStatus::finished);
    Model again = m.clone();
    CHECK(recalibrate_batch_norm(rt, again, data, items, 20) == 1);
    for (const std::string bn : {"c1_bn", "c2_bn"})
      for (size_t i : {2, 3}) {
        const Tensor& got = param_of(m, bn, i);
        const Tensor& want = param_of(again, bn, i);
        for (size_t k = 0; k < got.size(); ++k) CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-6));
      }
    CHECK(trainer.history().back().val_accuracy == evaluate(rt, m, data, items).accuracy);
    CHECK(nl::to_json(o).at("bn_recalibration_images").get<size_t>() == 1000);
    nlohmann::json old = nl::to_json(o);
    old.erase("bn_recalibration_images");  // checkpoints made before the option existed
    CHECK(train_options_from_json(old).bn_recalibration_images == 0);
    o.bn_recalibration_images = 2000000;
    CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("recalibration"), std::invalid_argument);
  }
}

TEST_CASE("training options: the optimizer is recorded, read back, and checked") {
  TrainOptions o = quiet_options(2);
  o.optimizer = OptimizerKind::sgd;
  o.momentum = 0.85;
  const nlohmann::json j = nl::to_json(o);
  CHECK(j.at("optimizer") == "sgd");
  CHECK(j.at("momentum").get<double>() == 0.85);
  const TrainOptions back = train_options_from_json(j);
  CHECK(back.optimizer == OptimizerKind::sgd);
  CHECK(back.momentum == 0.85);
  nlohmann::json old = j;
  old.erase("optimizer");  // checkpoints and models made before SGD existed used AdamW
  old.erase("momentum");
  CHECK(train_options_from_json(old).optimizer == OptimizerKind::adamw);
  nlohmann::json unknown = j;
  unknown["optimizer"] = "lion";
  CHECK_THROWS_WITH_AS(train_options_from_json(unknown), doctest::Contains("unknown optimizer 'lion'"),
                       std::invalid_argument);
  o.momentum = 1.0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("momentum 1.0"), std::invalid_argument);
}
