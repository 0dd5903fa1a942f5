// neurolens inspect: what the readers see in images and scans — format, transfer syntax,
// dimensions, spacing, series and slice count, intensity range and the window classification
// will use — and never patient data (scan.h's ScanInfo holds none).
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/scan_inputs.h"
#include "formats/file_io.h"
#include "formats/scans/scan_json.h"

namespace nl::cli {

namespace {

const std::vector<Option> kOptions = {
    {"--json", "", "print one JSON document instead of text"},
};

void print_help() {
  std::printf(
      "usage: neurolens inspect [--json] IMAGE|SCAN|DIR...\n\n"
      "Describes what NeuroLens reads from each image, DICOM file or series (directories are\n"
      "searched recursively and DICOM files grouped into series), and NIfTI volume: format,\n"
      "transfer syntax, modality, series description, dimensions, spacing, slice thickness,\n"
      "slice count and order, intensity range, the file's window and the automatic one, and\n"
      "what the reader decided (notes). Patient-identifying attributes are never read out.\n"
      "Exit status 1 if any file could not be read.\n\noptions:\n%s",
      describe_options(kOptions).c_str());
}

std::string window_text(const scans::Window& w) {
  const char* f = w.function == scans::WindowFunction::linear ? "LINEAR"
                  : w.function == scans::WindowFunction::linear_exact ? "LINEAR_EXACT" : "SIGMOID";
  char buf[96];
  std::snprintf(buf, sizeof buf, "center %g, width %g (%s)", w.center, w.width, f);
  return buf;
}

void print_volume(const scans::Volume& v) {
  const scans::ScanInfo& i = v.info;
  std::printf("%s\n", v.source.c_str());
  std::printf("  format          %s%s\n", i.format.c_str(), v.single_image ? " (single image)" : "");
  if (!i.transfer_syntax.empty()) std::printf("  transfer syntax %s\n", i.transfer_syntax.c_str());
  if (!i.modality.empty()) std::printf("  modality        %s\n", i.modality.c_str());
  if (!i.series_description.empty()) std::printf("  series          %s\n", i.series_description.c_str());
  if (!i.photometric.empty()) std::printf("  photometric     %s\n", i.photometric.c_str());
  std::printf("  data type       %s\n", i.data_type.c_str());
  std::printf("  dimensions      %zu x %zu, %zu slice%s\n", i.width, i.height, i.slices, i.slices == 1 ? "" : "s");
  std::printf("  spacing         %g x %g mm, slices %g mm apart, thickness %g mm (0: not stated)\n",
              i.spacing[0], i.spacing[1], i.spacing[2], i.slice_thickness);
  std::printf("  intensity       %g to %g\n", i.minimum, i.maximum);
  std::printf("  file window     %s\n", i.file_window ? window_text(*i.file_window).c_str() : "none");
  std::printf("  auto window     %s (0.5th to 99.5th percentile)\n", window_text(i.auto_window).c_str());
  std::printf("  window used     %s%s\n", i.file_window ? "the file's" : "auto", i.inverted ? ", inverted (MONOCHROME1)" : "");
  if (!i.orientation.empty()) std::printf("  order           %s\n", i.orientation.c_str());
  for (const std::string& note : i.notes) std::printf("  note            %s\n", note.c_str());
}

}  // namespace

int run_inspect(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (args.positional().empty()) throw UsageError("no files or directories given");
  const bool json_out = args.has("--json");
  const Inputs inputs = collect_inputs(args.positional());
  bool failed = !inputs.problems.empty();

  nlohmann::json out = {{"inputs", nlohmann::json::array()}, {"problems", nlohmann::json::array()}};
  for (const Input& in : inputs.items) {
    if (in.volume) {
      if (json_out) out["inputs"].push_back(scans::describe(*in.volume));
      else print_volume(*in.volume);
      continue;
    }
    try {
      const GreyImage image = decode_grey(read_file_bytes(in.image, "image", uint64_t{1} << 30));
      if (json_out) out["inputs"].push_back({{"source", in.image}, {"format", "image"}, {"width", image.width}, {"height", image.height}});
      else std::printf("%s\n  format          image\n  dimensions      %zu x %zu\n", in.image.c_str(), image.width, image.height);
    } catch (const std::exception& e) {
      failed = true;
      if (json_out) out["problems"].push_back({{"file", in.image}, {"message", e.what()}});
      else std::fprintf(stderr, "neurolens inspect: %s: %s\n", in.image.c_str(), e.what());
    }
  }
  for (const scans::Problem& p : inputs.problems) {
    if (json_out) out["problems"].push_back({{"file", p.file}, {"message", p.message}});
    else std::fprintf(stderr, "neurolens inspect: %s: %s\n", p.file.c_str(), p.message.c_str());
  }
  if (json_out) {
    if (!inputs.passed_over.empty()) out["passed_over"] = inputs.passed_over;
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!inputs.passed_over.empty()) {
    std::fprintf(stderr, "neurolens inspect: passed over %zu file(s) that are neither images nor DICOM/NIfTI\n",
                 inputs.passed_over.size());
  }
  return failed ? 1 : 0;
}

}  // namespace nl::cli
