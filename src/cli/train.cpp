// neurolens train: trains a model on a folder-per-class image set, keeping the best epoch
// (by validation accuracy) in --out, a resumable checkpoint beside it, the split as JSON and
// the loss/accuracy curves as SVG. Ctrl-C / SIGTERM stop between batches; everything written
// so far stays intact (all writes are atomic) and --resume continues.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/train_common.h"
#include "formats/model_file.h"
#include "core/runtime.h"
#include "features/network_catalogue.h"
#include "train/dataset.h"
#include "train/image_folder.h"
#include "train/plot.h"
#include "train/trainer.h"

namespace nl::cli {

namespace {

namespace fs = std::filesystem;

const std::vector<Option> kOptions = {
    {"--data", "DIR", "training images: one sub-folder per class, named after the class"},
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
      "Trains a classifier on DIR/<class>/* images (JPEG, PNG, BMP, GIF, TGA; unreadable files\n"
      "are listed and skipped). A stratified validation split keeps byte-identical files on one\n"
      "side. Each epoch prints train/validation loss and accuracy; the best epoch (validation\n"
      "accuracy, ties by loss) is saved to FILE with its training record, and beside it:\n"
      "  FILE minus .safetensors + .ckpt        checkpoint for --resume (every epoch)\n"
      "  FILE minus .safetensors + .split.json  the train/validation file lists\n"
      "  FILE minus .safetensors + .svg         loss and accuracy curves\n"
      "Ctrl-C or SIGTERM stops between batches and leaves all of these intact (exit 130).\n\n"
      "options:\n%s",
      describe_options(kOptions).c_str());
}

std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};
std::atomic<int> g_signal_number{0};
std::atomic<long> g_signal_sender{0};

