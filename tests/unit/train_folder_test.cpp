// Training from image folders on disk (native only: the browser builds its data set from
// bytes): a synthetic folder of PNG and JPEG shapes the test writes, with a twin, a broken
// file and stray files; loading, the split, training, evaluation, and an interrupted run
// leaving a loadable best model.
#ifndef __EMSCRIPTEN__
#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "formats/image.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "features/network_catalogue.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/image_folder.h"
#include "train/metrics.h"
#include "train/trainer.h"
#include "temp_dir.h"
#include "train_synthetic.h"

#include "stb_write.h"

namespace fs = std::filesystem;

namespace nl::test {

namespace {

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// Writes `per_class` images of each of the four shapes (size x size) under dir/<class>/,
// alternating grey PNG, RGB PNG and JPEG. Returns the class names.
std::vector<std::string> write_shape_folder(const fs::path& dir, size_t per_class, size_t size,
                                            uint64_t seed) {
  const std::vector<std::string> classes = {"disc", "hbar", "square", "vbar"};
  const int label_of[4] = {0, 1, 3, 2};  // synthetic_shape's labels, by folder
  for (size_t c = 0; c < 4; ++c)
    for (size_t k = 0; k < per_class; ++k) {
      const std::vector<float> px = synthetic_shape(label_of[c], size, derive_seed(seed, {c, k}));
      const int channels = k % 3 == 1 ? 3 : 1;
      std::vector<uint8_t> raw;
      for (float v : px)
        for (int ch = 0; ch < channels; ++ch) raw.push_back(static_cast<uint8_t>(v * 255.0f + 0.5f));
      std::vector<uint8_t> file;
      const int s = static_cast<int>(size);
      const bool jpeg = k % 3 == 2;
      if (jpeg) stbi_write_jpg_to_func(append_to, &file, s, s, channels, raw.data(), 95);
      else stbi_write_png_to_func(append_to, &file, s, s, channels, raw.data(), s * channels);
      write_bytes(dir / classes[c] / ("img" + std::to_string(k) + (jpeg ? ".jpg" : ".png")), file);
    }
  return classes;
}

TEST_CASE("image folder: classes from folders, twins hashed alike, bad files skipped with a count") {
  TempDir tmp("neurolens-folder-test");
  const fs::path data_dir = tmp.path / "data";
  const std::vector<std::string> classes = write_shape_folder(data_dir, 6, 40, 1);
  fs::copy_file(data_dir / "disc" / "img0.png", data_dir / "disc" / "twin-of-img0.png");
  write_bytes(data_dir / "vbar" / "broken.jpg", {0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F'});
  write_bytes(data_dir / "vbar" / ".hidden", {1, 2, 3});
  write_bytes(data_dir / "README.txt", {'h', 'i'});
  fs::create_directories(data_dir / "hbar" / "more");
  fs::copy_file(data_dir / "hbar" / "img1.png", data_dir / "hbar" / "more" / "copy.png");

  Runtime rt(2);
  size_t progress_calls = 0;
  ImageFolderOptions opt;
  opt.width = opt.height = 24;
  opt.progress = [&](size_t done, size_t total) {
    ++progress_calls;
    CHECK(done <= total);
  };
  const Dataset data = load_image_folder(rt, data_dir.string(), opt);
  CHECK(data.classes() == classes);
  CHECK(data.size() == 4 * 6 + 2);
  CHECK(data.class_counts() == std::vector<size_t>{7, 7, 6, 6});
  CHECK(progress_calls >= 1);
  REQUIRE(data.skipped().size() == 2);
  CHECK(data.skipped()[0] == "README.txt: not inside a folder named after a class");
  CHECK(data.skipped()[1].rfind("vbar/broken.jpg: ", 0) == 0);
  size_t twin = SIZE_MAX, original = SIZE_MAX, nested = SIZE_MAX;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data.item(i).path == "disc/twin-of-img0.png") twin = i;
    if (data.item(i).path == "disc/img0.png") original = i;
    if (data.item(i).path == "hbar/more/copy.png") nested = i;
  }
  REQUIRE(twin != SIZE_MAX);
  REQUIRE(original != SIZE_MAX);
  REQUIRE(nested != SIZE_MAX);
  CHECK(data.item(twin).hash == data.item(original).hash);
  const Split split = split_dataset(data, 0.3, 9);
  CHECK(split.duplicate_groups == 2);
  const bool twin_in_val = std::count(split.validation.begin(), split.validation.end(), twin) == 1;
  const bool original_in_val = std::count(split.validation.begin(), split.validation.end(), original) == 1;
  CHECK(twin_in_val == original_in_val);

  // Matching to a model's classes: order from the model; a folder that names no class has
  // its files skipped (as the page does); no class folder at all is an error.
  ImageFolderOptions model_order = opt;
  model_order.classes = {"vbar", "square", "hbar", "disc", "extra"};
  const Dataset reordered = load_image_folder(rt, data_dir.string(), model_order);
  CHECK(reordered.class_counts() == std::vector<size_t>{6, 6, 7, 7, 0});
  model_order.classes = {"disc", "hbar", "square"};
  const Dataset without_vbar = load_image_folder(rt, data_dir.string(), model_order);
  CHECK(without_vbar.class_counts() == std::vector<size_t>{7, 7, 6});
  REQUIRE(without_vbar.skipped().size() == 1 + 7);  // README.txt, and vbar's 6 images + broken.jpg
  CHECK(without_vbar.skipped()[1] == "vbar/broken.jpg: not inside a folder named after a class");
  CHECK(without_vbar.skipped()[2] == "vbar/img0.png: not inside a folder named after a class");
  model_order.classes = {"circle", "triangle"};
  CHECK_THROWS_WITH_AS(load_image_folder(rt, data_dir.string(), model_order),
                       doctest::Contains("has no class folders: none of its folders ('disc', 'hbar', 'square', 'vbar') "
                                         "or the folders in them is named after one of the classes (circle, triangle)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(load_image_folder(rt, (tmp.path / "nope").string(), opt),
                       doctest::Contains("does not exist"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(load_image_folder(rt, (data_dir / "README.txt").string(), opt),
                       doctest::Contains("is not a folder"), std::invalid_argument);
  fs::create_directories(tmp.path / "empty");
  CHECK_THROWS_WITH_AS(load_image_folder(rt, (tmp.path / "empty").string(), opt),
                       doctest::Contains("no class folders"), std::invalid_argument);

  // The decoded pixels are exactly what nl::preprocess would feed the model.
  const std::vector<uint8_t> bytes = read_file_bytes((data_dir / "square" / "img2.jpg").string());
  Model m(make_architecture("tiny", 24, 4), data.classes());
  const Tensor expect = preprocess(bytes, m.architecture(), m.preprocessing());
  size_t idx = SIZE_MAX;
  for (size_t i = 0; i < data.size(); ++i)
    if (data.item(i).path == "square/img2.jpg") idx = i;
  REQUIRE(idx != SIZE_MAX);
  for (size_t i = 0; i < 24 * 24; ++i) CHECK(data.image(idx)[i] == expect[i]);
}

TEST_CASE("image folder: the page's rule -- nearest enclosing class folder, readable names, aliases") {
  TempDir tmp("neurolens-labelled-folder-test");
  const fs::path d = tmp.path / "data";
  auto png = [](uint8_t level) {
    std::vector<uint8_t> px(9 * 7, level), file;
    stbi_write_png_to_func(append_to, &file, 9, 7, 1, px.data(), 9);
    return file;
  };
  write_bytes(d / "Training" / "No Tumor" / "a0.png", png(10));
  write_bytes(d / "Training" / "No Tumor" / "a1.png", png(20));
  write_bytes(d / "Training" / "glioma" / "patient1" / "b0.png", png(30));
  write_bytes(d / "Training" / "glioma" / "patient1" / ".DS_Store", {1});
  write_bytes(d / "Training" / "Thumbs.db", {1});
  write_bytes(d / "Testing" / "Pituitary_Tumour" / "c0.png", png(40));
  write_bytes(d / "Testing" / "misc" / "d0.png", png(50));
  write_bytes(d / "notes.txt", {'h', 'i'});

  Runtime rt(1);
  ImageFolderOptions opt;
  opt.width = opt.height = 8;
  opt.classes = {"glioma", "meningioma", "notumor", "pituitary"};
  const Dataset data = load_image_folder(rt, d.string(), opt);
  CHECK(data.classes() == opt.classes);
  CHECK(data.class_counts() == std::vector<size_t>{1, 0, 2, 1});
  REQUIRE(data.size() == 4);
  CHECK(data.item(0).path == "Testing/Pituitary_Tumour/c0.png");
  CHECK(data.item(1).path == "Training/No Tumor/a0.png");
  CHECK(data.item(2).path == "Training/No Tumor/a1.png");
  CHECK(data.item(3).path == "Training/glioma/patient1/b0.png");
  CHECK(data.skipped() == std::vector<std::string>{"notes.txt: not inside a folder named after a class",
                                                   "Testing/misc/d0.png: not inside a folder named after a class"});

  // Without classes they are DIR's sub-folders, and a deeper folder of the same name counts.
  opt.classes.clear();
  const Dataset own = load_image_folder(rt, d.string(), opt);
  CHECK(own.classes() == std::vector<std::string>{"Testing", "Training"});
  CHECK(own.class_counts() == std::vector<size_t>{2, 3});
}

TEST_CASE("image folder cropped to the head: exactly what preprocess gives; mismatches refused") {
  TempDir tmp("neurolens-crop-folder-test");
  const fs::path data_dir = tmp.path / "data";
  // Small bright "heads" at different places and sizes on black 64x48 images.
  for (size_t k = 0; k < 6; ++k) {
    std::vector<uint8_t> px(64 * 48, 0);
    const double cx = 14 + 7.0 * k, cy = 16 + 3.0 * k, r = 6 + 2.0 * k;
    for (size_t y = 0; y < 48; ++y)
      for (size_t x = 0; x < 64; ++x)
        if (std::hypot(x - cx, y - cy) < r) px[y * 64 + x] = static_cast<uint8_t>(120 + 20 * k);
    std::vector<uint8_t> file;
    stbi_write_png_to_func(append_to, &file, 64, 48, 1, px.data(), 64);
    write_bytes(data_dir / (k % 2 ? "a" : "b") / ("head" + std::to_string(k) + ".png"), file);
  }
  Runtime rt(2);
  ImageFolderOptions opt;
  opt.width = opt.height = 20;
  opt.crop_to_head = true;
  const Dataset data = load_image_folder(rt, data_dir.string(), opt);
  REQUIRE(data.size() == 6);
  CHECK(data.crop_to_head());
  Model cropping(make_architecture("tiny", 20, 2), data.classes(), Preprocessing{0.0f, 1.0f, true});
  for (size_t i = 0; i < data.size(); ++i) {
    const std::vector<uint8_t> bytes = read_file_bytes((data_dir / data.item(i).path).string());
    const Tensor expect = preprocess(bytes, cropping.architecture(), cropping.preprocessing());
    for (size_t p = 0; p < 20 * 20; ++p) CHECK(data.image(i)[p] == expect[p]);
  }

  // Training a model on data prepared another way is refused, naming the difference.
  Model whole(make_architecture("tiny", 20, 2), data.classes());
  const Split split = split_dataset(data, 0.34, 1);
  TrainOptions o;
  o.epochs = 1;
  CHECK_THROWS_WITH_AS(Trainer(rt, whole, data, split.train, split.validation, o),
                       "train: the model does not crop images to the head but the data was loaded cropped",
                       std::invalid_argument);
  opt.crop_to_head = false;
  const Dataset uncropped = load_image_folder(rt, data_dir.string(), opt);
  CHECK_THROWS_WITH_AS(Trainer(rt, cropping, uncropped, split.train, split.validation, o),
                       "train: the model crops images to the head but the data was loaded uncropped",
                       std::invalid_argument);
}

TEST_CASE("train and evaluate on a synthetic folder; an interrupt leaves the best model loadable") {
  TempDir tmp("neurolens-train-test");
  const fs::path data_dir = tmp.path / "data";
  write_shape_folder(data_dir, 16, 32, 2);
  Runtime rt(2);
  ImageFolderOptions opt;
  opt.width = opt.height = 16;
  const Dataset data = load_image_folder(rt, data_dir.string(), opt);
  REQUIRE(data.size() == 64);
  const Split split = split_dataset(data, 0.25, 1);

  Model model(make_architecture("tiny", 16, 4), data.classes());
  model.init_params(11);
  TrainOptions o;
  o.epochs = 30;
  o.batch_size = 8;
  o.lr = 1e-2;
  o.min_lr = 1e-4;
  o.label_smoothing = 0.05;
  o.weight_decay = 1e-4;
  o.augment = AugmentOptions{};
  o.augment.flip = true;  // all four shapes are mirror-symmetric
  Trainer trainer(rt, model, data, split.train, split.validation, o);

  const std::string best_path = (tmp.path / "best.safetensors").string();
  std::vector<uint8_t> best_bytes;
  std::atomic<bool> cancel{false};
  TrainCallbacks cb;
  cb.on_best = [&](const Model& m, const EpochRecord&) {
    save_model_file(m, best_path);
    best_bytes = serialize_model(m);
  };
  cb.on_batch = [&](const BatchProgress& p) {
    if (p.epoch == 25 && p.batch == 2) cancel = true;  // "Ctrl-C" in the middle of epoch 25
  };
  CHECK(trainer.run(cb, &cancel) == TrainStatus::cancelled);
  CHECK(trainer.epochs_done() == 24);
  REQUIRE(fs::exists(best_path));
  CHECK_FALSE(fs::exists(best_path + ".tmp"));
  Model best = load_model_file(best_path);
  CHECK(serialize_model(best) == best_bytes);

  // The best model classifies the held-out shapes.
  const Evaluation ev = evaluate(rt, best, data, split.validation);
  CHECK(ev.items.size() == split.validation.size());
  CHECK(ev.accuracy >= 0.9);
  CHECK(ev.accuracy == doctest::Approx(trainer.history()[trainer.best_epoch() - 1].val_accuracy));
}


namespace {

// The `neurolens` executable built beside this test binary.
fs::path cli_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("neurolens") : self.parent_path() / "neurolens";
}

// Runs a shell command line; returns its exit status (or 128 + signal).
int run(const std::string& command) {
  const int status = std::system(command.c_str());
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

nlohmann::json read_json(const fs::path& p) {
  const std::vector<uint8_t> bytes = read_file_bytes(p.string());
  return nlohmann::json::parse(bytes.begin(), bytes.end());
}

}  // namespace

TEST_CASE("CLI: neurolens train + evaluate end to end on a synthetic folder; interrupt; resume") {
  const fs::path exe = cli_path();
  REQUIRE_MESSAGE(fs::exists(exe), "the neurolens executable is not built at " << exe.string());
  TempDir tmp("neurolens-cli-train-test");
  const fs::path data_dir = tmp.path / "data";
  write_shape_folder(data_dir, 16, 32, 5);
  write_bytes(data_dir / "disc" / "corrupt.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
  const fs::path out = tmp.path / "model.safetensors", log = tmp.path / "log.txt";
  const std::string train = quote(exe) + " train --data " + quote(data_dir) + " --out " + quote(out) +
                            " --arch tiny --input-size 16 --crop head --batch 8 --lr 0.01 --threads 2" +
                            " --val-fraction 0.25 --seed 3 --val-dir " + quote(tmp.path / "val");

  // The last command's stderr (redirected to `log`) says `text`; on failure, shows what it said.
  auto check_log = [&](const std::string& text) {
    const std::vector<uint8_t> bytes = read_file_bytes(log.string());
    const std::string said(bytes.begin(), bytes.end());
    CHECK_MESSAGE(said.find(text) != std::string::npos, "expected \"" << text << "\" in: " << said);
  };
  REQUIRE(run(train + " --epochs 12 2>" + quote(log)) == 0);
  check_log("epoch 12/12");
  check_log("skipped 1 files (unreadable, or under no class folder)");
  check_log("batches of 8 with AdamW on 2 threads");
  for (const char* ext : {".ckpt", ".svg", ".split.json"})
    CHECK_MESSAGE(fs::exists(tmp.path / (std::string("model") + ext)), ext);
  const Model model = load_model_file(out.string());
  const nlohmann::json& rec = model.training_record();
  CHECK(rec["status"] == "finished");
  CHECK(rec["epochs"].size() == 12);
  CHECK(rec["data"]["images"] == 64);
  CHECK(rec["data"]["skipped"] == 1);
  CHECK(rec["options"]["epochs"] == 12);
  CHECK(model.preprocessing().crop_to_head);
  const nlohmann::json split = read_json(tmp.path / "model.split.json");
  CHECK(split["validation"].size() == 16);
  CHECK(split["train"].size() == 48);

  // Evaluate on the materialised validation folder: the figures of the best epoch.
  const fs::path report = tmp.path / "eval.json";
  REQUIRE(run(quote(exe) + " evaluate --model " + quote(out) + " --data " + quote(tmp.path / "val") +
              " --json >" + quote(report)) == 0);
  const nlohmann::json ev = read_json(report);
  CHECK(ev["accuracy"].get<double>() == doctest::Approx(rec["best"]["val_accuracy"].get<double>()));
  CHECK(ev["loss"].get<double>() == doctest::Approx(rec["best"]["val_loss"].get<double>()).epsilon(1e-4));
  CHECK(ev["accuracy"].get<double>() >= 0.9);
  CHECK(ev["classes"] == nlohmann::json({"disc", "hbar", "square", "vbar"}));
  size_t total = 0, diagonal = 0;
  for (size_t r = 0; r < 4; ++r)
    for (size_t c = 0; c < 4; ++c) {
      total += ev["confusion"][r][c].get<size_t>();
      if (r == c) diagonal += ev["confusion"][r][c].get<size_t>();
    }
  CHECK(total == 16);
  CHECK(ev["misclassified"].size() == total - diagonal);
  for (const auto& m : ev["misclassified"]) {
    CHECK(m["true"] != m["predicted"]);
    CHECK(m["confidence"].get<double>() > 0.25);
  }
  CHECK(ev["per_class"]["disc"]["support"] == 4);
  const Interval expected = wilson_interval(diagonal, total);
  REQUIRE(ev["accuracy_interval95"].size() == 2);
  CHECK(ev["accuracy_interval95"][0].get<double>() == doctest::Approx(expected.low));
  CHECK(ev["accuracy_interval95"][1].get<double>() == doctest::Approx(expected.high));
  // The model merged with itself (an ensemble of one model, twice) scores the same.
  const fs::path twice = tmp.path / "twice.safetensors";
  REQUIRE(run(quote(exe) + " ensemble --weights f16 --out " + quote(twice) + " " + quote(out) + " " + quote(out) +
              " >" + quote(log)) == 0);
  const nlohmann::json members = load_model_file(twice.string()).training_record()["ensemble"];
  REQUIRE(members.size() == 2);
  CHECK(members[1]["file"] == out.string());
  CHECK(members[1]["status"] == "finished");
  REQUIRE(run(quote(exe) + " evaluate --model " + quote(twice) + " --data " + quote(tmp.path / "val") +
              " --json >" + quote(report)) == 0);
  CHECK(read_json(report)["accuracy"].get<double>() == doctest::Approx(ev["accuracy"].get<double>()));
  CHECK(run(quote(exe) + " ensemble --out " + quote(twice) + " " + quote(out) + " 2>" + quote(log)) == 2);
  // --flip: the model averaged with its mirror image, a flip layer in front of the second branch.
  const fs::path flipped = tmp.path / "flipped.safetensors";
  REQUIRE(run(quote(exe) + " ensemble --flip --out " + quote(flipped) + " " + quote(out) + " >" + quote(log)) == 0);
  check_log("mean of 1 model and its mirror image");
  const Model tta = load_model_file(flipped.string());
  CHECK(tta.architecture().layers[tta.layer_index("flip_m2")].type == "flip");
  const nlohmann::json tta_members = tta.training_record()["ensemble"];
  REQUIRE(tta_members.size() == 2);
  CHECK(tta_members[1]["file"] == out.string());
  CHECK(tta_members[1]["input_flipped"] == true);
  CHECK(tta_members[0]["status"] == "finished");
  REQUIRE(run(quote(exe) + " evaluate --model " + quote(flipped) + " --data " + quote(tmp.path / "val") +
              " --json >" + quote(report)) == 0);
  CHECK(read_json(report)["confusion"].size() == 4);
  CHECK(run(quote(exe) + " ensemble --flip --out " + quote(flipped) + " 2>" + quote(log)) == 2);
  check_log("give at least one model to average with its mirror image");
  // The plain report too.
  CHECK(run(quote(exe) + " evaluate --model " + quote(out) + " --data " + quote(tmp.path / "val") +
            " >" + quote(tmp.path / "eval.txt")) == 0);
  const std::vector<uint8_t> text = read_file_bytes((tmp.path / "eval.txt").string());
  char accuracy_line[128];
  std::snprintf(accuracy_line, sizeof accuracy_line, "(%zu/%zu; 95%% interval %.2f%% to %.2f%%)", diagonal,
                total, 100.0 * expected.low, 100.0 * expected.high);
  CHECK(std::string(text.begin(), text.end()).find(accuracy_line) != std::string::npos);

  // Rerunning with --resume continues (here: nothing left to do) and keeps the model.
  CHECK(run(train + " --epochs 12 --resume 2>" + quote(log)) == 0);
  CHECK(load_model_file(out.string()).training_record()["epochs"].size() == 12);
  // ... but not with another recipe.
  CHECK(run(train + " --epochs 12 --resume --lr 0.02 2>" + quote(log)) == 1);
  check_log("lr 0.02 (checkpoint 0.01)");
  CHECK(run(train + " --epochs 12 --resume --split-seed 4 2>" + quote(log)) == 1);
  check_log("split_seed 4 (checkpoint 3)");
  CHECK(run(train + " --epochs 12 --resume --split-seed 3 2>" + quote(log)) == 0);  // --seed 3's split
  CHECK(run(train + " --epochs 12 --resume --crop none 2>" + quote(log)) == 1);
  check_log("crop \"none\" (checkpoint \"head\")");
  // Stronger augmentation is another recipe (the message shows the scaled range), and it
  // cannot be combined with none at all.
  CHECK(run(train + " --epochs 12 --resume --augment-strength 1.5 2>" + quote(log)) == 1);
  check_log("augment.rotation_deg 18");
  CHECK(run(train + " --epochs 12 --resume --augment-strength 1 2>" + quote(log)) == 0);  // the default
  CHECK(run(train + " --epochs 12 --no-augment --augment-strength 1 2>" + quote(log)) == 2);
  check_log("contradict each other");
  // SGD trains from the CLI and is recorded with its momentum.
  const fs::path sgd_out = tmp.path / "sgd.safetensors";
  CHECK(run(quote(exe) + " train --data " + quote(data_dir) + " --out " + quote(sgd_out) +
            " --arch tiny --input-size 16 --batch 8 --threads 1 --epochs 2 --optimizer sgd --lr 0.05"
            " --momentum 0.8 2>" + quote(log)) == 0);
  check_log("with SGD (Nesterov) on 1 thread");
  const nlohmann::json sgd_options = load_model_file(sgd_out.string()).training_record()["options"];
  CHECK(sgd_options["optimizer"] == "sgd");
  CHECK(sgd_options["momentum"] == 0.8);
  CHECK(rec["options"]["optimizer"] == "adamw");
  // The optimizer is part of the recipe too; SGD's momentum only goes with SGD.
  CHECK(run(train + " --epochs 12 --resume --optimizer sgd 2>" + quote(log)) == 1);
  check_log("optimizer \"sgd\" (checkpoint \"adamw\")");
  CHECK(run(train + " --epochs 12 --resume --momentum 0.8 2>" + quote(log)) == 2);
  check_log("needs --optimizer sgd");
  CHECK(run(train + " --epochs 12 --resume --optimizer lion 2>" + quote(log)) == 2);
  check_log("unknown optimizer 'lion'");
  CHECK(run(quote(exe) + " train --data " + quote(data_dir) + " --out " + quote(tmp.path / "x.safetensors") +
            " --crop brain 2>" + quote(log)) == 2);
  check_log("--crop: 'brain' is not head or none");

  // A data folder in which no folder names one of the model's classes is an error naming them.
  fs::create_directories(tmp.path / "bad" / "triangle");
  fs::copy_file(data_dir / "disc" / "img0.png", tmp.path / "bad" / "triangle" / "x.png");
  CHECK(run(quote(exe) + " evaluate --model " + quote(out) + " --data " + quote(tmp.path / "bad") +
            " 2>" + quote(log)) == 1);
  check_log("'triangle'");

  // SIGINT during a long run: exit 130, the best model so far and the checkpoint loadable.
  const fs::path out2 = tmp.path / "long.safetensors";
  const std::string long_run = quote(exe) + " train --data " + quote(data_dir) + " --out " + quote(out2) +
                               " --arch tiny --input-size 16 --batch 8 --threads 1 --epochs 5000";
  // Wait until the first checkpoint exists, then interrupt.
  const std::string interrupt =
      "( " + long_run + " 2>" + quote(log) + " & pid=$!; for i in $(seq 1 600); do [ -f " +
      quote(tmp.path / "long.ckpt") + " ] && break; sleep 0.1; done; sleep 0.3; kill -INT $pid; wait $pid )";
  CHECK(run(interrupt) == 130);
  const Model interrupted = load_model_file(out2.string());
  CHECK(interrupted.training_record()["status"] == "in progress");
  CHECK_FALSE(fs::exists(tmp.path / "long.safetensors.tmp"));
  const Checkpoint ck = load_checkpoint(read_file_bytes((tmp.path / "long.ckpt").string()));
  CHECK(ck.options.epochs == 5000);
  check_log("rerun with --resume");
}

TEST_CASE("CLI: cross-validation folds, then neurolens calibrate writes a calibrated model and its report") {
  const fs::path exe = cli_path();
  REQUIRE_MESSAGE(fs::exists(exe), "the neurolens executable is not built at " << exe.string());
  TempDir tmp("neurolens-cli-calibrate-test");
  const fs::path data_dir = tmp.path / "data";
  write_shape_folder(data_dir, 16, 32, 7);
  const fs::path log = tmp.path / "log.txt";
  auto said = [&] {
    const std::vector<uint8_t> bytes = read_file_bytes(log.string());
    return std::string(bytes.begin(), bytes.end());
  };
  const std::string train = quote(exe) + " train --data " + quote(data_dir) +
                            " --arch tiny --input-size 16 --batch 8 --lr 0.01 --threads 1 --epochs 8 --seed 2";
  std::vector<fs::path> folds;
  std::set<std::string> held_out;
  for (int fold = 0; fold < 2; ++fold) {
    folds.push_back(tmp.path / ("fold-" + std::to_string(fold) + ".safetensors"));
    REQUIRE(run(train + " --folds 2 --fold " + std::to_string(fold) + " --out " + quote(folds.back()) + " 2>" +
                quote(log)) == 0);
    CHECK_MESSAGE(said().find("held out (fold " + std::to_string(fold) + " of 2") != std::string::npos, said());
    CHECK(said().find("val loss") == std::string::npos);  // the held-out fold is not looked at
    const nlohmann::json split = read_json(tmp.path / ("fold-" + std::to_string(fold) + ".split.json"));
    CHECK(split["folds"] == 2);
    CHECK(split["held_out_fold"] == fold);
    CHECK(split["validation"].size() == 32);
    for (const auto& p : split["validation"]) CHECK(held_out.insert(p.get<std::string>()).second);
    const Model m = load_model_file(folds.back().string());
    CHECK(m.training_record()["data"]["cross_validation"]["held_out_fold"] == fold);
    CHECK(m.training_record()["best_epoch"] == 8);  // the last epoch, not one picked on the held-out fold
  }
  CHECK(held_out.size() == 64);  // every image held out exactly once
  CHECK(run(train + " --folds 2 --out " + quote(tmp.path / "x.safetensors") + " 2>" + quote(log)) == 2);
  CHECK(run(train + " --folds 2 --fold 0 --val-fraction 0.2 --out " + quote(tmp.path / "x.safetensors") + " 2>" +
            quote(log)) == 2);
  CHECK(said().find("give one") != std::string::npos);

  const fs::path final_model = tmp.path / "final.safetensors";
  REQUIRE(run(train + " --val-fraction 0 --weights f16 --out " + quote(final_model) + " 2>" + quote(log)) == 0);
  const fs::path out = tmp.path / "calibrated.safetensors", report = tmp.path / "report.json",
                 svg = tmp.path / "reliability.svg";
  const std::string calibrate = quote(exe) + " calibrate --data " + quote(data_dir) + " --model " +
                                quote(final_model) + " --threads 1 --report " + quote(report) +
                                " --calibration-svg " + quote(svg);
  REQUIRE(run(calibrate + " --out " + quote(out) + " " + quote(folds[0]) + " " + quote(folds[1]) + " >" +
              quote(log) + " 2>&1") == 0);
  CHECK(said().find("held-out accuracy: mean") != std::string::npos);
  const Model calibrated = load_model_file(out.string());
  const Confidence& c = calibrated.confidence();
  CHECK(c.temperature > 0.05);
  CHECK(c.temperature < 20.0);
  CHECK(c.feature_layer == "gap");
  CHECK(c.ood_threshold > 0.0);
  CHECK(c.uncertain_below >= 0.5);
  const nlohmann::json r = read_json(report);
  CHECK(r["folds"].size() == 2);
  CHECK(r["held_out_images"] == 64);
  CHECK(r["before_scaling"]["nll"].get<double>() >= r["after_scaling"]["nll"].get<double>() - 1e-9);
  CHECK(r["reliability_after"].size() == 15);
  CHECK(read_file_bytes(svg.string()).size() > 500);
  // At most --ood-rate (1%) of all held-out slices are flagged: of 64, none.
  size_t flagged = 0;
  for (const auto& fold : r["folds"]) flagged += fold["flagged"].get<size_t>();
  CHECK(flagged == 0);
  // classify and evaluate show the calibrated model's verdicts.
  const fs::path answer = tmp.path / "answer.json";
  REQUIRE(run(quote(exe) + " classify --json --model " + quote(out) + " " + quote(data_dir / "disc" / "img0.png") +
              " >" + quote(answer)) == 0);
  const nlohmann::json a = read_json(answer);
  CHECK(a["confidence"]["temperature"].get<double>() == doctest::Approx(c.temperature));
  CHECK(a["results"][0].contains("outlier_score"));
  CHECK(a["results"][0].contains("out_of_distribution"));
  CHECK(a["results"][0].contains("uncertain"));
  REQUIRE(run(quote(exe) + " evaluate --json --model " + quote(out) + " --data " + quote(data_dir) + " >" +
              quote(answer)) == 0);
  const nlohmann::json e = read_json(answer);
  CHECK(e["calibration"]["temperature"].get<double>() == doctest::Approx(c.temperature));
  CHECK(e["calibration"]["ece"].get<double>() >= 0.0);
  CHECK(e["out_of_distribution"].get<size_t>() <= 64);
  // --flip calibrates the flip-averaged graph, its detector on the unmirrored branch.
  REQUIRE(run(calibrate + " --flip --out " + quote(tmp.path / "flip.safetensors") + " " + quote(folds[0]) + " " +
              quote(folds[1]) + " >" + quote(log) + " 2>&1") == 0);
  const Model flip = load_model_file((tmp.path / "flip.safetensors").string());
  CHECK(flip.confidence().feature_layer == "m1_gap");
  CHECK(flip.layer(flip.layer_index("flip_m2")).spec().type == "flip");
  // Its weights are stored as the final model's were (F16), the confidence's tensors as F32.
  const std::vector<uint8_t> flip_bytes = read_file_bytes((tmp.path / "flip.safetensors").string());
  for (const SafetensorsEntry& t : parse_safetensors(flip_bytes).tensors) {
    CAPTURE(t.name);
    CHECK((t.dtype == Dtype::f16) == !t.name.starts_with("confidence."));
  }
  // A held-out model without its split file is refused, naming the file.
  fs::copy_file(folds[0], tmp.path / "lonely.safetensors");
  CHECK(run(calibrate + " --out " + quote(out) + " " + quote(tmp.path / "lonely.safetensors") + " 2>" +
            quote(log)) == 1);
  CHECK_MESSAGE(said().find("lonely.split.json") != std::string::npos, said());
}

}  // namespace nl::test
#endif  // __EMSCRIPTEN__
