// neurolens export: the model in another format for other tools. Today: ONNX.
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "formats/file_io.h"
#include "formats/model_file.h"
#include "formats/onnx/onnx_export.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--model", "FILE", "model file (.safetensors) to export (required)"},
    {"--onnx", "FILE", "write an ONNX file (opset 13, NCHW input) (required)"},
    {"--no-fold", "", "export the model as trained (batch norm and ReLU not folded)"},
};

void print_help() {
  std::printf(
      "usage: neurolens export --model FILE --onnx OUT.onnx [--no-fold]\n\n"
      "Writes the model as an ONNX file that onnxruntime, Netron and other ONNX tools open:\n"
      "input \"input\" [N, C, H, W] (the model's preprocessed input, NCHW), outputs\n"
      "\"probabilities\" and \"logits\" [N, classes]; classes and preprocessing in its metadata.\n"
      "By default the model is folded for inference (batch norm into the convolutions, ReLUs\n"
      "fused), as `classify` runs it. ONNX's checker and shape inference validate the file\n"
      "before it is written.\n\noptions:\n%s",
      describe_options(kOptions).c_str());
}

}  // namespace

int run_export(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("--model")) throw UsageError("--model FILE is required");
  if (!args.has("--onnx")) throw UsageError("--onnx FILE is required");
  Model loaded = load_model_file(args.get("--model"));
  Model model = args.has("--no-fold") ? std::move(loaded) : loaded.folded();
  const std::string bytes = model_to_onnx(model);
  write_file_atomic(args.get("--onnx"), std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  std::printf("wrote %s (%zu bytes, ONNX opset %d, %zu layers%s)\n", args.get("--onnx").c_str(), bytes.size(),
              kOnnxOpset, model.layer_count(), args.has("--no-fold") ? "" : ", folded for inference");
  return 0;
}

}  // namespace nl::cli
