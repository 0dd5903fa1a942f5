// neurolens ensemble: merges trained models into one whose logits are the mean of theirs;
// --flip also averages each with its mirror image.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "features/ensemble.h"
#include "formats/model_file.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--out", "FILE", "where to write the merged model (required)"},
    {"--weights", "TYPE", "how FILE stores the weights: f32 or f16 (default f32)"},
    {"--flip", "", "also average each model with its mirror image (one model is enough)"},
};

}  // namespace

int run_ensemble(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    std::printf(
        "usage: neurolens ensemble --out FILE [--weights f32|f16] MODEL MODEL [MODEL...]\n"
        "       neurolens ensemble --flip --out FILE [--weights f32|f16] MODEL [MODEL...]\n\n"
        "Makes one model out of several trained ones that take the same input (size,\n"
        "preprocessing) and classes: each becomes a branch reading the image, and the merged\n"
        "model's logits are the mean of theirs. It runs, explains and fine-tunes like any model;\n"
        "its cost is the sum of theirs.\n\n"
        "With --flip each model is also a second branch that sees the image mirrored left to\n"
        "right (a flip layer in the graph), so the logits are the mean over all the models and\n"
        "their mirror images: an image and its mirror get the same probabilities. Twice the cost\n"
        "and file size of the models without --flip.\n\n"
        "options:\n%s",
        describe_options(kOptions).c_str());
    return 0;
  }
  if (!args.has("--out")) throw UsageError("--out FILE is required");
  const bool flip = args.has("--flip");
  if (flip && args.positional().empty()) throw UsageError("give at least one model to average with its mirror image");
  if (!flip && args.positional().size() < 2) throw UsageError("give at least two models to merge (or one with --flip)");
  const std::string weights_name = args.get("--weights", "f32");
  if (weights_name != "f32" && weights_name != "f16")
    throw UsageError("--weights: '" + weights_name + "' is not f32 or f16");

  std::vector<Model> models;
  for (const std::string& path : args.positional()) models.push_back(load_model_file(path));
  std::vector<const Model*> members;
  for (const Model& m : models) members.push_back(&m);
  Model merged = flip ? flip_averaged(members) : mean_ensemble(members);
  // Branch k is model k % K (flip_averaged: the models, then their mirror images).
  nlohmann::json& records = merged.training_record()["ensemble"];
  for (size_t k = 0; k < records.size(); ++k) records[k]["file"] = args.positional()[k % models.size()];
  save_model_file(merged, args.get("--out"), weights_name == "f16" ? Dtype::f16 : Dtype::f32);
  const char* mirrors = !flip ? "" : models.size() == 1 ? " and its mirror image" : " and their mirror images";
  std::printf("wrote %s: mean of %zu model%s%s, %zu parameters, %.1f MFLOP per image\n",
              args.get("--out").c_str(), models.size(), models.size() == 1 ? "" : "s", mirrors,
              merged.parameter_count(), merged.flops_per_image() / 1e6);
  return 0;
}

}  // namespace nl::cli
