// The JavaScript API of the wasm module (the only file that includes Emscripten headers).
//
//   const NL = await createNeuroLens();
//   const engine = new NL.Engine();            // owns a Runtime and (once loaded) a model;
//                                              // new NL.Engine(n): n threads (pthread builds)
//   const info = engine.loadModel(bytes);      // JS must call engine.delete() when done
//   const r = engine.classify(imageBytes, {gradcam: true});
//
// Engine methods (all synchronous; the page calls them from its Web Worker):
//   loadModel(Uint8Array) -> info      info(), hasModel(), threads(), saveModel() -> Uint8Array
//     info = {classes, input: {height, width, channels}, layers: [{name, type, inputs,
//             outputShape, params}], parameterCount, flops, training, preprocessing,
//             confidence: {temperature, uncertainBelow, hasOutlierDetector, outlierThreshold?}}
//   classify(Uint8Array, {gradcam?}) -> {probabilities: Float32Array (calibrated), classIndex,
//             className, classes, milliseconds, uncertain, outOfDistribution, outlierScore?,
//             region, heatmap?: {layer, width, height, data: Float32Array}}
//   classifyGrey(width, height, Uint8Array grey levels, {gradcam?}) -> the same, for a scan slice
//             already through its window (the scan module's slice())
//   summarizeVolume([probabilities per slice]) -> {slicesPerClass, mostTumourLike,
//             mostTumourLikeScore, tumourSlices, tumourSlicesNeeded, verdict, verdictIndex}
//   predict(Float32Array) -> Float32Array probabilities, for an already preprocessed [H,W,C]
//             input (benchmarks, comparisons with other runtimes)
//   profile(Float32Array, runs) -> [{name, type, ms}]: each layer's median forward time over
//             runs passes of predict's model (benchmarks: where the time goes in this build)
//   inferenceModel() -> Uint8Array: the model as classification runs it (batch norm folded
//             into the convolutions, ReLUs fused), as a safetensors file
//   featureMaps(Uint8Array, layerName) -> {layer, type, height, width, channels, data}
//   beginFineTune(); addTrainingImage(path, className, Uint8Array) -> "" | why skipped;
//   fineTune(options, onProgress) -> {cancelled, before, after, history, ...};
//   fineTunedModel() -> Uint8Array; endFineTune()
// Module functions: heapBytesInUse() (allocator bytes in use, for leak checks);
//   gemmPeak(seconds, threads) -> {gflopsPerSecond, m, k, n}: XNNPACK's f32 GEMM speed here.
//
// Rules of the boundary:
//  - Inputs are Uint8Arrays (file bytes) and plain option objects; they are copied in.
//  - Everything returned is a fresh JS value the caller owns: plain objects, arrays, and typed
//    arrays copied out of the wasm heap (never views into it, which a heap growth would detach).
//  - A C++ exception becomes a thrown JS Error carrying the C++ message; the engine stays usable.
//  - Engine is the only object JS must free (engine.delete()).
#include <emscripten.h>
#include <emscripten/bind.h>
#include <emscripten/val.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "features/classify.h"
#include "features/explain.h"
#include "features/finetune.h"
#include "features/gemm_peak.h"
#include "features/volume_summary.h"
#include "formats/image.h"
#include "core/model.h"
#include "formats/model_file.h"
#include "core/runtime.h"
#include "wasm/boundary.h"

