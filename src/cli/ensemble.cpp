// neurolens ensemble: merges trained models into one whose logits are the mean of theirs.
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
};

}  // namespace

int run_ensemble(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    std::printf(
        "usage: neurolens ensemble --out FILE [--weights f32|f16] MODEL MODEL [MODEL...]\n\n"
        "Makes one model out of several trained ones that take the same input (size,\n"
        "preprocessing) and classes: each becomes a branch reading the image, and the merged\n"
        "model's logits are the mean of theirs. It runs, explains and fine-tunes like any model;\n"
        "its cost is the sum of theirs.\n\n"
        "options:\n%s",
        describe_options(kOptions).c_str());
    return 0;
  }
  if (!args.has("--out")) throw UsageError("--out FILE is required");
  if (args.positional().size() < 2) throw UsageError("give at least two models to merge");
  const std::string weights_name = args.get("--weights", "f32");
  if (weights_name != "f32" && weights_name != "f16")
    throw UsageError("--weights: '" + weights_name + "' is not f32 or f16");

  std::vector<Model> models;
  for (const std::string& path : args.positional()) models.push_back(load_model_file(path));
  std::vector<const Model*> members;
  for (const Model& m : models) members.push_back(&m);
  Model merged = mean_ensemble(members);
  for (size_t k = 0; k < models.size(); ++k)
    merged.training_record()["ensemble"][k]["file"] = args.positional()[k];
  save_model_file(merged, args.get("--out"), weights_name == "f16" ? Dtype::f16 : Dtype::f32);
  std::printf("wrote %s: mean of %zu models, %zu parameters, %.1f MFLOP per image\n",
              args.get("--out").c_str(), models.size(), merged.parameter_count(),
              merged.flops_per_image() / 1e6);
  return 0;
}

}  // namespace nl::cli
