// neurolens demo-model: writes the built-in demo model (seeded random weights) to a file,
// for trying the CLI and the page before a trained model exists.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "features/network_catalogue.h"
#include "formats/model_file.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--out", "FILE", "where to write the model (required)"},
    {"--input-size", "N", "input side in pixels (default 64)"},
    {"--seed", "N", "weight seed (default 1)"},
};

}  // namespace

int run_demo_model(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    std::printf(
        "usage: neurolens demo-model --out FILE [--input-size N] [--seed N]\n\n"
        "Writes the built-in demo model: a small untrained CNN (conv/batch-norm/ReLU/pool blocks,\n"
        "a residual add, global average pooling, dense, softmax) over the four classes, with\n"
        "seeded random weights. Its answers are meaningless; it exercises the pipeline.\n\n"
        "options:\n%s",
        describe_options(kOptions).c_str());
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("--out")) throw UsageError("--out FILE is required");
  const size_t size = args.get_size("--input-size", 64, 4, 4096);
  const size_t seed = args.get_size("--seed", 1, 0, 999999999999);
  const Model model = make_demo_model(size, seed);
  save_model_file(model, args.get("--out"));
  std::printf("wrote %s: demo model %zux%zu, seed %zu, %zu parameters\n", args.get("--out").c_str(), size, size,
              seed, model.parameter_count());
  return 0;
}

}  // namespace nl::cli