namespace {

using emscripten::val;
using namespace nl::wasm;

val shape_array(const nl::Shape& shape) {
  val out = val::array();
  for (size_t d : shape) out.call<void>("push", static_cast<double>(d));
  return out;
}

val evaluation_to_js(const nl::Evaluation& ev) {
  val out = val::object();
  out.set("images", static_cast<double>(ev.items.size()));
  out.set("accuracy", ev.accuracy);
  out.set("loss", ev.loss);
  val confusion = val::array();
  for (const auto& row : ev.confusion) {
    val r = val::array();
    for (size_t n : row) r.call<void>("push", static_cast<double>(n));
    confusion.call<void>("push", r);
  }
  out.set("confusion", confusion);
  return out;
}

val batch_progress_to_js(const nl::BatchProgress& p) {
  val out = val::object();
  out.set("kind", std::string("batch"));
  out.set("epoch", static_cast<double>(p.epoch));
  out.set("epochs", static_cast<double>(p.epochs));
  out.set("batch", static_cast<double>(p.batch));
  out.set("batches", static_cast<double>(p.batches));
  out.set("loss", p.loss);
  out.set("accuracy", p.accuracy);
  out.set("imagesPerSecond", p.images_per_second);
  return out;
}

val epoch_to_js(const nl::EpochRecord& r) {
  val out = val::object();
  out.set("kind", std::string("epoch"));
  out.set("epoch", static_cast<double>(r.epoch));
  out.set("learningRate", r.lr);
  out.set("trainLoss", r.train_loss);
  out.set("trainAccuracy", r.train_accuracy);
  out.set("hasValidation", r.has_validation);
  out.set("validationLoss", r.val_loss);
  out.set("validationAccuracy", r.val_accuracy);
  out.set("seconds", r.seconds);
  out.set("best", r.best);
  return out;
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

// ---- the engine -----------------------------------------------------------------------------

class Engine {
 public:
  // threads: XNNPACK's thread pool size; only a -pthread build can use more than 1.
  explicit Engine(size_t threads = 1) : runtime_(threads) {}

  double threads() const { return static_cast<double>(runtime_.threads()); }

  // Loads a model file (safetensors bytes). On failure the previous model stays in use.
  val loadModel(val bytes) {
    return guarded([&] {
      const std::vector<uint8_t> data = bytes_from_js(bytes, "loadModel: the model file");
      auto model = std::make_unique<nl::Model>(nl::load_model(data));
      auto inference = std::make_unique<nl::Model>(model->folded());
      model_ = std::move(model);
      inference_ = std::move(inference);
      return describe();
    });
  }

  bool hasModel() const { return model_ != nullptr; }

  val info() {
    return guarded([&] {
      require_model();
      return describe();
    });
  }

  // {probabilities: Float32Array, classIndex, className, classes, milliseconds,
  //  region: {imageWidth, imageHeight, x, y, width, height} (the part of the image the
  //  model saw, in its pixels; may reach past the edges when cropped to the head),
  //  heatmap?: {layer, width, height, data: Float32Array in [0,1]} over that region}
  val classify(val bytes, val options) {
    return guarded([&] {
      require_model();
      const std::vector<uint8_t> data = bytes_from_js(bytes, "classify: the image");
      const auto start = std::chrono::steady_clock::now();
      return classification_to_js(nl::classify_image(runtime_, *inference_, data), start, options);
    });
  }

  // The same for an image given as grey levels (a scan slice through its window, from the scan
  // module): width x height Uint8Array, row-major.
  val classifyGrey(double width, double height, val levels, val options) {
    return guarded([&] {
      require_model();
      const std::vector<uint8_t> data = bytes_from_js(levels, "classifyGrey: the grey levels");
      if (!(width >= 1 && height >= 1 && width == std::floor(width) && height == std::floor(height)))
        throw std::invalid_argument("classifyGrey: width and height must be whole numbers >= 1");
      const auto start = std::chrono::steady_clock::now();
      nl::GreyImage image = nl::grey_from_levels(static_cast<size_t>(width), static_cast<size_t>(height), data);
      return classification_to_js(nl::classify_grey(runtime_, *inference_, std::move(image)), start, options);
    });
  }

  // The verdict on a volume from its slices' probabilities, by the rule the command line uses
  // (features/volume_summary.h): [Float32Array | number[] per slice] -> {slicesPerClass,
  // mostTumourLike, mostTumourLikeScore, tumourSlices, tumourSlicesNeeded, verdict, verdictIndex}.
  val summarizeVolume(val slices) {
    return guarded([&] {
      require_model();
      if (!slices.isArray()) throw std::invalid_argument("summarizeVolume: give an array of per-slice probabilities");
      std::vector<std::vector<float>> rows(slices["length"].as<size_t>());
      for (size_t z = 0; z < rows.size(); ++z) rows[z] = emscripten::convertJSArrayToNumberVector<float>(slices[z]);
      const nl::VolumeSummary s = nl::summarize_volume(rows, model_->classes());
      val out = val::object();
      val counts = val::array();
      for (size_t n : s.slices_per_class) counts.call<void>("push", static_cast<double>(n));
      out.set("slicesPerClass", counts);
      out.set("mostTumourLike", static_cast<double>(s.most_tumour_like));
      out.set("mostTumourLikeScore", s.most_tumour_like_score);
      out.set("tumourSlices", static_cast<double>(s.tumour_slices));
      out.set("tumourSlicesNeeded", static_cast<double>(nl::tumour_slices_needed(s.slices)));
      out.set("verdictIndex", static_cast<double>(s.verdict));
      out.set("verdict", model_->classes().at(s.verdict));
      return out;
    });
  }

 private:
  val classification_to_js(const nl::Classification& c, std::chrono::steady_clock::time_point start,
                           const val& options) {
    const bool want_gradcam = bool_option(options, "gradcam", false);
    const double ms = elapsed_ms(start);
    const nl::InputRegion& region = c.region;

    val out = val::object();
    out.set("probabilities", float_array_copy(c.probabilities.data(), c.probabilities.size()));
    out.set("classIndex", static_cast<double>(c.class_index));
    out.set("className", model_->classes().at(c.class_index));
    out.set("classes", string_array(model_->classes()));
    out.set("milliseconds", ms);
    out.set("uncertain", c.uncertain);
    out.set("outOfDistribution", c.out_of_distribution);
    if (c.has_outlier_score) out.set("outlierScore", c.outlier_score);
    val where = val::object();
    where.set("imageWidth", static_cast<double>(region.image_width));
    where.set("imageHeight", static_cast<double>(region.image_height));
    where.set("x", static_cast<double>(region.box.x));
    where.set("y", static_cast<double>(region.box.y));
    where.set("width", static_cast<double>(region.box.width));
    where.set("height", static_cast<double>(region.box.height));
    out.set("region", where);
    if (want_gradcam) {
      const nl::Heatmap map = nl::grad_cam(runtime_, *model_, c.input, c.class_index);
      val heat = val::object();
      heat.set("layer", map.layer);
      heat.set("width", static_cast<double>(map.width));
      heat.set("height", static_cast<double>(map.height));
      heat.set("data", float_array_copy(map.values.data(), map.values.size()));
      out.set("heatmap", heat);
    }
    return out;
  }

 public:
  // Probabilities for one preprocessed input (Float32Array of H*W*C values, NHWC order).
  val predict(val input) {
    return guarded([&] {
      require_model();
      if (!input.instanceof(val::global("Float32Array")))
        throw std::invalid_argument("predict: the input must be a Float32Array");
      nl::Tensor x(inference_->input_shape(1));
      const size_t n = input["length"].as<size_t>();
      if (n != x.size())
        throw std::invalid_argument("predict: the input has " + std::to_string(n) +
                                    " values but the model takes " + nl::to_string(x.shape()) +
                                    " = " + std::to_string(x.size()));
      val(emscripten::typed_memory_view(n, x.data())).call<void>("set", input);
      const nl::Tensor& probs = inference_->forward(runtime_, x, /*training=*/false);
      return float_array_copy(probs.data(), probs.size());
    });
  }

  val profile(val input, double runs) {
    return guarded([&] {
      require_model();
      if (!(runs >= 1 && runs <= 100000 && runs == std::floor(runs)))
        throw std::invalid_argument("profile: runs must be a whole number in 1..100000");
      nl::Tensor x(inference_->input_shape(1));
      if (!input.instanceof(val::global("Float32Array")) || input["length"].as<size_t>() != x.size())
        throw std::invalid_argument("profile: the input must be a Float32Array of " + std::to_string(x.size()) + " values");
      val(emscripten::typed_memory_view(x.size(), x.data())).call<void>("set", input);
      std::vector<std::vector<double>> per_layer(inference_->layer_count());  // [layer][run]
      std::vector<double> layer_ms;
      for (size_t r = 0; r < static_cast<size_t>(runs); ++r) {
        layer_ms.assign(inference_->layer_count(), 0.0);
        inference_->forward(runtime_, x, /*training=*/false, &layer_ms);
        for (size_t l = 0; l < per_layer.size(); ++l) per_layer[l].push_back(layer_ms[l]);
      }
      val out = val::array();
      for (size_t l = 0; l < per_layer.size(); ++l) {
        std::vector<double>& v = per_layer[l];
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        val layer = val::object();
        layer.set("name", inference_->layer(l).spec().name);
        layer.set("type", inference_->layer(l).spec().type);
        layer.set("ms", v[v.size() / 2]);
        out.call<void>("push", layer);
      }
      return out;
    });
  }

  val inferenceModel() {
    return guarded([&] {
      require_model();
      return byte_array_copy(nl::serialize_model(*inference_));
    });
  }

  // {layer, type, height, width, channels, data: Float32Array [H,W,C]}
  val featureMaps(val bytes, std::string layer) {
    return guarded([&] {
      require_model();
      const std::vector<uint8_t> data = bytes_from_js(bytes, "featureMaps: the image");
      const nl::Tensor input =
          nl::preprocess(data, model_->architecture(), model_->preprocessing());
      const nl::FeatureMaps maps = nl::feature_maps(runtime_, *model_, input, layer);
      val out = val::object();
      out.set("layer", maps.layer);
      out.set("type", maps.type);
      out.set("height", static_cast<double>(maps.height));
      out.set("width", static_cast<double>(maps.width));
      out.set("channels", static_cast<double>(maps.channels));
      out.set("data", float_array_copy(maps.values.data(), maps.values.size()));
      return out;
    });
  }

  // The model in use as a safetensors file (Uint8Array), the format the CLI reads.
  val saveModel() {
    return guarded([&] {
      require_model();
      return byte_array_copy(nl::serialize_model(*model_));
    });
  }

  // ---- fine-tuning: beginFineTune, addTrainingImage..., fineTune, fineTunedModel, endFineTune

  // Starts collecting labelled images for the model in use (dropping any earlier session).
  void beginFineTune() {
    guarded([&] {
      require_model();
      session_ = std::make_unique<nl::FineTuneSession>(*model_);
    });
  }

  // Returns "" when the image was added, else the reason it was skipped.
  std::string addTrainingImage(std::string path, std::string className, val bytes) {
    return guarded([&] {
      require_session();
      const std::vector<uint8_t> data = bytes_from_js(bytes, "addTrainingImage: the image");
      return session_->add_image(path, className, data);
    });
  }

  // options: {epochs, batchSize, learningRate, trainableLayers (0 = all), validationFraction,
  // augment, seed}; onProgress(event) is called after every batch ({kind: 'batch', ...}) and
  // epoch ({kind: 'epoch', ...}); returning false from a batch event cancels. It must not
  // throw. Trains a copy: the model in use is unchanged until the page loads the result.
  val fineTune(val options, val onProgress) {
    return guarded([&] {
      require_model();
      require_session();
      nl::FineTuneOptions o;
      o.epochs = count_option(options, "epochs", o.epochs);
      o.batch_size = count_option(options, "batchSize", o.batch_size);
      o.lr = number_option(options, "learningRate", o.lr);
      o.trainable_layers = count_option(options, "trainableLayers", o.trainable_layers);
      o.validation_fraction = number_option(options, "validationFraction", o.validation_fraction);
      o.augment = bool_option(options, "augment", o.augment);
      o.seed = count_option(options, "seed", o.seed);
      const bool report = onProgress.typeOf().as<std::string>() == "function";

      nl::FineTuneCallbacks callbacks;
      callbacks.on_batch = [&](const nl::BatchProgress& p) {
        if (!report) return true;
        const val keep_going = onProgress(batch_progress_to_js(p));
        return !(keep_going.typeOf().as<std::string>() == "boolean" && !keep_going.as<bool>());
      };
      callbacks.on_epoch = [&](const nl::EpochRecord& r) {
        if (report) onProgress(epoch_to_js(r));
      };
      const nl::FineTuneResult r = session_->run(runtime_, *model_, o, callbacks);

      val out = val::object();
      out.set("cancelled", r.cancelled);
      out.set("trainImages", static_cast<double>(r.train_images));
      out.set("validationImages", static_cast<double>(r.validation_images));
      out.set("hasValidation", r.has_validation);
      out.set("before", evaluation_to_js(r.before));
      out.set("after", evaluation_to_js(r.after));
      out.set("bestEpoch", static_cast<double>(r.best_epoch));
      val history = val::array();
      for (const nl::EpochRecord& e : r.history) history.call<void>("push", epoch_to_js(e));
      out.set("history", history);
      val skipped = val::array();
      for (const std::string& s : session_->data().skipped()) skipped.call<void>("push", s);
      out.set("skipped", skipped);
      return out;
    });
  }

  // The fine-tuned model of the last finished fineTune, as a safetensors file (Uint8Array).
  val fineTunedModel() {
    return guarded([&] {
      require_session();
      if (!session_->tuned()) throw std::logic_error("no fine-tuned model (fineTune has not finished)");
      return byte_array_copy(nl::serialize_model(*session_->tuned()));
    });
  }

  // Frees the session's images and fine-tuned model.
  void endFineTune() { session_.reset(); }

 private:
  void require_session() const {
    if (!session_) throw std::logic_error("no fine-tuning session (call beginFineTune first)");
  }

  void require_model() const {
    if (!model_) throw std::logic_error("no model is loaded (call loadModel first)");
  }

  val describe() const {
    const nl::Model& m = *model_;
    val input = val::object();
    input.set("height", static_cast<double>(m.architecture().height));
    input.set("width", static_cast<double>(m.architecture().width));
    input.set("channels", static_cast<double>(m.architecture().channels));

    val layers = val::array();
    for (size_t i = 0; i < m.layer_count(); ++i) {
      const nl::Layer& layer = m.layer(i);
      size_t params = 0;
      for (const nl::Param& p : layer.params()) params += p.value.size();
      val l = val::object();
      l.set("name", layer.spec().name);
      l.set("type", layer.spec().type);
      l.set("inputs", string_array(layer.spec().inputs));
      l.set("outputShape", shape_array(m.output_shape(i, 1)));
      l.set("params", static_cast<double>(params));
      layers.call<void>("push", l);
    }

    val out = val::object();
    out.set("classes", string_array(m.classes()));
    out.set("input", input);
    out.set("layers", layers);
    out.set("parameterCount", static_cast<double>(m.parameter_count()));
    out.set("flops", m.flops_per_image());
    out.set("training", val::global("JSON").call<val>("parse", m.training_record().dump()));
    out.set("preprocessing", val::global("JSON").call<val>("parse", nl::to_json(m.preprocessing()).dump()));
    const nl::Confidence& c = m.confidence();
    val confidence = val::object();
    confidence.set("temperature", c.temperature);
    confidence.set("uncertainBelow", c.uncertain_below);
    confidence.set("hasOutlierDetector", c.has_detector());
    if (c.has_detector()) confidence.set("outlierThreshold", c.ood_threshold);
    out.set("confidence", confidence);
    return out;
  }

  nl::Runtime runtime_;
  std::unique_ptr<nl::Model> model_;      // as loaded: Grad-CAM, feature maps, saving, training
  std::unique_ptr<nl::Model> inference_;  // model_.folded(): classification
  std::unique_ptr<nl::FineTuneSession> session_;
};

Engine* make_engine() {
  return guarded([] { return new Engine(); });
}

Engine* make_engine_with_threads(double threads) {
  return guarded([&] {
    if (!(threads >= 1 && threads <= 64 && threads == std::floor(threads)))
      throw std::invalid_argument("Engine(threads): threads must be a whole number in 1..64, got " +
                                  std::to_string(threads));
    return new Engine(static_cast<size_t>(threads));
  });
}

// Bytes the wasm heap's allocator has handed out and not taken back: the page's heap check.
double heap_bytes_in_use() { return static_cast<double>(mallinfo().uordblks); }

// {gflopsPerSecond, m, k, n}: the fastest f32 GEMM XNNPACK runs here (see gemm_peak.h).
val gemm_peak(double seconds, double threads) {
  return guarded([&] {
    if (!(threads >= 1 && threads <= 64 && threads == std::floor(threads)))
      throw std::invalid_argument("gemmPeak: threads must be a whole number in 1..64, got " +
                                  std::to_string(threads));
    if (!(seconds > 0 && seconds <= 60))
      throw std::invalid_argument("gemmPeak: seconds must be in (0, 60], got " + std::to_string(seconds));
    nl::Runtime rt(static_cast<size_t>(threads));
    const nl::GemmPeak peak = nl::measure_gemm_peak(rt, seconds);
    val out = val::object();
    out.set("gflopsPerSecond", peak.gflops_per_s);
    out.set("m", static_cast<double>(peak.best.m));
    out.set("k", static_cast<double>(peak.best.k));
    out.set("n", static_cast<double>(peak.best.n));
    return out;
  });
}

}  // namespace

EMSCRIPTEN_BINDINGS(neurolens) {
  emscripten::class_<Engine>("Engine")
      .constructor(&make_engine, emscripten::allow_raw_pointers())
      .constructor(&make_engine_with_threads, emscripten::allow_raw_pointers())
      .function("threads", &Engine::threads)
      .function("loadModel", &Engine::loadModel)
      .function("hasModel", &Engine::hasModel)
      .function("info", &Engine::info)
      .function("classify", &Engine::classify)
      .function("classifyGrey", &Engine::classifyGrey)
      .function("summarizeVolume", &Engine::summarizeVolume)
      .function("predict", &Engine::predict)
      .function("profile", &Engine::profile)
      .function("inferenceModel", &Engine::inferenceModel)
      .function("featureMaps", &Engine::featureMaps)
      .function("saveModel", &Engine::saveModel)
      .function("beginFineTune", &Engine::beginFineTune)
      .function("addTrainingImage", &Engine::addTrainingImage)
      .function("fineTune", &Engine::fineTune)
      .function("fineTunedModel", &Engine::fineTunedModel)
      .function("endFineTune", &Engine::endFineTune);
  emscripten::function("heapBytesInUse", &heap_bytes_in_use);
  emscripten::function("gemmPeak", &gemm_peak);
  nl_install_stack_guards("Engine");
}
