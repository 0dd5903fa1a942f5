// neurolens bench-scan: how fast a scan goes from files to per-slice classes — reading (GDCM or
// nifti_clib, windowing to real-world values) and then, slice by slice, the window to 8-bit,
// preprocessing and the forward pass. Prints figures; asserts nothing.
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/scan_inputs.h"
#include "core/runtime.h"
#include "features/classify.h"
#include "formats/model_file.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "model file to classify with (required)"},
    {"--threads", "N", "threads for the forward pass (0 = one per core; default 1)"},
    {"--json", "", "print the figures as JSON"},
};

void print_help() {
  std::printf(
      "usage: neurolens bench-scan --model FILE [--threads N] [--json] SCAN|DIR...\n\n"
      "Reads the scans (DICOM files or series, NIfTI volumes) and classifies every slice, timing\n"
      "the reading and the classification (window, preprocessing, forward pass) separately, and\n"
      "prints slices per second for each and for the whole.\n\noptions:\n%s",
      describe_options(kOptions).c_str());
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int run_bench_scan(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.has("--model")) throw UsageError("--model FILE is required");
  if (args.positional().empty()) throw UsageError("no scans given");
  Runtime rt(args.get_size("--threads", 1, 0, 256));
  Model model = load_model_file(args.get("--model")).folded();
  model.forward(rt, Tensor(model.input_shape(1)), false);  // operators created, weights packed

  const auto read_start = std::chrono::steady_clock::now();
  const Inputs inputs = collect_inputs(args.positional());
  const double read_s = seconds_since(read_start);
  if (!inputs.problems.empty())
    throw std::runtime_error(inputs.problems.front().file + ": " + inputs.problems.front().message);

  size_t slices = 0, volumes = 0;
  const auto classify_start = std::chrono::steady_clock::now();
  for (const Input& in : inputs.items) {
    if (!in.volume) continue;
    ++volumes;
    for (size_t z = 0; z < in.volume->slices(); ++z, ++slices)
      classify_grey(rt, model, slice_image(*in.volume, z));
  }
  const double classify_s = seconds_since(classify_start);
  if (slices == 0) throw std::runtime_error("no scan slices among the inputs");

  const double total_s = read_s + classify_s;
  if (args.has("--json")) {
    const nlohmann::json out = {{"volumes", volumes},          {"slices", slices},
                                {"threads", rt.threads()},      {"read_s", read_s},
                                {"classify_s", classify_s},     {"read_slices_per_s", slices / read_s},
                                {"classify_slices_per_s", slices / classify_s},
                                {"slices_per_s", slices / total_s}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("scans      %zu volume(s), %zu slices, %zu thread(s)\n", volumes, slices, rt.threads());
  std::printf("read       %.3f s (%.1f slices/s)\n", read_s, slices / read_s);
  std::printf("classify   %.3f s (%.1f slices/s)\n", classify_s, slices / classify_s);
  std::printf("total      %.3f s (%.1f slices/s)\n", total_s, slices / total_s);
  return 0;
}

}  // namespace nl::cli
