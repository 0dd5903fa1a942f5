// FineTuneSession (src/finetune.h): images from bytes, junk reported, a run that trains a copy
// (the base model untouched, frozen layers unchanged), cancel, options checked.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "features/finetune.h"
#include "features/network_catalogue.h"
#include "core/model.h"
#include "core/rng.h"

namespace {

using nl::Architecture;
using nl::FineTuneOptions;
using nl::FineTuneSession;
using nl::LayerSpec;
using nl::Model;
using nl::Runtime;

LayerSpec spec(const char* name, const char* type) {
  LayerSpec s;
  s.name = name;
  s.type = type;
  return s;
}

// 14x14 grey -> conv(6) relu pool -> conv(8, relu) -> gap -> dense(3) -> softmax
Model small_model() {
  Architecture a;
  a.height = a.width = 14;
  a.channels = 1;
  LayerSpec c1 = spec("conv1", "conv2d");
  c1.filters = 6;
  c1.kernel = 3;
  c1.padding = 1;
  a.layers.push_back(c1);
  a.layers.push_back(spec("relu1", "relu"));
  LayerSpec pool = spec("pool", "max_pool");
  pool.kernel = pool.stride = 2;
  a.layers.push_back(pool);
  LayerSpec c2 = spec("conv2", "conv2d");
  c2.filters = 8;
  c2.kernel = 3;
  c2.padding = 1;
  c2.activation = nl::Activation::relu;
  a.layers.push_back(c2);
  a.layers.push_back(spec("gap", "global_avg_pool"));
  LayerSpec fc = spec("fc", "dense");
  fc.units = 3;
  a.layers.push_back(fc);
  a.layers.push_back(spec("softmax", "softmax"));
  Model m(a, {"disc", "hbar", "vbar"});
  m.init_params(3);
  return m;
}

// Three learnable shapes on a noisy background: a disc, a horizontal bar, a vertical bar.
std::vector<float> shape_image(int label, size_t size, uint64_t seed) {
  nl::Rng rng(seed);
  std::vector<float> px(size * size);
  const double c = size / 2.0 + rng.uniform(-2.0, 2.0), r = size / 4.0;
  for (size_t y = 0; y < size; ++y)
    for (size_t x = 0; x < size; ++x) {
      const double dx = x + 0.5 - c, dy = y + 0.5 - c;
      const bool on = label == 0 ? dx * dx + dy * dy < r * r
                    : label == 1 ? std::fabs(dy) < size / 10.0 && std::fabs(dx) < 1.4 * r
                                 : std::fabs(dx) < size / 10.0 && std::fabs(dy) < 1.4 * r;
      px[y * size + x] = static_cast<float>((on ? 0.8 : 0.1) + rng.uniform(-0.1, 0.1));
    }
  return px;
}

// An uncompressed 8-bit grey TGA (image type 3): the simplest format stb_image reads.
std::vector<uint8_t> grey_tga(const std::vector<float>& px, size_t size) {
  std::vector<uint8_t> out(18, 0);
  out[2] = 3;
  out[12] = static_cast<uint8_t>(size & 0xff);
  out[13] = static_cast<uint8_t>(size >> 8);
  out[14] = static_cast<uint8_t>(size & 0xff);
  out[15] = static_cast<uint8_t>(size >> 8);
  out[16] = 8;
  out[17] = 0x20;  // top-left origin
  for (float v : px) out.push_back(static_cast<uint8_t>(v * 255.0f + 0.5f));
  return out;
}

void add_shapes(FineTuneSession& session, const Model& m, size_t per_class) {
  for (int label = 0; label < 3; ++label)
    for (size_t i = 0; i < per_class; ++i) {
      const auto px = shape_image(label, 20, 1000 * label + i);
      const std::string name = m.classes()[label];
      REQUIRE(session.add_image(name + "/" + std::to_string(i) + ".tga", name, grey_tga(px, 20)) == "");
    }
}

std::vector<float> params_of(const Model& m, const std::string& layer) {
  std::vector<float> out;
  for (const nl::Param& p : m.layer(m.layer_index(layer)).params())
    out.insert(out.end(), p.value.values().begin(), p.value.values().end());
  return out;
}

// Two epochs on the shapes with only the last layer that has parameters learning.
Model tune_head_only(const Model& base) {
  Runtime rt(1);
  FineTuneSession session(base);
  add_shapes(session, base, 4);
  FineTuneOptions o;
  o.epochs = 2;
  o.batch_size = 4;
  o.trainable_layers = 1;
  o.validation_fraction = 0.0;
  session.run(rt, base, o);
  REQUIRE(session.tuned() != nullptr);
  return session.tuned()->clone();
}

}  // namespace