void on_signal(int sig, siginfo_t* info, void*) {
  g_stop.store(true);
  g_signal_number.store(sig);
  g_signal_sender.store(info ? static_cast<long>(info->si_pid) : 0);
  if (g_signals.fetch_add(1) >= 1) {  // a second Ctrl-C: stop now (writes are atomic)
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// "SIGTERM from pid 123 (some command)": who stopped the run, for the log.
std::string describe_stop_signal() {
  const int sig = g_signal_number.load();
  std::string what = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal " + std::to_string(sig);
  const long pid = g_signal_sender.load();
  if (pid <= 0) return what;
  what += " from pid " + std::to_string(pid);
  std::error_code ec;
  const std::string cmdline_path = "/proc/" + std::to_string(pid) + "/cmdline";
  if (fs::exists(cmdline_path, ec)) {
    try {
      std::vector<uint8_t> raw = read_file_bytes(cmdline_path);
      std::string cmd(raw.begin(), raw.end());
      for (char& c : cmd)
        if (c == '\0') c = ' ';
      if (cmd.size() > 200) cmd = cmd.substr(0, 200) + "...";
      if (!cmd.empty()) what += " (" + cmd + ")";
    } catch (const std::exception&) {
    }
  }
  return what;
}

// Progress to stderr: a redrawn bar on a terminal, nothing per batch otherwise.
class ProgressBar {
 public:
  ProgressBar() : tty_(isatty(STDERR_FILENO) == 1) {}
  bool tty() const { return tty_; }

  void batch(const BatchProgress& p) {
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (p.batch != p.batches && now - last_ < std::chrono::milliseconds(150)) return;
    last_ = now;
    const int width = 28;
    const int filled = static_cast<int>(width * p.batch / std::max<size_t>(p.batches, 1));
    std::string bar(filled, '=');
    if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
    const double eta = p.batch > 0 ? p.seconds / p.batch * (p.batches - p.batch) : 0.0;
    std::fprintf(stderr, "\r\033[Kepoch %zu/%zu [%s] %zu/%zu  loss %.4f  acc %.2f%%  %.1f img/s  ETA %s",
                 p.epoch, p.epochs, bar.c_str(), p.batch, p.batches, p.loss, 100.0 * p.accuracy,
                 p.images_per_second, format_duration(eta).c_str());
    std::fflush(stderr);
    dirty_ = true;
  }
  void clear() {
    if (tty_ && dirty_) std::fprintf(stderr, "\r\033[K");
    dirty_ = false;
  }

 private:
  bool tty_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_{};
};

void print_epoch(const EpochRecord& r, size_t epochs) {
  char val[96] = "";
  if (r.has_validation)
    std::snprintf(val, sizeof val, "  val loss %.4f acc %.2f%%", r.val_loss, 100.0 * r.val_accuracy);
  std::fprintf(stderr, "epoch %zu/%zu  train loss %.4f acc %.2f%%%s  lr %.2e  %s%s\n", r.epoch,
               epochs, r.train_loss, 100.0 * r.train_accuracy, val, r.lr,
               format_duration(r.seconds).c_str(), r.best ? "  (best)" : "");
  std::fflush(stderr);
}

nlohmann::json per_class_counts(const Dataset& data, const std::vector<size_t>& items) {
  std::vector<size_t> counts(data.classes().size(), 0);
  for (size_t i : items) ++counts[data.item(i).label];
  nlohmann::json j = nlohmann::json::object();
  for (size_t c = 0; c < counts.size(); ++c) j[data.classes()[c]] = counts[c];
  return j;
}

// The validation images as DIR/<class>/<file> symlinks, so `neurolens evaluate --data DIR`
// evaluates exactly them. DIR is only ever replaced when it is one we made (marker file).
void write_validation_links(const std::string& dir, const std::string& data_dir, const Dataset& data,
                            const Split& split) {
  const fs::path root(dir);
  const fs::path marker = root / ".neurolens-validation-links";
  std::error_code ec;
  if (fs::exists(root, ec)) {
    if (!fs::exists(marker, ec) && !fs::is_empty(root, ec))
      throw std::runtime_error("--val-dir '" + dir +
                               "' exists and was not made by neurolens train; not touching it");
    fs::remove_all(root);
  }
  fs::create_directories(root);
  for (size_t i : split.validation) {
    const fs::path link = root / data.item(i).path;
    fs::create_directories(link.parent_path());
    fs::create_symlink(fs::absolute(fs::path(data_dir) / data.item(i).path), link);
  }
  write_text_atomic(marker.string(), "validation images of a neurolens train split\n");
}

// "lr 0.001 (checkpoint 0.002), augment.flip false (checkpoint true)": the options that differ.
std::string option_differences(const nlohmann::json& now, const nlohmann::json& then,
                               const std::string& prefix = "") {
  std::string out;
  for (const auto& [key, value] : now.items()) {
    const std::string name = prefix + key;
    if (!then.contains(key)) {
      out += (out.empty() ? "" : ", ") + name + " (not in the checkpoint)";
    } else if (value.is_object() && then[key].is_object()) {
      const std::string inner = option_differences(value, then[key], name + ".");
      if (!inner.empty()) out += (out.empty() ? "" : ", ") + inner;
    } else if (value != then[key]) {
      out += (out.empty() ? "" : ", ") + name + " " + value.dump() + " (checkpoint " + then[key].dump() + ")";
    }
  }
  return out;
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
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (!args.has("--data")) throw UsageError("--data DIR is required");
  if (!args.has("--out")) throw UsageError("--out FILE is required");
  if (args.has("--init") && (args.has("--arch") || args.has("--input-size") || args.has("--crop")))
    throw UsageError("--init takes the architecture, input size and cropping from that model; "
                     "not with --arch/--input-size/--crop");
  const std::string crop_name = args.get("--crop", "none");
  if (crop_name != "head" && crop_name != "none")
    throw UsageError("--crop: '" + crop_name + "' is not head or none");

  const std::string data_dir = args.get("--data");
  const std::string out = args.get("--out");
  const std::string stem = strip_safetensors(out);
  const std::string ckpt_path = args.get("--checkpoint", stem + ".ckpt");
  const std::string arch_name = args.get("--arch", "resnet-s");
  const double val_fraction = get_number(args, "--val-fraction", 0.2, 0.0, 0.9);

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
  const std::string weights_name = args.get("--weights", "f32");
  if (weights_name != "f32" && weights_name != "f16")
    throw std::invalid_argument("--weights: '" + weights_name + "' is not f32 or f16");
  const Dtype weights = weights_name == "f16" ? Dtype::f16 : Dtype::f32;
  opt.seed = args.get_size("--seed", 1, 0, 999999999999);
  const uint64_t asked_split_seed = args.get_size("--split-seed", opt.seed, 0, 999999999999);
  opt.trainable_layers = args.get_size("--trainable-layers", 0, 0, 100000);
  if (args.has("--no-augment") && args.has("--augment-strength"))
    throw UsageError("--no-augment and --augment-strength contradict each other: give one");
  opt.augment = args.has("--no-augment")
                    ? AugmentOptions{}
                    : AugmentOptions::mri(get_number(args, "--augment-strength", 1.0, 0.0, 2.0));
  opt.validate();

  install_signal_handlers();
  Runtime rt(args.get_size("--threads", 0, 0, 256));
  const auto started = std::chrono::steady_clock::now();

  // Where the model comes from: the checkpoint (resume), another model (fine-tune), or new.
  std::optional<Checkpoint> checkpoint;
  std::optional<Model> init_model;
  std::error_code ec;
  if (args.has("--resume") && fs::exists(ckpt_path, ec)) {
    const std::vector<uint8_t> bytes = read_file_bytes(ckpt_path);
    try {
      checkpoint.emplace(load_checkpoint(bytes));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error("cannot resume from '" + ckpt_path + "': " + e.what());
    }
    // Resuming continues the same run: other options would silently mean another recipe.
    nlohmann::json asked = to_json(opt), made = to_json(checkpoint->options);
    asked["val_fraction"] = val_fraction;
    made["val_fraction"] = checkpoint->extra.value("val_fraction", val_fraction);
    asked["split_seed"] = asked_split_seed;
    made["split_seed"] = checkpoint->extra.value("split_seed", checkpoint->options.seed);
    if (!args.has("--init")) {
      asked["arch"] = arch_name;
      made["arch"] = checkpoint->extra.value("arch", arch_name);
      if (args.has("--input-size")) {
        asked["input_size"] = args.get_size("--input-size", 0, 8, 1024);
        made["input_size"] = checkpoint->model.architecture().width;
      }
      asked["crop"] = crop_name;
      made["crop"] = checkpoint->model.preprocessing().crop_to_head ? "head" : "none";
    }
    const std::string diff = option_differences(asked, made);
    if (!diff.empty())
      throw std::runtime_error("cannot resume from '" + ckpt_path + "': it was made with other options: " +
                               diff + ". Rerun with the checkpoint's options, or delete it to start afresh");
    std::fprintf(stderr, "resuming from %s (%zu of %zu epochs done)\n", ckpt_path.c_str(),
                 checkpoint->state.at("history").size(), checkpoint->options.epochs);
  } else if (args.has("--init")) {
    init_model.emplace(load_model_file(args.get("--init")));
  }
  const Model* base = checkpoint ? &checkpoint->model : init_model ? &*init_model : nullptr;
  size_t input_size = 0;
  std::vector<std::string> classes;
  bool crop_to_head = crop_name == "head";
  if (base) {
    crop_to_head = base->preprocessing().crop_to_head;
    input_size = base->architecture().width;
    classes = base->classes();
    if (base->architecture().width != base->architecture().height)
      throw std::runtime_error("only square model inputs are supported by train");
  } else {
    input_size = args.get_size("--input-size", 0, 8, 1024);
    if (input_size == 0) input_size = make_architecture(arch_name, 0, 2).width;
  }

  // Data: decode + resize once, in parallel.
  ImageFolderOptions load;
  load.width = load.height = input_size;
  load.classes = classes;
  load.crop_to_head = crop_to_head;
  ProgressBar bar;
  load.progress = [&](size_t done, size_t total) {
    if (bar.tty()) std::fprintf(stderr, "\r\033[Kloading images %zu/%zu", done, total);
  };
  const Dataset data = load_image_folder(rt, data_dir, load);
  if (bar.tty()) std::fprintf(stderr, "\r\033[K");
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "loaded %zu images of %zu classes at %zux%zu%s in %.1f s", data.size(),
               data.classes().size(), input_size, input_size,
               crop_to_head ? " (cropped to the head)" : "", load_seconds);
  if (!data.skipped().empty()) std::fprintf(stderr, "; skipped %zu unreadable files:", data.skipped().size());
  std::fprintf(stderr, "\n");
  for (size_t i = 0; i < data.skipped().size() && i < 20; ++i)
    std::fprintf(stderr, "  skipped %s\n", data.skipped()[i].c_str());
  if (data.skipped().size() > 20) std::fprintf(stderr, "  ... and %zu more\n", data.skipped().size() - 20);
  if (g_stop) return 130;

  // The split (the checkpoint's options win when resuming: same seed, same split).
  const uint64_t split_seed =
      checkpoint ? checkpoint->extra.value("split_seed", checkpoint->options.seed) : asked_split_seed;
  const double split_fraction =
      checkpoint ? checkpoint->extra.value("val_fraction", val_fraction) : val_fraction;
  const Split split = split_dataset(data, split_fraction, split_seed);
  const uint64_t digest = split_digest(data, split);
  if (checkpoint && checkpoint->extra.value("split_digest", uint64_t{0}) != digest)
    throw std::runtime_error("cannot resume: the data in '" + data_dir +
                             "' no longer splits as it did when the checkpoint was made "
                             "(files added, removed or changed); start afresh without --resume");
  const nlohmann::json split_json = split_to_json(data, split, split_fraction, split_seed);
  write_text_atomic(stem + ".split.json", split_json.dump(1) + "\n");
  std::fprintf(stderr,
               "split: %zu train, %zu validation (%.0f%%, seed %llu); %zu groups of byte-identical "
               "files (%zu files) kept on one side%s\n",
               split.train.size(), split.validation.size(), 100.0 * split_fraction,
               static_cast<unsigned long long>(split_seed), split.duplicate_groups, split.duplicate_files,
               split.cross_class_groups
                   ? (", " + std::to_string(split.cross_class_groups) + " of them under several classes").c_str()
                   : "");
  if (args.has("--val-dir")) write_validation_links(args.get("--val-dir"), data_dir, data, split);

  // The model.
  std::string arch_label = arch_name;
  std::optional<Model> model_storage;
  if (checkpoint) {
    model_storage.emplace(std::move(checkpoint->model));
    opt = checkpoint->options;
    arch_label = checkpoint->extra.value("arch", std::string("?"));
  } else if (init_model) {
    model_storage.emplace(std::move(*init_model));
    arch_label = "fine-tuned from " + fs::path(args.get("--init")).filename().string();
  } else {
    double mean = 0, stddev = 1;
    data.pixel_statistics(split.train, mean, stddev);
    Preprocessing pre{static_cast<float>(mean), static_cast<float>(stddev), crop_to_head};
    model_storage.emplace(make_architecture(arch_name, input_size, data.classes().size()), data.classes(), pre);
    model_storage->init_params(opt.seed);
  }
  Model& model = *model_storage;
  model.training_record() = nlohmann::json::object();
  std::fprintf(stderr, "model: %s, %zux%zu input, %zu parameters (%.2f MB as %s), %.1f MFLOP per image\n",
               arch_label.c_str(), input_size, input_size, model.parameter_count(),
               static_cast<double>(model.parameter_count() * dtype_bytes(weights)) / 1e6,
               dtype_name(weights), model.flops_per_image() / 1e6);

  Trainer trainer(rt, model, data, split.train, split.validation, opt);
  if (checkpoint) trainer.resume(*checkpoint);
  const double earlier_seconds = checkpoint ? checkpoint->extra.value("seconds", 0.0) : 0.0;
  auto elapsed = [&] {
    return earlier_seconds +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  std::fprintf(stderr, "training %zu epochs of %zu batches of %zu with %s on %zu thread%s\n",
               opt.epochs, trainer.batches_per_epoch(), std::min(opt.batch_size, split.train.size()),
               opt.optimizer == OptimizerKind::sgd ? "SGD (Nesterov)" : "AdamW", rt.threads(),
               rt.threads() == 1 ? "" : "s");

  std::vector<size_t> all_items(data.size());
  for (size_t i = 0; i < all_items.size(); ++i) all_items[i] = i;
  auto record = [&](const std::string& status) {
    nlohmann::json r = trainer.record();
    r["status"] = status;
    r["architecture"] = arch_label;
    r["input_size"] = input_size;
    r["parameters"] = model.parameter_count();
    r["flops_per_image"] = model.flops_per_image();
    r["weights"] = dtype_name(weights);
    r["threads"] = rt.threads();
    r["seconds"] = elapsed();
    r["data"] = {{"folder", fs::path(data_dir).filename().string()},
                 {"images", data.size()},
                 {"per_class", per_class_counts(data, all_items)},
                 {"skipped", data.skipped().size()},
                 {"val_fraction", split_fraction},
                 {"split_seed", split_seed},
                 {"train_per_class", per_class_counts(data, split.train)},
                 {"validation_per_class", per_class_counts(data, split.validation)},
                 {"duplicate_groups", split.duplicate_groups},
                 {"duplicate_files", split.duplicate_files},
                 {"cross_class_duplicate_groups", split.cross_class_groups}};
    if (trainer.best_epoch() > 0) {
      const EpochRecord& b = trainer.history()[trainer.best_epoch() - 1];
      r["best"] = to_json(b);
    }
    return r;
  };
  auto write_curves = [&] {
    write_text_atomic(stem + ".svg",
                      training_curves_svg(trainer.history(), "NeuroLens training: " + arch_label));
  };

  TrainCallbacks cb;
  cb.on_batch = [&](const BatchProgress& p) { bar.batch(p); };
  cb.on_epoch = [&](const EpochRecord& r) {
    bar.clear();
    print_epoch(r, opt.epochs);
  };
  cb.on_best = [&](const Model&, const EpochRecord&) {
    model.training_record() = record("in progress");
    save_model_file(model, out, weights);
  };
  cb.on_checkpoint = [&] {
    const nlohmann::json extra = {{"arch", arch_label},
                                  {"val_fraction", split_fraction},
                                  {"split_seed", split_seed},
                                  {"split_digest", digest},
                                  {"seconds", elapsed()}};
    write_file_atomic(ckpt_path, trainer.checkpoint(extra));
    write_curves();
  };

  const TrainStatus status = trainer.run(cb, &g_stop);
  bar.clear();
  if (status == TrainStatus::cancelled) {
    std::fprintf(stderr, "interrupted (%s) during epoch %zu: ", describe_stop_signal().c_str(),
                 trainer.epochs_done() + 1);
    if (trainer.best_epoch() > 0)
      std::fprintf(stderr, "the best model so far (epoch %d) is in %s; ", trainer.best_epoch(), out.c_str());
    std::fprintf(stderr, "rerun with --resume to continue from %s\n",
                 trainer.epochs_done() > 0 ? ckpt_path.c_str() : "the start");
    return 130;
  }

  // Finished: the best model gets the complete record (all epochs, status, total time).
  // The best epoch's weights come from the trainer (they are in every checkpoint), so the
  // result does not depend on what happened to FILE meanwhile.
  Model best = model.clone();
  if (!trainer.copy_best_into(best)) best = load_model_file(out);  // checkpoint without them
  best.training_record() = record("finished");
  save_model_file(best, out, weights);
  write_curves();
  const EpochRecord& b = trainer.history()[trainer.best_epoch() - 1];
  std::fprintf(stderr, "done in %s: best epoch %zu", format_duration(elapsed()).c_str(), b.epoch);
  if (b.has_validation)
    std::fprintf(stderr, ", validation accuracy %.2f%% (loss %.4f)", 100.0 * b.val_accuracy, b.val_loss);
  std::fprintf(stderr, "\nwrote %s, %s.svg, %s.split.json, %s\n", out.c_str(), stem.c_str(), stem.c_str(),
               ckpt_path.c_str());
  return 0;
}

}  // namespace nl::cli
