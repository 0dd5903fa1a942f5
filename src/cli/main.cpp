// neurolens: the native command line. Dispatches to one subcommand per file (cli/*.cpp).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>

#include "cli/args.h"
#include "cli/commands.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const nl::cli::CommandArgs&);
};

// One row per subcommand.
const Subcommand kSubcommands[] = {
    {"classify", "classify brain MRI images, DICOM files and series, and NIfTI volumes with a model", nl::cli::run_classify},
    {"bench", "time the forward pass of a model (or of a built-in demo model)", nl::cli::run_bench},
    {"demo-model", "write the built-in demo model (untrained, seeded weights) to a file", nl::cli::run_demo_model},
    {"train", "train a model on a folder of labelled images", nl::cli::run_train},
    {"evaluate", "accuracy, confusion matrix and errors of a model on labelled images", nl::cli::run_evaluate},
    {"calibrate", "fit a model's temperature and outlier detector from held-out predictions", nl::cli::run_calibrate},
    {"bench-train", "training throughput and the XNNPACK / own-code time split", nl::cli::run_bench_train},
    {"ensemble", "merge trained models (--flip: and their mirror images) into one that averages their logits", nl::cli::run_ensemble},
    {"bench-scan", "read a scan and classify every slice, timed (slices per second)", nl::cli::run_bench_scan},
    {"export", "write a model as an ONNX file (for onnxruntime, Netron, ...)", nl::cli::run_export},
    {"inspect", "what the reader sees in an image, DICOM file or series, or NIfTI volume (no patient data)", nl::cli::run_inspect},
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "NeuroLens: brain-tumour MRI classifier (glioma, meningioma, pituitary, no tumour).\n\n"
               "usage: neurolens <command> [options]\n\ncommands:\n");
  int width = 0;
  for (const Subcommand& c : kSubcommands) width = std::max(width, static_cast<int>(std::strlen(c.name)));
  for (const Subcommand& c : kSubcommands) std::fprintf(out, "  %-*s  %s\n", width, c.name, c.summary);
  std::fprintf(out, "\n`neurolens <command> --help` describes a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // Training re-creates its XNNPACK convolutions after every optimizer step (new packed
  // weights, new indirection buffers: tens of MB per step). By default glibc hands such large
  // blocks back to the kernel on free and the next step faults them in again, zero-filled:
  // perf showed a quarter of a training step in clear_page. Keep them in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 512 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const Subcommand& c : kSubcommands) {
    if (name != c.name) continue;
    try {
      return c.run(nl::cli::CommandArgs(argv + 2, argv + argc));
    } catch (const nl::cli::UsageError& e) {
      std::fprintf(stderr, "neurolens %s: %s (see `neurolens %s --help`)\n", c.name, e.what(), c.name);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "neurolens %s: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "neurolens: unknown command '%s'\n\n", name.c_str());
  print_usage(stderr);
  return 2;
}