TEST_CASE("fine-tune session: adding images, junk and unknown classes") {
  const Model m = small_model();
  FineTuneSession session(m);
  CHECK(session.data().width() == 14);
  const std::string text = "not a picture";
  const std::string reason = session.add_image("notes.txt", "disc", std::vector<uint8_t>(text.begin(), text.end()));
  CHECK(reason.find("not an image") != std::string::npos);
  CHECK(session.data().size() == 0);
  CHECK(session.data().skipped().size() == 1);
  CHECK(session.add_image("empty.png", "disc", {}) != "");
  CHECK_THROWS_WITH_AS(session.add_image("x.tga", "glioma", grey_tga(std::vector<float>(400, 0.5f), 20)),
                       doctest::Contains("unknown class 'glioma'"), std::invalid_argument);
  Runtime rt(1);
  CHECK_THROWS_WITH_AS(session.run(rt, m, {}), doctest::Contains("no usable images"), std::invalid_argument);
}

TEST_CASE("fine-tune trains a copy and leaves the base model untouched") {
  Runtime rt(1);
  const Model base = small_model();
  const std::vector<float> conv_before = params_of(base, "conv1");
  const std::vector<float> fc_before = params_of(base, "fc");
  FineTuneSession session(base);
  add_shapes(session, base, 8);

  FineTuneOptions o;
  o.epochs = 3;
  o.batch_size = 6;
  o.lr = 0.01;
  o.trainable_layers = 0;
  o.validation_fraction = 0.25;
  o.augment = false;
  size_t batches = 0, epochs = 0;
  nl::FineTuneCallbacks cb;
  cb.on_batch = [&](const nl::BatchProgress& p) {
    ++batches;
    CHECK(p.epochs == 3);
    return true;
  };
  cb.on_epoch = [&](const nl::EpochRecord&) { ++epochs; };
  const nl::FineTuneResult r = session.run(rt, base, o, cb);

  CHECK_FALSE(r.cancelled);
  CHECK(epochs == 3);
  CHECK(batches == 3 * (r.train_images / 6));
  CHECK(r.train_images + r.validation_images == 24);
  CHECK(r.validation_images == 6);
  REQUIRE(r.has_validation);
  CHECK(r.before.items.size() == 6);
  CHECK(r.after.items.size() == 6);
  CHECK(r.history.size() == 3);
  CHECK(r.best_epoch >= 1);
  REQUIRE(session.tuned() != nullptr);
  CHECK(params_of(*session.tuned(), "conv1") != conv_before);
  CHECK(params_of(base, "conv1") == conv_before);
  CHECK(params_of(base, "fc") == fc_before);
  const auto& record = session.tuned()->training_record();
  REQUIRE(record.contains("fine_tune"));
  CHECK(record["fine_tune"].size() == 1);
}

TEST_CASE("fine-tune of the last layer only keeps the others fixed") {
  const Model base = small_model();
  const Model tuned = tune_head_only(base);
  CHECK(params_of(tuned, "conv1") == params_of(base, "conv1"));
  CHECK(params_of(tuned, "conv2") == params_of(base, "conv2"));
  CHECK(params_of(tuned, "fc") != params_of(base, "fc"));
}

TEST_CASE("fine-tuning the head keeps the frozen batch-norm statistics") {
  Model base(nl::make_architecture("tiny", 14, 3), {"disc", "hbar", "vbar"});
  base.init_params(5);
  for (nl::ParamRef& p : base.parameters())  // trained-looking statistics, not the initial 0 and 1
    if (p.name.find("running_") != std::string::npos)
      for (size_t i = 0; i < p.param->value.size(); ++i) p.param->value[i] = 0.3f + 0.1f * static_cast<float>(i % 3);
  const Model tuned = tune_head_only(base);
  size_t checked = 0;
  for (size_t i = 0; i < base.layer_count(); ++i) {
    if (base.layer(i).spec().type != "batch_norm") continue;
    CAPTURE(base.layer(i).spec().name);
    CHECK(params_of(tuned, base.layer(i).spec().name) == params_of(base, base.layer(i).spec().name));
    ++checked;
  }
  CHECK(checked == 2);
  CHECK(params_of(tuned, "fc") != params_of(base, "fc"));
}

TEST_CASE("fine-tune cancels between batches and keeps no model") {
  Runtime rt(1);
  const Model base = small_model();
  FineTuneSession session(base);
  add_shapes(session, base, 4);
  FineTuneOptions o;
  o.epochs = 50;
  o.batch_size = 2;
  size_t batches = 0;
  nl::FineTuneCallbacks cb;
  cb.on_batch = [&](const nl::BatchProgress&) { return ++batches < 3; };
  const nl::FineTuneResult r = session.run(rt, base, o, cb);
  CHECK(r.cancelled);
  CHECK(batches == 3);
  CHECK(r.history.empty());
  CHECK(session.tuned() == nullptr);
}

TEST_CASE("fine-tune options are checked") {
  FineTuneOptions o;
  o.epochs = 0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("epochs 0"), std::invalid_argument);
  o = {};
  o.validation_fraction = 0.9;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("validation fraction"), std::invalid_argument);
  o = {};
  o.lr = 0;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("learning rate"), std::invalid_argument);
  // Augmented fine-tuning recalibrates the batch norms that learn, as the shipped model's
  // training did; without augmentation the running averages already follow clean images.
  o = {};
  CHECK(o.train_options().bn_recalibration_images == 2048);
  o.augment = false;
  CHECK(o.train_options().bn_recalibration_images == 0);
}
