// neurolens train, running (cli/train_command.h).
#include "cli/train_command.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/train_common.h"
#include "formats/model_file.h"
#include "train/image_folder.h"
#include "train/plot.h"
#include "train/trainer.h"

namespace nl::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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

// The files and console lines of one run, as the trainer's callbacks and at its end.
class RunOutputs {
 public:
  RunOutputs(const TrainRun& run, Trainer& trainer) : run_(run), trainer_(trainer) {
    for (size_t i = 0; i < run.data.size(); ++i) all_items_.push_back(i);
  }

  TrainCallbacks callbacks() {
    TrainCallbacks cb;
    cb.on_batch = [this](const BatchProgress& p) { bar_.batch(p); };
    cb.on_epoch = [this](const EpochRecord& r) {
      bar_.clear();
      print_epoch(r, run_.options.epochs);
    };
    cb.on_best = [this](const Model&, const EpochRecord&) {
      run_.model.training_record() = record("in progress");
      save_model_file(run_.model, run_.out, run_.weights);
    };
    cb.on_checkpoint = [this] {
      const nlohmann::json extra = {{"arch", run_.arch_label},
                                    {"val_fraction", run_.split_fraction},
                                    {"folds", run_.folds},
                                    {"fold", run_.fold},
                                    {"split_seed", run_.split_seed},
                                    {"split_digest", run_.split_digest},
                                    {"seconds", elapsed()}};
      write_file_atomic(run_.checkpoint_path, trainer_.checkpoint(extra));
      write_curves();
    };
    return cb;
  }

  void clear_progress() { bar_.clear(); }

  void report_interrupted() const {
    std::fprintf(stderr, "interrupted (%s) during epoch %zu: ", describe_stop_signal().c_str(),
                 trainer_.epochs_done() + 1);
    if (trainer_.best_epoch() > 0)
      std::fprintf(stderr, "the best model so far (epoch %d) is in %s; ", trainer_.best_epoch(),
                   run_.out.c_str());
    std::fprintf(stderr, "rerun with --resume to continue from %s\n",
                 trainer_.epochs_done() > 0 ? run_.checkpoint_path.c_str() : "the start");
  }

  // The best model gets the complete record (all epochs, status, total time). The best
  // epoch's weights come from the trainer (they are in every checkpoint), so the result does
  // not depend on what happened to FILE meanwhile.
  void write_finished() const {
    Model best = run_.model.clone();
    if (!trainer_.copy_best_into(best)) best = load_model_file(run_.out);  // checkpoint without them
    best.training_record() = record("finished");
    save_model_file(best, run_.out, run_.weights);
    write_curves();
    const EpochRecord& b = trainer_.history()[trainer_.best_epoch() - 1];
    std::fprintf(stderr, "done in %s: best epoch %zu", format_duration(elapsed()).c_str(), b.epoch);
    if (b.has_validation)
      std::fprintf(stderr, ", validation accuracy %.2f%% (loss %.4f)", 100.0 * b.val_accuracy, b.val_loss);
    const char* stem = run_.stem.c_str();
    std::fprintf(stderr, "\nwrote %s, %s.svg, %s.split.json, %s\n", run_.out.c_str(), stem, stem,
                 run_.checkpoint_path.c_str());
  }

 private:
  // Seconds of training, those of the runs this one resumed included.
  double elapsed() const {
    const double earlier = run_.resumed_from ? run_.resumed_from->extra.value("seconds", 0.0) : 0.0;
    return earlier + std::chrono::duration<double>(Clock::now() - run_.started).count();
  }

  void write_curves() const {
    write_text_atomic(run_.stem + ".svg", training_curves_svg(trainer_.history(),
                                                              "NeuroLens training: " + run_.arch_label));
  }

  // The model's training record: the trainer's, and what the run was made of.
  nlohmann::json record(const std::string& status) const {
    const Dataset& data = run_.data;
    const Split& split = run_.split;
    nlohmann::json r = trainer_.record();
    r["status"] = status;
    r["architecture"] = run_.arch_label;
    r["input_size"] = data.width();
    r["parameters"] = run_.model.parameter_count();
    r["flops_per_image"] = run_.model.flops_per_image();
    r["weights"] = dtype_name(run_.weights);
    r["threads"] = run_.rt.threads();
    r["seconds"] = elapsed();
    r["data"] = {{"folder", fs::path(run_.data_dir).filename().string()},
                 {"images", data.size()},
                 {"per_class", per_class_counts(data, all_items_)},
                 {"skipped", data.skipped().size()},
                 {"val_fraction", run_.split_fraction},
                 {"split_seed", run_.split_seed},
                 {"train_per_class", per_class_counts(data, split.train)},
                 {"validation_per_class", per_class_counts(data, split.validation)},
                 {"duplicate_groups", split.duplicate_groups},
                 {"duplicate_files", split.duplicate_files},
                 {"cross_class_duplicate_groups", split.cross_class_groups}};
    if (run_.folds) r["data"]["cross_validation"] = {{"folds", run_.folds}, {"held_out_fold", run_.fold}};
    if (trainer_.best_epoch() > 0) r["best"] = to_json(trainer_.history()[trainer_.best_epoch() - 1]);
    return r;
  }

  const TrainRun& run_;
  Trainer& trainer_;
  std::vector<size_t> all_items_;
  ProgressBar bar_;
};

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>& stop_requested() { return g_stop; }

int train_and_write(const TrainRun& run) {
  const TrainOptions& opt = run.options;
  // A cross-validation fold's held-out images are evaluated afterwards, never while training:
  // seen every epoch they would choose the epoch and flatter the cross-validated figure.
  const std::vector<size_t> no_validation;
  Trainer trainer(run.rt, run.model, run.data, run.split.train,
                  run.folds ? no_validation : run.split.validation, opt);
  if (run.resumed_from) trainer.resume(*run.resumed_from);
  std::fprintf(stderr, "training %zu epochs of %zu batches of %zu with %s on %zu thread%s\n",
               opt.epochs, trainer.batches_per_epoch(), std::min(opt.batch_size, run.split.train.size()),
               opt.optimizer == OptimizerKind::sgd ? "SGD (Nesterov)" : "AdamW", run.rt.threads(),
               run.rt.threads() == 1 ? "" : "s");
  RunOutputs outputs(run, trainer);
  const TrainStatus status = trainer.run(outputs.callbacks(), &g_stop);
  outputs.clear_progress();
  if (status == TrainStatus::cancelled) {
    outputs.report_interrupted();
    return 130;
  }
  outputs.write_finished();
  return 0;
}

}  // namespace nl::cli
