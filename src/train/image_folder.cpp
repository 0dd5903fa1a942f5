#include "train/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <stdexcept>

#include <pthreadpool.h>

#include "train/labelled_folders.h"

namespace nl {

namespace fs = std::filesystem;

namespace {

struct PendingFile {
  std::string path;     // relative: "<class>/<file>"
  std::string full;     // as opened
  int label = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> pixels;
  std::string error;
};

struct DecodeJob {
  std::vector<PendingFile>* files;
  size_t width, height;
  bool crop_to_head;
  const GreyDecoder* decode;
};

void decode_one(void* context, size_t i) {
  auto* job = static_cast<DecodeJob*>(context);
  PendingFile& f = (*job->files)[i];
  if (!f.error.empty()) return;
  f.pixels.resize(job->width * job->height);
  f.error = decode_for_dataset(f.bytes, job->width, job->height, job->crop_to_head, f.pixels.data(),
                               *job->decode);
}

// Hidden files and folders, and the OS clutter a folder tends to hold (as web/lib/files.js
// isClutter): passed over without a word.
bool is_clutter(const fs::path& p) {
  const std::string name = p.filename().string();
  return (!name.empty() && name[0] == '.') || name == "Thumbs.db" || name == "desktop.ini";
}

// "a, b, c" (quote = "'": "'a', 'b', 'c'"), or the first ten and "...".
std::string joined(const std::vector<std::string>& names, const std::string& quote = "") {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i == 10) return s + ", ...";
    s += (i ? ", " : "") + quote + names[i] + quote;
  }
  return s;
}

}  // namespace

Dataset load_image_folder(Runtime& rt, const std::string& dir, const ImageFolderOptions& options) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    throw std::invalid_argument("data folder '" + dir + "' does not exist");
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument("data folder '" + dir + "' is not a folder");

  std::vector<std::string> folders;
  std::vector<std::string> stray;  // files directly in dir
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (is_clutter(e.path())) continue;
    if (e.is_directory(ec)) folders.push_back(e.path().filename().string());
    else stray.push_back(e.path().filename().string());
  }
  std::sort(folders.begin(), folders.end());
  if (folders.empty())
    throw std::invalid_argument("data folder '" + dir +
                                "' has no class folders (expected one sub-folder per class, "
                                "named after the class)");

  // Which folder a file's class comes from: labelled_folders.h (the page's rule).
  const std::vector<std::string> classes = options.classes.empty() ? folders : options.classes;
  constexpr const char* kUnlabelled = "not inside a folder named after a class";
  Dataset data(classes, options.width, options.height, options.crop_to_head);
  for (const std::string& s : stray) data.add_skipped(s, kUnlabelled);

  std::vector<PendingFile> files;
  bool any_class_folder = false;
  for (const std::string& folder : folders) {
    const fs::path root = fs::path(dir) / folder;
    any_class_folder = any_class_folder || class_from_folder_name(folder, classes).has_value();
    std::vector<fs::path> paths;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (is_clutter(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) paths.push_back(it->path());
      else if (std::error_code ignored; !any_class_folder && it->is_directory(ignored))
        any_class_folder = class_from_folder_name(it->path().filename().string(), classes).has_value();
    }
    if (ec)
      throw std::invalid_argument("cannot list '" + root.string() + "': " + ec.message());
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      PendingFile f;
      f.full = p.string();
      f.path = folder + "/" + p.lexically_relative(root).generic_string();
      const std::optional<size_t> label = class_from_path(f.path, classes);
      if (!label) {
        data.add_skipped(f.path, kUnlabelled);
        continue;
      }
      f.label = static_cast<int>(*label);
      files.push_back(std::move(f));
    }
  }
  if (!any_class_folder)
    throw std::invalid_argument("data folder '" + dir + "' has no class folders: none of its folders (" +
                                joined(folders, "'") + ") or the folders in them is named after one of the classes (" +
                                joined(classes) + ")");

  // Read and decode in chunks so at most a chunk's encoded bytes are held at once.
  const size_t total = files.size();
  constexpr size_t kChunk = 256;
  for (size_t begin = 0; begin < total; begin += kChunk) {
    const size_t end = std::min(total, begin + kChunk);
    std::vector<PendingFile> chunk(std::make_move_iterator(files.begin() + begin),
                                   std::make_move_iterator(files.begin() + end));
    for (PendingFile& f : chunk) {
      try {
        f.bytes = read_file_bytes(f.full);
      } catch (const std::exception& e) {
        f.error = e.what();
      }
    }
    DecodeJob job{&chunk, options.width, options.height, options.crop_to_head, &options.decode};
    pthreadpool_parallelize_1d(rt.threadpool(), decode_one, &job, chunk.size(), 0);
    for (PendingFile& f : chunk) {
      if (!f.error.empty()) data.add_skipped(f.path, f.error);
      else data.add_decoded(f.path, f.label, content_hash(f.bytes), f.pixels);
    }
    if (options.progress) options.progress(end, total);
  }
  return data;
}

}  // namespace nl
