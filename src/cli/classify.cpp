// neurolens classify: class probabilities for each image, as text or JSON. A file that
// fails (unreadable, not an image, ...) is reported and the others still run; the exit
// status is 1 if any failed.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/runtime.h"
#include "features/classify.h"
#include "formats/file_io.h"
#include "formats/model_file.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "model file (.safetensors) to classify with (required)"},
    {"--json", "", "print one JSON document instead of text"},
    {"--threads", "N", "threads for the forward pass (0 = one per core; default 1)"},
};

void print_help() {
  std::printf(
      "usage: neurolens classify --model FILE [--json] [--threads N] IMAGE...\n\n"
      "Classifies each image (JPEG, PNG, BMP, GIF or TGA; converted to grey, cropped to the head\n"
      "if the model's preprocessing says so, and resized to the model's input) and prints its class, the probability of every class and the time taken\n"
      "(decoding + preprocessing + forward pass; model loading excluded). Images that fail are\n"
      "reported and the rest still run; the exit status is 1 if any failed, 2 on a usage error.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

constexpr uint64_t kMaxImageBytes = uint64_t{1} << 30;

struct Result {
  std::string file;
  std::vector<float> probabilities;
  size_t best = 0;  // the predicted class
  double ms = 0;
  std::string error;
};

}  // namespace

int run_classify(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.has("--model")) throw UsageError("--model FILE is required");
  if (args.positional().empty()) throw UsageError("no images given");
  const bool json_out = args.has("--json");
  const size_t threads = args.get_size("--threads", 1, 0, 256);
  const std::string model_path = args.get("--model");

  Runtime rt(threads);
  Model model = load_model_file(model_path).folded();
  const std::vector<std::string>& classes = model.classes();
  // One forward pass before timing: XNNPACK operators are created (weights packed) on first use.
  model.forward(rt, Tensor(model.input_shape(1)), false);

  std::vector<Result> results;
  bool any_failed = false;
  for (const std::string& file : args.positional()) {
    Result r;
    r.file = file;
    const auto start = std::chrono::steady_clock::now();
    try {
      Classification c = classify_image(rt, model, read_file_bytes(file, "image", kMaxImageBytes));
      r.probabilities = std::move(c.probabilities);
      r.best = c.class_index;
    } catch (const std::exception& e) {
      r.error = e.what();
      any_failed = true;
    }
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!json_out) {
      if (!r.error.empty()) {
        std::fprintf(stderr, "neurolens classify: %s: %s\n", file.c_str(), r.error.c_str());
      } else {
        std::printf("%s: %s", file.c_str(), classes[r.best].c_str());
        for (size_t i = 0; i < classes.size(); ++i)
          std::printf("%s%s %.4f", i ? ", " : "  (", classes[i].c_str(), r.probabilities[i]);
        std::printf(")  %.1f ms\n", r.ms);
      }
      std::fflush(stdout);
    }
    results.push_back(std::move(r));
  }

  if (json_out) {
    nlohmann::json out = {{"model", model_path}, {"classes", classes}, {"results", nlohmann::json::array()}};
    for (const Result& r : results) {
      nlohmann::json entry = {{"file", r.file}};
      if (!r.error.empty()) {
        entry["error"] = r.error;
      } else {
        nlohmann::json probs = nlohmann::json::object();
        for (size_t i = 0; i < classes.size(); ++i) probs[classes[i]] = r.probabilities[i];
        entry["class"] = classes[r.best];
        entry["probabilities"] = probs;
      }
      entry["ms"] = r.ms;
      out["results"].push_back(entry);
    }
    // Replace invalid UTF-8 (file names are bytes) rather than failing to print.
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return any_failed ? 1 : 0;
}

}  // namespace nl::cli
