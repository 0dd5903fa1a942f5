// neurolens calibrate: fits a model's confidence (core/confidence.h) from held-out predictions
// and writes the model with it. The held-out predictions come from models that did not learn
// those images: the cross-validation folds (scripts/cross-validate), or a model and its own
// validation split. From them: the temperature (pooled out-of-fold logits), the "uncertain"
// threshold, and the outlier detector's threshold as a multiple of the median training-image
// score (measured per held-out model, then applied to the final model's own statistics).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/scan_inputs.h"
#include "cli/train_common.h"
#include "core/runtime.h"
#include "formats/file_io.h"
#include "formats/model_file.h"
#include "features/ensemble.h"
#include "train/calibration.h"
#include "train/evaluate.h"
#include "train/image_folder.h"
#include "train/plot.h"

namespace nl::cli {

namespace {

nlohmann::json read_split(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, "split file");
  try {
    return nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not a JSON split file (" + e.what() + ")");
  }
}

const std::vector<Option> kOptions = {
    {"--data", "DIR", "the labelled images the models were trained and held out on"},
    {"--model", "FILE", "the model to calibrate (e.g. trained on all of DIR)"},
    {"--out", "FILE", "where the calibrated model goes (may be --model itself)"},
    {"--report", "FILE", "also write the figures as JSON"},
    {"--calibration-svg", "FILE", "also write the reliability diagram, before and after scaling"},
    {"--ood-rate", "X", "the most held-out MRI slices the outlier detector may flag, as a share (default 0.01)"},
    {"--feature-layer", "NAME", "the layer whose output the detector models (default gap; m1_gap\n"
                                "                        with --flip)"},
    {"--flip", "", "calibrate the flip-averaged models (mean of x and x mirrored, one graph):\n"
                   "                        the held-out models are judged that way too, and --out is\n"
                   "                        --model made flip-averaged"},
    {"--threads", "N", "threads (0 = one per core; default 0)"},
};

void print_help() {
  std::printf(
      "usage: neurolens calibrate --data DIR --model FILE --out FILE [options] HELD_OUT_MODEL...\n\n"
      "Each HELD_OUT_MODEL was trained on part of DIR; the split file beside it (the model path\n"
      "minus .safetensors, plus .split.json, as `neurolens train` writes) names its training and\n"
      "held-out images. Each is run on its held-out images (out-of-fold predictions) and its\n"
      "training images (the outlier statistics). From the pooled predictions: the temperature\n"
      "that minimises their negative log-likelihood, the expected calibration error (15 bins)\n"
      "and NLL before and after, and the top probability below which an answer is reported as\n"
      "uncertain (the lowest of 0.50, 0.55, ..., 0.95 above which the held-out answers are at\n"
      "least 99%% right). The outlier detector (squared Mahalanobis distance of the feature\n"
      "layer's output to the nearest class mean, shared covariance) is fitted on FILE's own\n"
      "training images, and its threshold set so that at most --ood-rate of the held-out slices\n"
      "are flagged (scores relative to each model's median training score). Prints the figures; the out-of-fold answers that confidently (>= 90%%)\n"
      "contradict their label are listed as candidates for label errors.\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

// The dataset items a split file lists on one side ("train" or "validation").
std::vector<size_t> items_of(const nlohmann::json& split, const char* side, const std::map<std::string, size_t>& index,
                             const std::string& split_path) {
  std::vector<size_t> items;
  if (!split.contains(side) || !split[side].is_array())
    throw std::runtime_error(split_path + ": no '" + side + "' list");
  for (const auto& p : split[side]) {
    auto it = index.find(p.get<std::string>());
    if (it == index.end())
      throw std::runtime_error(split_path + ": '" + p.get<std::string>() + "' is not a readable image of the data folder");
    items.push_back(it->second);
  }
  return items;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct HeldOut {
  std::string path;
  double accuracy = 0.0;
  double plain_accuracy = 0.0;   // without flip averaging (the same as accuracy without --flip)
  size_t images = 0;
  double threshold_ratio = 0.0;  // (1 - rate) quantile of held-out scores / median training score
  std::vector<double> scores;    // held-out outlier scores
  double train_median = 0.0;
};

// The detector fitted on `items` of `data` with `model`, and the training images' scores.
Confidence fit_detector(Runtime& rt, Model& model, const Dataset& data, const std::vector<size_t>& items,
                        const std::string& layer, std::vector<double>& train_scores) {
  const Tensor features = collect_features(rt, model, data, items, layer);
  std::vector<int> labels;
  for (size_t i : items) labels.push_back(data.item(i).label);
  Confidence c = fit_outlier_statistics(features, labels, data.classes().size(), layer);
  const size_t d = features.shape()[1];
  train_scores.clear();
  for (size_t k = 0; k < items.size(); ++k)
    train_scores.push_back(outlier_score(c, features.values().subspan(k * d, d)));
  return c;
}

}  // namespace

int run_calibrate(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  for (const char* required : {"--data", "--model", "--out"})
    if (!args.has(required)) throw UsageError(std::string(required) + " is required");
  if (args.positional().empty()) throw UsageError("name at least one HELD_OUT_MODEL");
  const double rate = get_number(args, "--ood-rate", 0.01, 0.0001, 0.5);
  const bool flip = args.has("--flip");
  const std::string layer = args.get("--feature-layer", flip ? "m1_gap" : "gap");
  Runtime rt(args.get_size("--threads", 0, 0, 256));

  Model final_model = load_model_file(args.get("--model"));
  // The output stores its weights as the final model's file did (F16 for the shipped model),
  // read before flip averaging replaces the training record.
  const bool f16_weights = final_model.training_record().value("weights", std::string("F32")) == "F16";
  const ImageFolderOptions load = folder_options_for(final_model);
  const std::string data_dir = args.get("--data");
  const Dataset data = load_image_folder(rt, data_dir, load);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < data.size(); ++i) index[data.item(i).path] = i;
  std::fprintf(stderr, "loaded %zu images of %zu classes from %s\n", data.size(), data.classes().size(), data_dir.c_str());

  // Out-of-fold predictions.
  LogitRows oof_logits;
  std::vector<int> oof_labels;
  std::vector<size_t> oof_items;
  std::vector<HeldOut> held;
  for (const std::string& path : args.positional()) {
    HeldOut h;
    h.path = path;
    Model model = load_model_file(path);
    if (model.classes() != data.classes() || model.architecture().width != load.width ||
        model.preprocessing().crop_to_head != load.crop_to_head)
      throw std::runtime_error(path + ": other classes, input size or cropping than " + args.get("--model"));
    const std::string split_path = strip_safetensors(path) + ".split.json";
    const nlohmann::json split = read_split(split_path);
    const std::vector<size_t> train = items_of(split, "train", index, split_path);
    const std::vector<size_t> validation = items_of(split, "validation", index, split_path);
    if (validation.empty()) throw std::runtime_error(split_path + ": holds out no images");
    model.set_confidence({});  // raw logits: the temperature is what is being fitted
    Model folded = flip ? flip_averaged(model).folded() : model.folded();
    if (flip) {
      Model plain = model.folded();
      h.plain_accuracy = evaluate(rt, plain, data, validation).accuracy;
    }
    std::vector<double> train_scores;
    Confidence detector = fit_detector(rt, folded, data, train, layer, train_scores);
    h.train_median = median(train_scores);
    folded.set_confidence(detector);
    const Evaluation ev = evaluate(rt, folded, data, validation);
    h.accuracy = ev.accuracy;
    if (!flip) h.plain_accuracy = ev.accuracy;
    h.images = ev.items.size();
    h.scores = ev.outlier_scores;
    h.threshold_ratio = outlier_threshold(h.scores, rate) / h.train_median;
    for (size_t k = 0; k < ev.items.size(); ++k) {
      oof_logits.push_back(ev.logits[k]);
      oof_labels.push_back(data.item(ev.items[k]).label);
      oof_items.push_back(ev.items[k]);
    }
    std::fprintf(stderr, "%s: held-out accuracy %.2f%%", path.c_str(), 100.0 * h.accuracy);
    if (flip) std::fprintf(stderr, " flip-averaged, %.2f%% plain", 100.0 * h.plain_accuracy);
    std::fprintf(stderr, " on %zu images; outlier threshold for this model alone %.3f x its median training score\n",
                 h.images, h.threshold_ratio);
    held.push_back(std::move(h));
  }

  // Temperature and the uncertain threshold, from the pooled out-of-fold logits.
  const double temperature = fit_temperature(oof_logits, oof_labels);
  const CalibrationFigures before = calibration_figures(oof_logits, oof_labels, 1.0);
  const CalibrationFigures after = calibration_figures(oof_logits, oof_labels, temperature);
  std::vector<std::pair<double, bool>> answers;  // calibrated top probability, right
  for (size_t k = 0; k < oof_logits.size(); ++k) {
    const std::vector<float> p = calibrated_softmax(oof_logits[k], temperature);
    const size_t top = argmax(p);
    answers.push_back({p[top], static_cast<int>(top) == oof_labels[k]});
  }
  double uncertain_below = 0.95;
  for (int step = 0; step <= 9; ++step) {
    const double t = 0.5 + 0.05 * step;
    size_t n = 0, right = 0;
    for (const auto& [p, ok] : answers)
      if (p >= t) ++n, right += ok;
    if (n > 0 && right >= 0.99 * static_cast<double>(n)) {
      uncertain_below = t;
      break;
    }
  }
  size_t uncertain = 0, uncertain_right = 0;
  for (const auto& [p, ok] : answers)
    if (p < uncertain_below) ++uncertain, uncertain_right += ok;

  // The outlier threshold, as a multiple of a model's median training-image score (scores of
  // different models are on different scales): the (1 - rate) quantile of every held-out
  // slice's score over its own model's median, so that at most `rate` of the cross-validated
  // slices are flagged. The final model has no held-out images: the same multiple of its own
  // median becomes its threshold. Also the share of each held-out set that multiple flags.
  std::vector<double> relative_scores;
  for (const HeldOut& h : held)
    for (double s : h.scores) relative_scores.push_back(s / h.train_median);
  const double ratio = outlier_threshold(relative_scores, rate);
  nlohmann::json folds = nlohmann::json::array();
  double mean_accuracy = 0.0, flagged_total = 0.0;
  for (const HeldOut& h : held) {
    const auto flagged =
        std::count_if(h.scores.begin(), h.scores.end(), [&](double s) { return s / h.train_median > ratio; });
    flagged_total += static_cast<double>(flagged);
    mean_accuracy += h.accuracy / static_cast<double>(held.size());
    folds.push_back({{"model", h.path}, {"images", h.images}, {"accuracy", h.accuracy},
                     {"accuracy_without_flip", h.plain_accuracy},
                     {"threshold_ratio", h.threshold_ratio}, {"flagged", flagged},
                     {"flagged_fraction", static_cast<double>(flagged) / static_cast<double>(h.images)}});
  }
  double spread = 0.0;
  for (const HeldOut& h : held) spread += (h.accuracy - mean_accuracy) * (h.accuracy - mean_accuracy);
  spread = held.size() > 1 ? std::sqrt(spread / static_cast<double>(held.size() - 1)) : 0.0;

  // The final model's own detector.
  const std::string final_split = strip_safetensors(args.get("--model")) + ".split.json";
  std::vector<size_t> final_train;
  if (std::filesystem::exists(final_split)) {
    final_train = items_of(read_split(final_split), "train", index, final_split);
  } else {
    for (size_t i = 0; i < data.size(); ++i) final_train.push_back(i);
  }
  final_model.set_confidence({});
  if (flip) final_model = flip_averaged(final_model);
  Model final_folded = final_model.folded();
  std::vector<double> final_scores;
  Confidence c = fit_detector(rt, final_folded, data, final_train, layer, final_scores);
  c.ood_threshold = ratio * median(final_scores);
  c.temperature = temperature;
  c.uncertain_below = uncertain_below;

  nlohmann::json candidates = nlohmann::json::array();
  for (size_t k = 0; k < oof_logits.size(); ++k) {
    const std::vector<float> p = calibrated_softmax(oof_logits[k], temperature);
    const size_t top = argmax(p);
    if (static_cast<int>(top) != oof_labels[k] && p[top] >= 0.9)
      candidates.push_back({{"path", data.item(oof_items[k]).path},
                            {"label", data.classes()[oof_labels[k]]},
                            {"predicted", data.classes()[top]},
                            {"probability", p[top]}});
  }
  auto figures_json = [](const CalibrationFigures& f) {
    return nlohmann::json{{"temperature", f.temperature}, {"accuracy", f.accuracy}, {"ece", f.ece}, {"nll", f.nll}};
  };
  double plain_mean = 0.0;
  for (const HeldOut& h : held) plain_mean += h.plain_accuracy / static_cast<double>(held.size());
  c.fitted = {{"held_out_models", held.size()},
              {"flip_averaged", flip},
              {"held_out_accuracy_mean_without_flip", plain_mean},
              {"held_out_images", oof_logits.size()},
              {"held_out_accuracy_mean", mean_accuracy},
              {"held_out_accuracy_sd", spread},
              {"before_scaling", figures_json(before)},
              {"after_scaling", figures_json(after)},
              {"uncertain_fraction", static_cast<double>(uncertain) / static_cast<double>(answers.size())},
              {"outlier_rate_target", rate},
              {"outlier_threshold_ratio", ratio},
              {"outlier_held_out_flagged", flagged_total / static_cast<double>(oof_logits.size())},
              {"outlier_fitted_on_images", final_train.size()}};
  final_model.set_confidence(c);
  save_model_file(final_model, args.get("--out"), f16_weights ? Dtype::f16 : Dtype::f32);

  std::printf("held-out accuracy%s: mean %.2f%%, sd %.2f points, over %zu model%s (%zu images)\n",
              flip ? " (flip-averaged)" : "", 100.0 * mean_accuracy, 100.0 * spread, held.size(),
              held.size() == 1 ? "" : "s", oof_logits.size());
  for (const HeldOut& h : held) {
    std::printf("  %s: %.2f%% of %zu", h.path.c_str(), 100.0 * h.accuracy, h.images);
    if (flip) std::printf(" (without flip averaging %.2f%%)", 100.0 * h.plain_accuracy);
    std::printf("\n");
  }
  std::printf("calibration (15 bins): before ECE %.2f%% NLL %.4f; temperature %.3f; after ECE %.2f%% NLL %.4f\n",
              100.0 * before.ece, before.nll, temperature, 100.0 * after.ece, after.nll);
  std::printf("uncertain below %.2f: %zu held-out answers (%.2f%%), %zu of them right\n", uncertain_below, uncertain,
              100.0 * uncertain / static_cast<double>(answers.size()), uncertain_right);
  std::printf("outliers: threshold %.4g (%.3f x the median training score %.4g); %.2f%% of held-out slices flagged\n",
              c.ood_threshold, ratio, median(final_scores), 100.0 * flagged_total / static_cast<double>(oof_logits.size()));
  std::printf("label-error candidates (held out, >= 90%% for another class): %zu\n", candidates.size());
  for (const auto& cand : candidates)
    std::printf("  %s: labelled %s, predicted %s (%.1f%%)\n", cand["path"].get<std::string>().c_str(),
                cand["label"].get<std::string>().c_str(), cand["predicted"].get<std::string>().c_str(),
                100.0 * cand["probability"].get<double>());
  std::printf("wrote %s\n", args.get("--out").c_str());

  if (args.has("--report")) {
    nlohmann::json report = c.fitted;
    report["folds"] = folds;
    report["uncertain_below"] = uncertain_below;
    report["outlier_threshold"] = c.ood_threshold;
    report["label_error_candidates"] = candidates;
    report["reliability_before"] = nlohmann::json::array();
    report["reliability_after"] = nlohmann::json::array();
    for (const auto* f : {&before, &after})
      for (const ReliabilityBin& b : f->bins)
        report[f == &before ? "reliability_before" : "reliability_after"].push_back(
            {{"low", b.low}, {"high", b.high}, {"count", b.count}, {"accuracy", b.accuracy}, {"confidence", b.confidence}});
    write_text_atomic(args.get("--report"), report.dump(1) + "\n");
  }
  if (args.has("--calibration-svg"))
    write_text_atomic(args.get("--calibration-svg"),
                      reliability_diagram_svg({before, after}, "NeuroLens: held-out reliability, before and after temperature scaling"));
  return 0;
}

}  // namespace nl::cli
