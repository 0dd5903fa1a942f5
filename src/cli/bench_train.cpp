// neurolens bench-train: training throughput (images per second) of an architecture at one or
// more thread counts, on seeded synthetic images, and where the time goes: XNNPACK operator
// runs, XNNPACK (de)convolution creation (weight packing after each optimizer step), and our own
// code (batch assembly and augmentation, im2col and other backward loops, loss, AdamW).
//
// XNNPACK calls are timed by wrapping them at link time (-Wl,--wrap=..., set for the
// `neurolens` executable in CMakeLists.txt): every call from any layer goes through the
// wrappers below, which add their duration to counters while a benchmark is measuring.
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <xnnpack.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/train_common.h"
#include "core/runtime.h"
#include "features/network_catalogue.h"
#include "core/rng.h"
#include "train/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_measuring{false};
std::atomic<int64_t> g_run_ns{0}, g_create_ns{0};
std::atomic<int64_t> g_run_calls{0};

int64_t ns_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}

}  // namespace

extern "C" {
enum xnn_status __real_xnn_run_operator(xnn_operator_t op, pthreadpool_t threadpool);
enum xnn_status __wrap_xnn_run_operator(xnn_operator_t op, pthreadpool_t threadpool) {
  if (!g_measuring.load(std::memory_order_relaxed)) return __real_xnn_run_operator(op, threadpool);
  const auto t = Clock::now();
  const enum xnn_status s = __real_xnn_run_operator(op, threadpool);
  g_run_ns += ns_since(t);
  ++g_run_calls;
  return s;
}

enum xnn_status __real_xnn_create_convolution2d_nhwc_f32(
    uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
    uint32_t, size_t, size_t, size_t, size_t, const float*, const float*, float, float, uint32_t,
    xnn_code_cache_t, xnn_weights_cache_t, xnn_operator_t*);
enum xnn_status __wrap_xnn_create_convolution2d_nhwc_f32(
    uint32_t pt, uint32_t pr, uint32_t pb, uint32_t pl, uint32_t kh, uint32_t kw, uint32_t sh,
    uint32_t sw, uint32_t dh, uint32_t dw, uint32_t groups, size_t gic, size_t goc, size_t ics,
    size_t ocs, const float* kernel, const float* bias, float out_min, float out_max, uint32_t flags,
    xnn_code_cache_t code_cache, xnn_weights_cache_t weights_cache, xnn_operator_t* out) {
  const auto t = Clock::now();
  const enum xnn_status s = __real_xnn_create_convolution2d_nhwc_f32(
      pt, pr, pb, pl, kh, kw, sh, sw, dh, dw, groups, gic, goc, ics, ocs, kernel, bias, out_min,
      out_max, flags, code_cache, weights_cache, out);
  if (g_measuring.load(std::memory_order_relaxed)) g_create_ns += ns_since(t);
  return s;
}

// The convolutions' input gradients are deconvolutions with the same weights, re-created
// after each step like the forward operators: their packing counts as convolution creation.
enum xnn_status __real_xnn_create_deconvolution2d_nhwc_f32(
    uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
    uint32_t, size_t, size_t, size_t, size_t, const float*, const float*, float, float, uint32_t,
    xnn_code_cache_t, xnn_weights_cache_t, xnn_operator_t*);
enum xnn_status __wrap_xnn_create_deconvolution2d_nhwc_f32(
    uint32_t pt, uint32_t pr, uint32_t pb, uint32_t pl, uint32_t kh, uint32_t kw, uint32_t sh,
    uint32_t sw, uint32_t dh, uint32_t dw, uint32_t groups, size_t gic, size_t goc, size_t ips,
    size_t ops, const float* kernel, const float* bias, float out_min, float out_max, uint32_t flags,
    xnn_code_cache_t code_cache, xnn_weights_cache_t weights_cache, xnn_operator_t* out) {
  const auto t = Clock::now();
  const enum xnn_status s = __real_xnn_create_deconvolution2d_nhwc_f32(
      pt, pr, pb, pl, kh, kw, sh, sw, dh, dw, groups, gic, goc, ips, ops, kernel, bias, out_min,
      out_max, flags, code_cache, weights_cache, out);
  if (g_measuring.load(std::memory_order_relaxed)) g_create_ns += ns_since(t);
  return s;
}
}  // extern "C"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--arch", "NAME", "architecture (default resnet-s)"},
    {"--input-size", "N", "input side in pixels (default: the architecture's)"},
    {"--batch", "N", "images per training step (default 32)"},
    {"--steps", "N", "timed training steps per thread count (default 10)"},
    {"--warmup", "N", "untimed steps first (default 2)"},
    {"--threads", "LIST", "thread counts to measure, comma-separated (default 1,2)"},
    {"--no-augment", "", "assemble batches without augmentation"},
    {"--profile", "", "also print each layer's forward and backward time per step"},
    {"--json", "", "print the figures as JSON"},
};

