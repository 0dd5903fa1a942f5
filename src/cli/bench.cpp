// neurolens bench: forward-pass timing of a model file, or of the built-in demo model with
// seeded weights. Prints figures; asserts nothing (speed targets live in benchmarks).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "features/network_catalogue.h"
#include "features/gemm_peak.h"
#include "formats/model_file.h"
#include "core/runtime.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "model file to time (default: the built-in demo model)"},
    {"--input-size", "N", "demo model input side in pixels (default 224)"},
    {"--seed", "N", "demo model weight seed (default 1)"},
    {"--batch", "N", "images per forward pass (default 1)"},
    {"--threads", "N", "threads (0 = one per core; default 1)"},
    {"--runs", "N", "timed forward passes (default 20)"},
    {"--warmup", "N", "untimed forward passes first (default 3)"},
    {"--no-fold", "", "time the model as loaded (batch-norm and ReLU not folded)"},
    {"--gemm-peak", "", "also measure XNNPACK's peak f32 GEMM speed and the model's share of it"},
    {"--profile", "", "also print each layer's median forward time (timed within the runs)"},
    {"--json", "", "print the figures as JSON"},
};

void print_help() {
  std::printf(
      "usage: neurolens bench [--model FILE | --input-size N --seed N] [--batch N] [--threads N]\n"
      "                       [--runs N] [--warmup N] [--no-fold] [--gemm-peak] [--profile] [--json]\n\n"
      "Times inference forward passes (XNNPACK operators created and weights packed during the\n"
      "warm-up) on a seeded random input and prints the median and mean time per pass and the\n"
      "images per second. By default the model is folded for inference, as `classify` runs it.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

}  // namespace

int run_bench(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (args.has("--model") && (args.has("--input-size") || args.has("--seed")))
    throw UsageError("--input-size and --seed describe the demo model; not with --model");
  const size_t batch = args.get_size("--batch", 1, 1, 1024);
  const size_t threads = args.get_size("--threads", 1, 0, 256);
  const size_t runs = args.get_size("--runs", 20, 1, 100000);
  const size_t warmup = args.get_size("--warmup", 3, 0, 100000);

  Runtime rt(threads);
  std::string source;
  Model loaded = [&] {
    if (args.has("--model")) {
      source = args.get("--model");
      return load_model_file(source);
    }
    const size_t size = args.get_size("--input-size", 224, 4, 4096);
    const size_t seed = args.get_size("--seed", 1, 0, 999999999999);
    source = "demo model " + std::to_string(size) + "x" + std::to_string(size) + ", seed " + std::to_string(seed);
    return make_demo_model(size, seed);
  }();
  const bool fold = !args.has("--no-fold");
  Model model = fold ? loaded.folded() : std::move(loaded);

  Tensor input(model.input_shape(batch));
  uint64_t s = 12345;
  for (float& v : input.values()) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(s >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
  }
  for (size_t i = 0; i < warmup; ++i) model.forward(rt, input, false);
  const bool profile = args.has("--profile");
  std::vector<double> ms;
  std::vector<std::vector<double>> layer_runs(profile ? model.layer_count() : 0);  // [layer][run]
  std::vector<double> layer_ms;
  for (size_t i = 0; i < runs; ++i) {
    layer_ms.assign(model.layer_count(), 0.0);
    const auto start = std::chrono::steady_clock::now();
    model.forward(rt, input, false, profile ? &layer_ms : nullptr);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    for (size_t l = 0; l < layer_runs.size(); ++l) layer_runs[l].push_back(layer_ms[l]);
  }
  auto median_of = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = median_of(ms);
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  const double images_per_s = 1000.0 * static_cast<double>(batch) / median;
  const double mflops = model.flops_per_image() / 1e6;
  const double gflops_per_s = mflops * static_cast<double>(batch) / median;  // MFLOP/ms = GFLOP/s

  GemmPeak peak;
  if (args.has("--gemm-peak")) peak = measure_gemm_peak(rt, 1.0);

  if (args.has("--json")) {
    nlohmann::json out = {
        {"model", source},          {"folded", fold},
        {"input", to_string(model.input_shape(batch))},
        {"parameters", model.parameter_count()},
        {"mflops_per_image", mflops}, {"threads", rt.threads()},
        {"batch", batch},           {"runs", runs},
        {"median_ms", median},      {"mean_ms", mean},
        {"min_ms", sorted.front()}, {"max_ms", sorted.back()},
        {"images_per_s", images_per_s}, {"gflops_per_s", gflops_per_s}};
    if (peak.gflops_per_s > 0) {
      out["gemm_peak_gflops_per_s"] = peak.gflops_per_s;
      out["gemm_peak_shape"] = {peak.best.m, peak.best.k, peak.best.n};
      out["fraction_of_gemm_peak"] = gflops_per_s / peak.gflops_per_s;
    }
    if (profile) {
      nlohmann::json layers = nlohmann::json::array();
      for (size_t l = 0; l < layer_runs.size(); ++l) {
        const Layer& layer = model.layer(l);
        layers.push_back({{"name", layer.spec().name}, {"type", layer.spec().type},
                          {"median_ms", median_of(layer_runs[l])}});
      }
      out["layers"] = layers;
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("model      %s%s\n", source.c_str(), fold ? " (folded for inference)" : "");
  std::printf("input      %s, %zu parameters, %.1f MFLOP per image\n", to_string(model.input_shape(batch)).c_str(),
              model.parameter_count(), mflops);
  std::printf("threads    %zu, %zu warm-up + %zu timed runs\n", rt.threads(), warmup, runs);
  std::printf("forward    median %.3f ms, mean %.3f ms (min %.3f, max %.3f)\n", median, mean, sorted.front(),
              sorted.back());
  std::printf("throughput %.1f images/s, %.2f GFLOP/s\n", images_per_s, gflops_per_s);
  if (profile) {
    // Per layer: median time, its share of the sum of medians, and its GFLOP/s.
    const Architecture arch = explicit_inputs(model.architecture());
    double total = 0.0;
    for (const auto& r : layer_runs) total += median_of(r);
    std::printf("layer                  type              median ms  share  GFLOP/s  output\n");
    for (size_t l = 0; l < layer_runs.size(); ++l) {
      const Layer& layer = model.layer(l);
      const double t = median_of(layer_runs[l]);
      std::vector<Shape> inputs;
      for (const std::string& name : arch.layers[l].inputs)
        inputs.push_back(name == "input" ? model.input_shape(1) : model.output_shape(model.layer_index(name), 1));
      const double gf = t > 0 ? layer.flops(inputs) * static_cast<double>(batch) / t / 1e6 : 0.0;
      std::printf("%-22s %-16s %10.4f %5.1f%% %8.2f  %s\n", layer.spec().name.c_str(), layer.spec().type.c_str(), t,
                  100.0 * t / total, gf, to_string(model.output_shape(l, batch)).c_str());
    }
    std::printf("sum of layer medians %.3f ms\n", total);
  }
  if (peak.gflops_per_s > 0)
    std::printf("GEMM peak  %.2f GFLOP/s (%zux%zux%zu); the model reaches %.0f%% of it\n", peak.gflops_per_s,
                peak.best.m, peak.best.k, peak.best.n, 100.0 * gflops_per_s / peak.gflops_per_s);
  return 0;
}

}  // namespace nl::cli
