// The JavaScript API of the scan module (neurolens-scans.js/.wasm): DICOM and NIfTI files to
// 8-bit slices. The page fetches it only when a scan arrives; it holds no engine.
//
//   const S = await createNeuroLensScans();
//   const reader = new S.ScanReader();
//   for (const f of files) reader.add(f.name, bytes);   // -> "dicom" | "dicomdir" | "nifti" | "other"
//   const r = reader.finish();   // {volumes: [{source, singleImage, width, height, slices, info,
//                                //   sliceFiles}], problems: [{file, message}], skipped: [names]}
//   const grey = reader.slice(0, z);                      // Uint8Array width*height, file/auto window
//   const grey2 = reader.slice(0, z, {center, width, function?});  // a window of the user's
//   reader.delete();
// Module function: sniff(name, Uint8Array) -> the kind add() would see (the first 1 kB is enough).
//
// `info` is scan_json.h's description: format, transfer syntax, modality, series description,
// dimensions, spacing, windows, notes; never patient data. Errors are thrown JS Errors with the
// C++ message; add() never throws for a bad file (it becomes a problem in finish()).
#include <nlohmann/json.hpp>

#include "formats/scans/scan.h"
#include "formats/scans/scan_json.h"
#include "wasm/boundary.h"

namespace {

using emscripten::val;
using namespace nl::wasm;

val json_to_js(const nlohmann::json& j) {
  return val::global("JSON").call<val>("parse", j.dump());
}

class ScanReader {
 public:
  std::string add(std::string name, val bytes) {
    return guarded([&] {
      const std::vector<uint8_t> data = bytes_from_js(bytes, "file bytes");
      return std::string(nl::scans::kind_name(set_.add(std::move(name), data)));
    });
  }

  val finish() {
    return guarded([&] {
      result_ = set_.finish();
      nlohmann::json out = {{"volumes", nlohmann::json::array()},
                            {"problems", nlohmann::json::array()},
                            {"skipped", result_.skipped}};
      for (const nl::scans::Volume& v : result_.volumes) out["volumes"].push_back(nl::scans::describe(v));
      for (const nl::scans::Problem& p : result_.problems)
        out["problems"].push_back({{"file", p.file}, {"message", p.message}});
      return json_to_js(out);
    });
  }

  val slice(size_t volume, size_t z) {
    return guarded([&] {
      const nl::scans::Volume& v = at(volume);
      return byte_array_copy(v.slice_grey8(z, v.default_window()));
    });
  }

  val sliceWindowed(size_t volume, size_t z, val window) {
    return guarded([&] {
      const nl::scans::Volume& v = at(volume);
      const std::string text = val::global("JSON").call<std::string>("stringify", window);
      const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      return byte_array_copy(v.slice_grey8(z, nl::scans::window_from_json(j)));
    });
  }

 private:
  const nl::scans::Volume& at(size_t index) const {
    if (index >= result_.volumes.size())
      throw std::invalid_argument("volume " + std::to_string(index) + " does not exist (" +
                                  std::to_string(result_.volumes.size()) + " read)");
    return result_.volumes[index];
  }

  nl::scans::ScanSet set_;
  nl::scans::ScanResult result_;
};

std::string sniff(std::string name, val bytes) {
  return guarded([&] {
    const std::vector<uint8_t> data = bytes_from_js(bytes, "file bytes");
    return std::string(nl::scans::kind_name(nl::scans::sniff(data, name)));
  });
}

}  // namespace

EMSCRIPTEN_BINDINGS(neurolens_scans) {
  emscripten::class_<ScanReader>("ScanReader")
      .constructor<>()
      .function("add", &ScanReader::add)
      .function("finish", &ScanReader::finish)
      .function("slice", &ScanReader::slice)
      .function("slice", &ScanReader::sliceWindowed);
  emscripten::function("sniff", &sniff);
  nl_install_stack_guards("ScanReader");
}
