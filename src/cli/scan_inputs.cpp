#include "cli/scan_inputs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "formats/file_io.h"

namespace nl::cli {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxInputBytes = uint64_t{1} << 30;

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga"})
    if (ext == e) return true;
  return false;
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// Files under a directory, in path order (so series and results come out the same every run).
std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(it->path());
  }
  if (ec) throw std::invalid_argument(dir.string() + ": cannot list the directory: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

// Adds the results of one command-line path's scans, in the order ScanSet gives them.
void take(scans::ScanSet& set, Inputs& out) {
  scans::ScanResult r = set.finish();
  for (scans::Volume& v : r.volumes) out.items.push_back({"", std::move(v)});
  for (scans::Problem& p : r.problems) out.problems.push_back(std::move(p));
}

}  // namespace

Inputs collect_inputs(const std::vector<std::string>& paths) {
  Inputs out;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      scans::ScanSet set;
      std::vector<Input> images;
      for (const fs::path& file : files_under(path)) {
        if (has_image_extension(file)) {
          images.push_back({file.string(), std::nullopt});
          continue;
        }
        std::vector<uint8_t> bytes;
        try {
          bytes = read_file_bytes(file.string(), "file", kMaxInputBytes);
        } catch (const std::exception& e) {
          out.problems.push_back({file.string(), e.what()});
          continue;
        }
        if (scans::sniff(bytes, file.string()) == scans::Kind::other) {
          out.passed_over.push_back(file.string());
          continue;
        }
        set.add(file.string(), bytes);
      }
      for (Input& i : images) out.items.push_back(std::move(i));
      take(set, out);
      continue;
    }
    if (!fs::exists(path, ec)) throw std::invalid_argument(path + ": no such file or directory");
    // A single file: a scan when it looks like one, otherwise an image (whose decoder then
    // says what is wrong with it).
    std::vector<uint8_t> bytes;
    try {
      bytes = read_file_bytes(path, "file", kMaxInputBytes);
    } catch (const std::exception& e) {
      out.problems.push_back({path, e.what()});
      continue;
    }
    if (scans::sniff(bytes, path) == scans::Kind::other) {
      out.items.push_back({path, std::nullopt});
      continue;
    }
    scans::ScanSet set;
    set.add(path, bytes);
    take(set, out);
  }
  return out;
}

GreyImage slice_image(const scans::Volume& volume, size_t slice) {
  return grey_from_levels(volume.width(), volume.height(),
                          volume.slice_grey8(slice, volume.default_window()));
}

GreyImage decode_image_or_dicom(std::span<const uint8_t> bytes) {
  if (scans::sniff(bytes, "") != scans::Kind::dicom) return decode_grey(bytes);
  const scans::Volume v = scans::read_dicom(bytes, "");
  if (v.slices() != 1)
    throw std::invalid_argument("a multi-frame DICOM object (" + std::to_string(v.slices()) +
                                " frames) is not one training image");
  return slice_image(v, 0);
}

ImageFolderOptions folder_options_for(const Model& model) {
  ImageFolderOptions load;
  load.width = model.architecture().width;
  load.height = model.architecture().height;
  load.classes = model.classes();
  load.crop_to_head = model.preprocessing().crop_to_head;
  load.decode = decode_image_or_dicom;  // single-frame DICOM files beside the images
  return load;
}

}  // namespace nl::cli