void print_help() {
  std::printf(
      "usage: neurolens bench-train [--arch NAME] [--input-size N] [--batch N] [--steps N]\n"
      "                             [--warmup N] [--threads LIST] [--no-augment] [--profile] [--json]\n\n"
      "Times full training steps (batch assembly with augmentation, forward in training mode,\n"
      "softmax cross-entropy, backward, AdamW) of a freshly initialised model on synthetic\n"
      "images, and prints images per second for each thread count with the share of time in\n"
      "XNNPACK operator runs, in XNNPACK convolution creation (re-packing weights after each\n"
      "step) and in the project's own code. Figures only; nothing is asserted.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

std::vector<size_t> parse_list(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos)
      throw UsageError("--threads expects a list like 1,2; got '" + s + "'");
    const size_t v = std::stoul(part);
    if (v < 1 || v > 256) throw UsageError("--threads: each count must be from 1 to 256");
    out.push_back(v);
  }
  if (out.empty()) throw UsageError("--threads expects a list like 1,2");
  return out;
}

struct Figures {
  size_t threads = 0;
  double seconds = 0, images_per_second = 0;
  double batch_s = 0, forward_s = 0, backward_s = 0, step_s = 0;  // wall time per phase
  double xnn_run_s = 0, xnn_create_s = 0;
  int64_t xnn_calls = 0;
  std::vector<double> forward_ms, backward_ms;  // per layer, summed over the timed steps
};

// Smooth random blobs, seeded: enough images for a few distinct batches.
Dataset synthetic_dataset(const std::vector<std::string>& classes, size_t size, size_t batch) {
  Dataset data(classes, size, size);
  const size_t images = std::max<size_t>(batch * 2, 64);
  std::vector<float> px(size * size);
  for (size_t i = 0; i < images; ++i) {
    Rng rng(derive_seed(99, {i}));
    const double cx = rng.uniform(0.3, 0.7) * size, cy = rng.uniform(0.3, 0.7) * size, r = rng.uniform(0.1, 0.3) * size;
    for (size_t y = 0; y < size; ++y)
      for (size_t x = 0; x < size; ++x) {
        const double d = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (r * r);
        px[y * size + x] = static_cast<float>(0.8 * std::exp(-d) + 0.1 * rng.uniform());
      }
    data.add_decoded(std::to_string(i), static_cast<int>(i % classes.size()), i, px);
  }
  return data;
}

Model fresh_model(const Architecture& arch, const std::vector<std::string>& classes) {
  Model model(arch, classes, Preprocessing{0.2f, 0.25f});
  model.init_params(1);
  return model;
}

// Times `steps` of the trainer's own step (after `warmup` untimed ones) on a fresh model.
Figures measure(size_t threads, const Architecture& arch, const Dataset& data,
                const AugmentOptions& augment, size_t batch, size_t steps, size_t warmup) {
  Runtime rt(threads);
  Model model = fresh_model(arch, data.classes());
  std::vector<size_t> all_items(data.size());
  for (size_t i = 0; i < all_items.size(); ++i) all_items[i] = i;
  // The trainer's default recipe (AdamW, as the shipped model is trained). A step's work does
  // not depend on where the learning-rate schedule is.
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = batch;
  options.augment = augment;
  Trainer trainer(rt, model, data, all_items, {}, options);
  Figures f;
  f.threads = rt.threads();
  for (size_t s = 0; s < warmup + steps; ++s) {
    if (s == warmup) {
      g_run_ns = 0;
      g_create_ns = 0;
      g_run_calls = 0;
      g_measuring = true;
    }
    std::vector<size_t> items(batch);
    for (size_t k = 0; k < batch; ++k) items[k] = (s * batch + k) % data.size();
    const bool timed = s >= warmup;
    const StepResult step = trainer.step(items, s + 1, 0, timed ? &f.forward_ms : nullptr,
                                         timed ? &f.backward_ms : nullptr);
    if (timed) {
      f.batch_s += step.batch_seconds;
      f.forward_s += step.forward_seconds;
      f.backward_s += step.backward_seconds;
      f.step_s += step.optimizer_seconds;
    }
  }
  g_measuring = false;
  f.seconds = f.batch_s + f.forward_s + f.backward_s + f.step_s;
  f.images_per_second = static_cast<double>(steps * batch) / f.seconds;
  f.xnn_run_s = g_run_ns * 1e-9;
  f.xnn_create_s = g_create_ns * 1e-9;
  f.xnn_calls = g_run_calls;
  return f;
}

// Each layer's mean forward and backward milliseconds per step.
nlohmann::json layer_profile(const Figures& f, const Architecture& arch, size_t steps) {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < arch.layers.size(); ++i)
    layers.push_back({{"name", arch.layers[i].name},
                      {"type", arch.layers[i].type},
                      {"forward_ms", i < f.forward_ms.size() ? f.forward_ms[i] / steps : 0.0},
                      {"backward_ms", i < f.backward_ms.size() ? f.backward_ms[i] / steps : 0.0}});
  return layers;
}

