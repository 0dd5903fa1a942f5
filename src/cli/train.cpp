// neurolens train: trains a model on a folder-per-class image set, keeping the best epoch
// (by validation accuracy) in --out, a resumable checkpoint beside it, the split as JSON and
// the loss/accuracy curves as SVG. Ctrl-C / SIGTERM stop between batches; everything written
// so far stays intact (all writes are atomic) and --resume continues.
//
// This file is the command line; cli/train_command.h lists the other pieces.
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/train_common.h"
#include "cli/train_command.h"
#include "core/runtime.h"
#include "features/network_catalogue.h"
#include "formats/model_file.h"

namespace nl::cli {

namespace {

using Clock = std::chrono::steady_clock;

const std::vector<Option> kOptions = {
    {"--data", "DIR", "training images: each in (a folder below) a folder named after its class"},
    {"--out", "FILE", "where the best model goes (e.g. model/neurolens.safetensors)"},
    {"--arch", "NAME", "architecture (default resnet-s; see --list-archs)"},
    {"--input-size", "N", "input side in pixels (default: the architecture's)"},
    {"--crop", "MODE", "head: crop each image to the head before resizing; none: resize the\n"
                       "                        whole image (default none)"},
    {"--epochs", "N", "epochs (default 30)"},
    {"--batch", "N", "images per batch (default 32)"},
    {"--lr", "X", "peak learning rate, reached after the warm-up (default 0.002)"},
    {"--min-lr", "X", "learning rate at the end of the cosine decay (default 1e-5)"},
    {"--warmup", "X", "warm-up epochs (default 1)"},
    {"--optimizer", "NAME", "adamw, or sgd (Nesterov momentum; wants a larger --lr, e.g. 0.05)\n"
                            "                        (default adamw)"},
    {"--momentum", "X", "SGD momentum, in [0, 1) (default 0.9)"},
    {"--weight-decay", "X", "decoupled weight decay on conv/dense weights: each step multiplies\n"
                            "                        them by 1 - lr*X (default 0.05)"},
    {"--label-smoothing", "X", "label smoothing (default 0.1)"},
    {"--clip", "X", "clip the gradient's global norm to X (default 0: off)"},
    {"--ema", "D", "average the weights over steps with decay D (e.g. 0.998); validation and the\n"
                   "                        saved model use the average (default 0: off)"},
    {"--mixup", "A", "mixup: blend each batch with itself reversed, weight ~ Beta(A, A), A in\n"
                     "                        (0, 2], e.g. 0.2 (default 0: off)"},
    {"--bn-recalibration", "N", "before each validation, recompute batch-norm statistics from N\n"
                                "                        un-augmented training images (default 2048; 0: off)"},
    {"--weights", "TYPE", "how FILE stores the weights: f32, or f16 (half the size; the checkpoint\n"
                          "                        stays f32) (default f32)"},
    {"--no-augment", "", "no flips, rotations, shifts, scaling or brightness/contrast jitter"},
    {"--augment-strength", "X", "scale the MRI augmentation's ranges (rotation 12 deg, shift 8%,\n"
                                "                        zoom 10%, brightness 0.08, contrast 15%) by X in [0, 2]\n"
                                "                        (default 1)"},
    {"--seed", "N", "seed of the split, initial weights, shuffling and augmentation (default 1)"},
    {"--split-seed", "N", "seed of the split alone (default: --seed), so that models trained with\n"
                          "                        other seeds can be compared on the same validation images"},
    {"--val-fraction", "X", "fraction of each class held out for validation (default 0.2)"},
    {"--folds", "K", "cross-validation: split into K stratified folds (twins kept together)\n"
                     "                        and hold out fold --fold; the held-out fold is not used to pick\n"
                     "                        an epoch (the last is kept) and not evaluated while training"},
    {"--fold", "I", "the held-out fold with --folds, 0..K-1"},
    {"--threads", "N", "threads (0 = one per core; default 0)"},
    {"--init", "FILE", "fine-tune: start from this model (its architecture, classes, weights)"},
    {"--trainable-layers", "K", "fine-tune only the last K layers with parameters (default: all)"},
    {"--resume", "", "continue from the checkpoint if there is one (else start)"},
    {"--checkpoint", "FILE", "checkpoint path (default: --out without .safetensors, plus .ckpt)"},
    {"--val-dir", "DIR", "also make DIR a folder of symlinks to the validation images"},
    {"--list-archs", "", "list the architectures and exit"},
};

void print_help() {
  std::printf(
      "usage: neurolens train --data DIR --out FILE [options]\n\n"
      "Trains a classifier on DIR/<class>/* images (JPEG, PNG, BMP, GIF, TGA): the classes are\n"
      "DIR's sub-folders, and an image's class is its nearest enclosing folder named after one\n"
      "(see the README, \"Labelled folders\"); unreadable files and files under no class folder\n"
      "are listed and skipped. A stratified validation split keeps byte-identical files on one\n"
      "side. Each epoch prints train/validation loss and accuracy; the best epoch (validation\n"
      "accuracy, ties by loss) is saved to FILE with its training record, and beside it:\n"
      "  FILE minus .safetensors + .ckpt        checkpoint for --resume (every epoch)\n"
      "  FILE minus .safetensors + .split.json  the train/validation file lists\n"
      "  FILE minus .safetensors + .svg         loss and accuracy curves\n"
      "Ctrl-C or SIGTERM stops between batches and leaves all of these intact (exit 130).\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

TrainOptions parse_train_options(const Args& args) {
  TrainOptions opt;
  opt.epochs = args.get_size("--epochs", 30, 1, 10000);
  opt.batch_size = args.get_size("--batch", 32, 1, 4096);
  opt.lr = get_number(args, "--lr", 2e-3, 1e-7, 10.0);
  opt.min_lr = get_number(args, "--min-lr", std::min(1e-5, opt.lr), 0.0, opt.lr);
  opt.warmup_epochs = get_number(args, "--warmup", std::min(1.0, static_cast<double>(opt.epochs)), 0.0,
                                 static_cast<double>(opt.epochs));
  try {
    opt.optimizer = parse_optimizer(args.get("--optimizer", "adamw"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--optimizer: ") + e.what());
  }
  if (args.has("--momentum") && opt.optimizer != OptimizerKind::sgd)
    throw UsageError("--momentum is SGD's; it needs --optimizer sgd");
  opt.momentum = get_number(args, "--momentum", 0.9, 0.0, 0.999);
  opt.weight_decay = get_number(args, "--weight-decay", 0.05, 0.0, 0.99);
  opt.label_smoothing = get_number(args, "--label-smoothing", 0.1, 0.0, 0.99);
  opt.max_grad_norm = get_number(args, "--clip", 0.0, 0.0, 1e6);
  opt.ema_decay = get_number(args, "--ema", 0.0, 0.0, 0.99999);
  opt.mixup = get_number(args, "--mixup", 0.0, 0.0, 2.0);
  opt.bn_recalibration_images = args.get_size("--bn-recalibration", 2048, 0, 1000000);
  opt.seed = args.get_size("--seed", 1, 0, 999999999999);
  opt.trainable_layers = args.get_size("--trainable-layers", 0, 0, 100000);
  if (args.has("--no-augment") && args.has("--augment-strength"))
    throw UsageError("--no-augment and --augment-strength contradict each other: give one");
  opt.augment = args.has("--no-augment")
                    ? AugmentOptions{}
                    : AugmentOptions::mri(get_number(args, "--augment-strength", 1.0, 0.0, 2.0));
  opt.validate();
  return opt;
}

TrainSettings parse_settings(const Args& args) {
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("--data")) throw UsageError("--data DIR is required");
  if (!args.has("--out")) throw UsageError("--out FILE is required");
  if (args.has("--init") && (args.has("--arch") || args.has("--input-size") || args.has("--crop")))
    throw UsageError("--init takes the architecture, input size and cropping from that model; "
                     "not with --arch/--input-size/--crop");
  TrainSettings s;
  s.crop_name = args.get("--crop", "none");
  if (s.crop_name != "head" && s.crop_name != "none")
    throw UsageError("--crop: '" + s.crop_name + "' is not head or none");
  s.data_dir = args.get("--data");
  s.out = args.get("--out");
  s.stem = strip_safetensors(s.out);
  s.checkpoint_path = args.get("--checkpoint", s.stem + ".ckpt");
  s.arch_name = args.get("--arch", "resnet-s");
  s.val_fraction = get_number(args, "--val-fraction", 0.2, 0.0, 0.9);
  if (args.has("--folds") != args.has("--fold"))
    throw UsageError("--folds K and --fold I go together");
  if (args.has("--folds")) {
    if (args.has("--val-fraction"))
      throw UsageError("--val-fraction and --folds both choose the held-out images: give one");
    s.folds = args.get_size("--folds", 0, 2, 20);
    s.fold = args.get_size("--fold", 0, 0, s.folds - 1);
    s.val_fraction = 0.0;
  }
  s.options = parse_train_options(args);
  const std::string weights_name = args.get("--weights", "f32");
  if (weights_name != "f32" && weights_name != "f16")
    throw std::invalid_argument("--weights: '" + weights_name + "' is not f32 or f16");
  s.weights = weights_name == "f16" ? Dtype::f16 : Dtype::f32;
  s.split_seed = args.get_size("--split-seed", s.options.seed, 0, 999999999999);
  s.threads = args.get_size("--threads", 0, 0, 256);
  s.input_size = args.get_size("--input-size", 0, 8, 1024);
  if (args.has("--init")) s.init_path = args.get("--init");
  if (args.has("--val-dir")) s.val_dir = args.get("--val-dir");
  s.resume = args.has("--resume");
  return s;
}

}  // namespace

int run_train(const CommandArgs& argv) {
  const Args args(argv, kOptions);
  if (args.help()) {
    print_help();
    return 0;
  }
  if (args.has("--list-archs")) {
    for (const ArchitectureInfo& a : architecture_catalogue())
      std::printf("%-10s %zu px  %s\n", a.name.c_str(), a.default_input_size, a.description.c_str());
    return 0;
  }
  const TrainSettings s = parse_settings(args);
  install_stop_handlers();
  Runtime rt(s.threads);
  const auto started = Clock::now();

  // Where the model comes from: the checkpoint (resume), another model (fine-tune), or new.
  std::optional<Checkpoint> checkpoint = open_checkpoint(s);
  std::optional<Model> init_model;
  if (!checkpoint && s.init_path) init_model.emplace(load_model_file(*s.init_path));
  const Model* base = checkpoint ? &checkpoint->model : init_model ? &*init_model : nullptr;
  const Dataset data = load_data(rt, s, base, started);
  if (stop_requested()) return 130;
  const SplitChoice split = split_data(data, s, checkpoint ? &*checkpoint : nullptr);
  std::string arch_label;
  Model model = make_model(s, data, split.split, checkpoint, init_model, arch_label);

  const TrainRun run{.rt = rt,
                     .data = data,
                     .data_dir = s.data_dir,
                     .split = split.split,
                     .split_fraction = split.fraction,
                     .folds = split.folds,
                     .fold = split.fold,
                     .split_seed = split.seed,
                     .split_digest = split.digest,
                     .model = model,
                     .arch_label = arch_label,
                     .options = checkpoint ? checkpoint->options : s.options,
                     .resumed_from = checkpoint ? &*checkpoint : nullptr,
                     .out = s.out,
                     .stem = s.stem,
                     .checkpoint_path = s.checkpoint_path,
                     .weights = s.weights,
                     .started = started};
  return train_and_write(run);
}

}  // namespace nl::cli
