// neurolens classify: class probabilities for each image, as text or JSON. A file that
// fails (unreadable, not an image, ...) is reported and the others still run; the exit
// status is 1 if any failed.
#include <chrono>
#include <optional>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/scan_inputs.h"
#include "core/runtime.h"
#include "features/classify.h"
#include "features/volume_summary.h"
#include "formats/file_io.h"
#include "formats/model_file.h"
#include "formats/scans/scan_json.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "model file (.safetensors) to classify with (required)"},
    {"--json", "", "print one JSON document instead of text"},
    {"--threads", "N", "threads for the forward pass (0 = one per core; default 1)"},
};

void print_help() {
  std::printf(
      "usage: neurolens classify --model FILE [--json] [--threads N] IMAGE|SCAN|DIR...\n\n"
      "Classifies each image (JPEG, PNG, BMP, GIF or TGA), each DICOM file whatever its name\n"
      "(every slice of a multi-frame object), each NIfTI volume (.nii, .nii.gz; every slice) and\n"
      "each directory (searched recursively: its images, and its DICOM files grouped into series\n"
      "ordered along the slice normal; DICOMDIR skipped). Scans go through the file's window\n"
      "(else the 0.5th..99.5th percentile) to 8-bit grey; then everything is cropped to the head\n"
      "if the model's preprocessing says so and resized to the model's input. Prints one line per\n"
      "image or slice (class, every class's probability, time: decoding excluded for scans), and\n"
      "for each scan of several slices a summary: slices per class, the most tumour-like slice\n"
      "and the verdict (rule: README, \"Scanner formats\"). Probabilities are calibrated with the\n"
      "model's temperature; with a calibrated model (`neurolens calibrate`), an answer whose top\n"
      "probability is below the model's threshold is marked uncertain, and an input unlike the\n"
      "training images (outlier score above the model's threshold) gets a warning that it does\n"
      "not look like a brain MRI slice (in --json: \"uncertain\", \"out_of_distribution\",\n"
      "\"outlier_score\"). Files that fail are reported and the\n"
      "rest still run; the exit status is 1 if any failed, 2 on a usage error. No patient data is\n"
      "printed.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

constexpr uint64_t kMaxImageBytes = uint64_t{1} << 30;

struct Result {
  std::string file;
  std::optional<size_t> slice;  // for a slice of a scan
  std::vector<float> probabilities;
  size_t best = 0;  // the predicted class
  bool uncertain = false;
  std::optional<double> outlier_score;  // when the model has a detector
  bool out_of_distribution = false;
  double ms = 0;
  std::string error;
};

nlohmann::json probabilities_json(const std::vector<std::string>& classes, const std::vector<float>& p) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t i = 0; i < classes.size(); ++i) out[classes[i]] = p[i];
  return out;
}

class Classifier {
 public:
  Classifier(Runtime& rt, Model& model, bool json) : rt_(rt), model_(model), json_(json) {}