void print_profile(const Figures& f, const Architecture& arch, size_t steps) {
  std::printf("\nper layer on %zu threads, mean ms per step (backward includes summing the gradients it passes on)\n", f.threads);
  std::printf("layer                  type              forward  backward   share\n");
  const double step_ms = 1e3 * f.seconds / steps;
  for (const nlohmann::json& l : layer_profile(f, arch, steps)) {
    const double fw = l["forward_ms"], bw = l["backward_ms"];
    std::printf("%-22s %-16s %8.3f  %8.3f  %5.1f%%\n", l["name"].get<std::string>().c_str(),
                l["type"].get<std::string>().c_str(), fw, bw, 100.0 * (fw + bw) / step_ms);
  }
}

void print_json(const nlohmann::json& setup, const std::vector<Figures>& results, const Architecture* profile_arch,
                size_t steps) {
  nlohmann::json runs = nlohmann::json::array();
  for (const Figures& f : results) {
    runs.push_back({{"threads", f.threads},
                    {"images_per_second", f.images_per_second},
                    {"seconds", f.seconds},
                    {"batch_assembly_s", f.batch_s},
                    {"forward_s", f.forward_s},
                    {"backward_s", f.backward_s},
                    {"optimizer_s", f.step_s},
                    {"xnnpack_run_s", f.xnn_run_s},
                    {"xnnpack_create_s", f.xnn_create_s},
                    {"xnnpack_run_calls", f.xnn_calls},
                    {"own_code_s", f.seconds - f.xnn_run_s - f.xnn_create_s}});
    if (profile_arch != nullptr) runs.back()["layers"] = layer_profile(f, *profile_arch, steps);
  }
  nlohmann::json out = setup;
  out["runs"] = std::move(runs);
  std::printf("%s\n", out.dump(2).c_str());
}

void print_table(const std::vector<Figures>& results, size_t steps) {
  std::printf("threads  images/s  s/step | batch+aug  forward  backward  AdamW | XNNPACK run  XNNPACK create  own code\n");
  for (const Figures& f : results) {
    const double own = f.seconds - f.xnn_run_s - f.xnn_create_s;
    std::printf("%7zu  %8.1f  %6.3f | %8.1f%%  %6.1f%%  %7.1f%%  %4.1f%% | %10.1f%%  %13.1f%%  %7.1f%%\n",
                f.threads, f.images_per_second, f.seconds / steps, 100 * f.batch_s / f.seconds,
                100 * f.forward_s / f.seconds, 100 * f.backward_s / f.seconds, 100 * f.step_s / f.seconds,
                100 * f.xnn_run_s / f.seconds, 100 * f.xnn_create_s / f.seconds, 100 * own / f.seconds);
  }
  if (results.size() > 1)
    std::printf("\nspeed-up %zu -> %zu threads: %.2fx\n", results.front().threads, results.back().threads,
                results.back().images_per_second / results.front().images_per_second);
}

}  // namespace

int run_bench_train(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const std::string arch_name = args.get("--arch", "resnet-s");
  const size_t batch = args.get_size("--batch", 32, 1, 1024);
  const size_t steps = args.get_size("--steps", 10, 1, 100000);
  const size_t warmup = args.get_size("--warmup", 2, 0, 100000);
  const std::vector<size_t> thread_counts = parse_list(args.get("--threads", "1,2"));
  const Architecture arch = make_architecture(arch_name, args.get_size("--input-size", 0, 8, 1024), 4);
  const size_t size = arch.width;
  const std::vector<std::string> classes = {"a", "b", "c", "d"};
  const Dataset data = synthetic_dataset(classes, size, batch);
  const AugmentOptions augment = args.has("--no-augment") ? AugmentOptions{} : AugmentOptions::mri();

  std::vector<Figures> results;
  for (size_t threads : thread_counts) results.push_back(measure(threads, arch, data, augment, batch, steps, warmup));
  const Model model = fresh_model(arch, classes);
  const double flops = model.flops_per_image();
  const size_t params = model.parameter_count();

  if (args.has("--json")) {
    print_json({{"arch", arch_name}, {"input_size", size}, {"batch", batch}, {"steps", steps},
                {"parameters", params}, {"flops_per_image", flops}},
               results, args.has("--profile") ? &arch : nullptr, steps);
    return 0;
  }
  std::printf("training throughput: %s, %zux%zu grey input, %zu parameters, %.1f MFLOP/image forward\n",
              arch_name.c_str(), size, size, params, flops / 1e6);
  std::printf("batch %zu, %zu timed steps after %zu warm-up steps, augmentation %s\n\n", batch, steps,
              warmup, augment.flip ? "on" : "off");
  print_table(results, steps);
  if (args.has("--profile"))
    for (const Figures& f : results) print_profile(f, arch, steps);
  return 0;
}

}  // namespace nl::cli
