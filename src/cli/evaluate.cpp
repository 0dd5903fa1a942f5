// neurolens evaluate: runs a model over a folder-per-class image set and reports accuracy,
// mean loss, the confusion matrix, per-class precision/recall/F1 and the misclassified
// files; --json prints all of it as one object.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/scan_inputs.h"
#include "formats/model_file.h"
#include "core/runtime.h"
#include "train/image_folder.h"
#include "train/metrics.h"
#include "train/calibration.h"
#include "train/evaluate.h"
#include "train/plot.h"
#include "formats/file_io.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "the model file"},
    {"--data", "DIR", "labelled images: each below a folder named after its class"},
    {"--json", "", "print one JSON object instead of the report"},
    {"--threads", "N", "threads (0 = one per core; default 0)"},
    {"--batch", "N", "images per forward pass (default 64)"},
    {"--calibration-svg", "FILE", "also write the reliability diagram (15 bins) of these images"},
};

void print_help() {
  std::printf(
      "usage: neurolens evaluate --model FILE --data DIR [--json] [--threads N] [--batch N]\n"
      "                          [--calibration-svg FILE]\n\n"
      "Classifies every image under DIR and compares with its class: that of the nearest\n"
      "enclosing folder named after one of the model's classes (DIR/glioma/a.jpg, DIR/Testing/\n"
      "No Tumor/b.png, ...; case, spaces and punctuation aside, readable names and aliases such\n"
      "as 'normal' count, as on the page). Files under no such folder and unreadable files are\n"
      "listed and skipped. Reports accuracy, mean cross-entropy,\n"
      "the confusion matrix (rows = true class), per-class precision, recall and F1, and the\n"
      "misclassified files with the predicted class and its probability. The accuracy comes with\n"
      "its 95%% Wilson interval: the range the true accuracy plausibly lies in, given how many\n"
      "images were tested. Probabilities are the model's calibrated ones (its temperature); the\n"
      "expected calibration error (15 bins of the top probability) and the negative\n"
      "log-likelihood say how far they can be trusted on these images. With an outlier detector\n"
      "in the model, the images it flags as unlike brain MRI slices are counted.\n\n"
      "--json prints {\"accuracy\", \"accuracy_interval95\": [low, high], \"loss\", \"images\",\n"
      "\"classes\", \"confusion\", \"per_class\", \"misclassified\": [{\"path\", \"true\",\n"
      "\"predicted\", \"confidence\"}], \"skipped\", \"calibration\": {\"temperature\", \"ece\", \"nll\"},\n"
      "\"out_of_distribution\": number of flagged images (when the model has a detector)}.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

}  // namespace

int run_evaluate(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("--model")) throw UsageError("--model FILE is required");
  if (!args.has("--data")) throw UsageError("--data DIR is required");
  const bool json = args.has("--json");
  const size_t batch = args.get_size("--batch", 64, 1, 4096);
  Runtime rt(args.get_size("--threads", 0, 0, 256));

  const std::string model_path = args.get("--model"), data_dir = args.get("--data");
  const Model loaded = load_model_file(model_path);
  const Dataset data = load_image_folder(rt, data_dir, folder_options_for(loaded));
  for (const std::string& s : data.skipped()) std::fprintf(stderr, "skipped %s\n", s.c_str());
  if (data.size() == 0)
    throw std::runtime_error("no readable images under '" + data_dir + "' (" +
                             std::to_string(data.skipped().size()) + " skipped)");

  Model model = loaded.folded();  // same outputs, faster (batch norm folded, ReLU fused)
  std::vector<size_t> items(data.size());
  for (size_t i = 0; i < items.size(); ++i) items[i] = i;
  const Evaluation ev = evaluate(rt, model, data, items, batch);
  const std::vector<std::string>& classes = data.classes();
  const std::vector<ClassFigures> figures = per_class_figures(ev.confusion);
  size_t correct = 0;
  for (size_t c = 0; c < classes.size(); ++c) correct += ev.confusion[c][c];
  const Interval interval = wilson_interval(correct, ev.items.size());
  std::vector<int> labels;
  for (size_t i : ev.items) labels.push_back(data.item(i).label);
  const CalibrationFigures calibration =
      calibration_figures(ev.logits, labels, model.confidence().temperature);
  if (args.has("--calibration-svg"))
    write_text_atomic(args.get("--calibration-svg"),
                      reliability_diagram_svg({calibration}, "NeuroLens: reliability on " + data_dir));
  const bool detector = model.confidence().has_detector();
  auto full_path = [&](size_t item) {
    return (std::filesystem::path(data_dir) / data.item(item).path).string();
  };

  if (json) {
    nlohmann::json per_class = nlohmann::json::object();
    for (size_t c = 0; c < classes.size(); ++c)
      per_class[classes[c]] = {{"precision", figures[c].precision},
                               {"recall", figures[c].recall},
                               {"f1", figures[c].f1},
                               {"support", figures[c].support}};
    nlohmann::json wrong = nlohmann::json::array();
    for (size_t k = 0; k < ev.items.size(); ++k) {
      const int truth = data.item(ev.items[k]).label, pred = ev.predicted[k];
      if (truth == pred) continue;
      wrong.push_back({{"path", full_path(ev.items[k])},
                       {"true", classes[truth]},
                       {"predicted", classes[pred]},
                       {"confidence", ev.probabilities[k][pred]}});
    }
    nlohmann::json out = {{"model", model_path},
                                {"data", data_dir},
                                {"images", ev.items.size()},
                                {"accuracy", ev.accuracy},
                                {"accuracy_interval95", {interval.low, interval.high}},
                                {"loss", ev.loss},
                                {"classes", classes},
                                {"confusion", ev.confusion},
                                {"per_class", per_class},
                                {"misclassified", wrong},
                                {"skipped", data.skipped()},
                                {"calibration", {{"temperature", calibration.temperature},
                                                 {"ece", calibration.ece},
                                                 {"nll", calibration.nll}}}};
    if (detector) out["out_of_distribution"] = ev.out_of_distribution;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }

  std::printf("%s on %s: %zu images", model_path.c_str(), data_dir.c_str(), ev.items.size());
  if (!data.skipped().empty()) std::printf(" (%zu files skipped)", data.skipped().size());
  std::printf("\naccuracy  %.2f%% (%zu/%zu; 95%% interval %.2f%% to %.2f%%)\nmean loss %.4f\n",
              100.0 * ev.accuracy, correct, ev.items.size(), 100.0 * interval.low,
              100.0 * interval.high, ev.loss);
  std::printf("calibration: ECE %.2f%% (15 bins), NLL %.4f, temperature %.3f\n", 100.0 * calibration.ece,
              calibration.nll, calibration.temperature);
  if (detector)
    std::printf("flagged as not looking like brain MRI slices: %zu of %zu (%.2f%%)\n", ev.out_of_distribution,
                ev.items.size(), 100.0 * ev.out_of_distribution / static_cast<double>(ev.items.size()));
  std::printf("\n");
  size_t w = 10;
  for (const std::string& c : classes) w = std::max(w, c.size() + 1);
  std::printf("confusion (rows = true class, columns = predicted)\n%*s", static_cast<int>(w), "");
  for (const std::string& c : classes) std::printf(" %*s", static_cast<int>(w), c.c_str());
  std::printf("\n");
  for (size_t r = 0; r < classes.size(); ++r) {
    std::printf("%*s", static_cast<int>(w), classes[r].c_str());
    for (size_t c = 0; c < classes.size(); ++c) std::printf(" %*zu", static_cast<int>(w), ev.confusion[r][c]);
    std::printf("\n");
  }
  std::printf("\n%*s %9s %9s %9s %9s\n", static_cast<int>(w), "class", "precision", "recall", "f1", "support");
  for (size_t c = 0; c < classes.size(); ++c)
    std::printf("%*s %9.4f %9.4f %9.4f %9zu\n", static_cast<int>(w), classes[c].c_str(),
                figures[c].precision, figures[c].recall, figures[c].f1, figures[c].support);
  size_t wrong = ev.items.size() - correct;
  std::printf("\nmisclassified: %zu\n", wrong);
  for (size_t k = 0; k < ev.items.size(); ++k) {
    const int truth = data.item(ev.items[k]).label, pred = ev.predicted[k];
    if (truth == pred) continue;
    std::printf("  %s: %s, predicted %s (%.1f%%)\n", full_path(ev.items[k]).c_str(), classes[truth].c_str(),
                classes[pred].c_str(), 100.0 * ev.probabilities[k][pred]);
  }
  return 0;
}

}  // namespace nl::cli