  // Runs `classify` (which gives a Classification) timed, prints the text line, keeps the result.
  template <typename F>
  const Result& run(std::string file, std::optional<size_t> slice, F&& classify) {
    Result r;
    r.file = std::move(file);
    r.slice = slice;
    const auto start = std::chrono::steady_clock::now();
    try {
      Classification c = classify();
      r.probabilities = std::move(c.probabilities);
      r.best = c.class_index;
      r.uncertain = c.uncertain;
      if (c.has_outlier_score) r.outlier_score = c.outlier_score;
      r.out_of_distribution = c.out_of_distribution;
    } catch (const std::exception& e) {
      fail(r, e.what());
    }
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!json_ && r.error.empty()) {
      std::printf("%s", r.file.c_str());
      if (r.slice) std::printf(" [slice %zu]", *r.slice);
      std::printf(": %s", classes()[r.best].c_str());
      for (size_t i = 0; i < classes().size(); ++i)
        std::printf("%s%s %.4f", i ? ", " : "  (", classes()[i].c_str(), r.probabilities[i]);
      std::printf(")  %.1f ms\n", r.ms);
      if (r.out_of_distribution)
        std::printf("  warning: this does not look like a brain MRI slice (outlier score %.4g, threshold %.4g); "
                    "the class above means little\n", *r.outlier_score, model_.confidence().ood_threshold);
      else if (r.uncertain)
        std::printf("  uncertain: the top probability is below %.2f; look at the second class too\n",
                    model_.confidence().uncertain_below);
      std::fflush(stdout);
    }
    results_.push_back(std::move(r));
    return results_.back();
  }

  void problem(const std::string& file, const std::string& message) {
    Result r;
    r.file = file;
    fail(r, message);
    results_.push_back(std::move(r));
  }

  void volume(const scans::Volume& v) {
    std::vector<std::vector<float>> probabilities;
    size_t outliers = 0;
    for (size_t z = 0; z < v.slices(); ++z) {
      const Result& r = run(v.source, v.single_image ? std::nullopt : std::optional<size_t>(z),
                            [&] { return classify_grey(rt_, model_, cli::slice_image(v, z)); });
      if (r.error.empty()) probabilities.push_back(r.probabilities);
      outliers += r.out_of_distribution;
    }
    if (v.single_image || probabilities.size() != v.slices()) return;
    const VolumeSummary s = summarize_volume(probabilities, classes());
    nlohmann::json per_class = nlohmann::json::object();
    for (size_t c = 0; c < classes().size(); ++c) per_class[classes()[c]] = s.slices_per_class[c];
    volumes_.push_back({{"file", v.source},
                        {"slices", s.slices},
                        {"slices_per_class", per_class},
                        {"most_tumour_like_slice", s.most_tumour_like},
                        {"most_tumour_like_score", s.most_tumour_like_score},
                        {"tumour_slices", s.tumour_slices},
                        {"verdict", classes()[s.verdict]},
                        {"out_of_distribution_slices", outliers},
                        {"scan", scans::to_json(v.info)}});
    if (json_) return;
    std::printf("%s: %zu slices:", v.source.c_str(), s.slices);
    for (size_t c = 0; c < classes().size(); ++c)
      std::printf("%s %s %zu", c ? "," : "", classes()[c].c_str(), s.slices_per_class[c]);
    std::printf("; most tumour-like slice %zu (1 - p(notumor) = %.4f); verdict: %s\n", s.most_tumour_like,
                s.most_tumour_like_score, classes()[s.verdict].c_str());
    if (outliers > 0)
      std::printf("  warning: %zu of the %zu slices do not look like brain MRI slices\n", outliers, s.slices);
    std::fflush(stdout);
  }

  bool any_failed() const { return any_failed_; }

  nlohmann::json report(const std::string& model_path, const std::vector<std::string>& passed_over) const {
    const Confidence& conf = model_.confidence();
    nlohmann::json confidence = {{"temperature", conf.temperature}, {"uncertain_below", conf.uncertain_below}};
    if (conf.has_detector()) confidence["outlier_threshold"] = conf.ood_threshold;
    nlohmann::json out = {{"model", model_path}, {"classes", classes()}, {"confidence", confidence},
                          {"results", nlohmann::json::array()}, {"volumes", volumes_}};
    if (!passed_over.empty()) out["passed_over"] = passed_over;
    for (const Result& r : results_) {
      nlohmann::json entry = {{"file", r.file}};
      if (r.slice) entry["slice"] = *r.slice;
      if (!r.error.empty()) {
        entry["error"] = r.error;
      } else {
        entry["class"] = classes()[r.best];
        entry["probabilities"] = probabilities_json(classes(), r.probabilities);
        entry["uncertain"] = r.uncertain;
        entry["out_of_distribution"] = r.out_of_distribution;
        if (r.outlier_score) entry["outlier_score"] = *r.outlier_score;
      }
      entry["ms"] = r.ms;
      out["results"].push_back(entry);
    }
    return out;
  }

 private:
  const std::vector<std::string>& classes() const { return model_.classes(); }
  void fail(Result& r, const std::string& message) {
    r.error = message;
    any_failed_ = true;
    if (!json_) std::fprintf(stderr, "neurolens classify: %s: %s\n", r.file.c_str(), message.c_str());
  }

  Runtime& rt_;
  Model& model_;
  bool json_;
  bool any_failed_ = false;
  std::vector<Result> results_;
  nlohmann::json volumes_ = nlohmann::json::array();
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
  // One forward pass before timing: XNNPACK operators are created (weights packed) on first use.
  model.forward(rt, Tensor(model.input_shape(1)), false);

  const Inputs inputs = collect_inputs(args.positional());
  Classifier classifier(rt, model, json_out);
  for (const Input& in : inputs.items) {
    if (in.volume) classifier.volume(*in.volume);
    else classifier.run(in.image, std::nullopt, [&] {
      return classify_image(rt, model, read_file_bytes(in.image, "image", kMaxImageBytes));
    });
  }
  for (const scans::Problem& p : inputs.problems) classifier.problem(p.file, p.message);
  if (!json_out && !inputs.passed_over.empty())
    std::fprintf(stderr, "neurolens classify: passed over %zu file(s) in the directories that are neither images nor DICOM/NIfTI (first: %s)\n",
                 inputs.passed_over.size(), inputs.passed_over.front().c_str());
  if (json_out) {
    // Replace invalid UTF-8 (file names are bytes) rather than failing to print.
    std::printf("%s\n", classifier.report(model_path, inputs.passed_over)
                            .dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return classifier.any_failed() ? 1 : 0;
}

}  // namespace nl::cli
