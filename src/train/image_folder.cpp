#include "train/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <stdexcept>

#include <pthreadpool.h>

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
};

void decode_one(void* context, size_t i) {
  auto* job = static_cast<DecodeJob*>(context);
  PendingFile& f = (*job->files)[i];
  if (!f.error.empty()) return;
  f.pixels.resize(job->width * job->height);
  f.error = decode_for_dataset(f.bytes, job->width, job->height, job->crop_to_head, f.pixels.data());
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
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
    if (is_hidden(e.path())) continue;
    if (e.is_directory(ec)) folders.push_back(e.path().filename().string());
    else stray.push_back(e.path().filename().string());
  }
  std::sort(folders.begin(), folders.end());
  if (folders.empty())
    throw std::invalid_argument("data folder '" + dir +
                                "' has no class folders (expected one sub-folder per class, "
                                "named after the class)");

  std::vector<std::string> classes = options.classes.empty() ? folders : options.classes;
  std::vector<int> label_of_folder;
  for (const std::string& folder : folders) {
    auto it = std::find(classes.begin(), classes.end(), folder);
    if (it == classes.end()) {
      std::string known;
      for (const std::string& c : classes) known += (known.empty() ? "" : ", ") + c;
      throw std::invalid_argument("data folder '" + dir + "' has a folder '" + folder +
                                  "' that is not one of the model's classes (" + known + ")");
    }
    label_of_folder.push_back(static_cast<int>(it - classes.begin()));
  }

  Dataset data(classes, options.width, options.height, options.crop_to_head);
  for (const std::string& s : stray) data.add_skipped(s, "not inside a class folder");

  std::vector<PendingFile> files;
  for (size_t k = 0; k < folders.size(); ++k) {
    const fs::path root = fs::path(dir) / folders[k];
    std::vector<fs::path> paths;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (is_hidden(it->path())) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec)) paths.push_back(it->path());
    }
    if (ec)
      throw std::invalid_argument("cannot list '" + root.string() + "': " + ec.message());
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      PendingFile f;
      f.full = p.string();
      f.path = folders[k] + "/" + p.lexically_relative(root).generic_string();
      f.label = label_of_folder[k];
      files.push_back(std::move(f));
    }
  }

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
    DecodeJob job{&chunk, options.width, options.height, options.crop_to_head};
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
