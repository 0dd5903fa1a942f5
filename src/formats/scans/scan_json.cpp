#include "formats/scans/scan_json.h"

namespace nl::scans {

nlohmann::json to_json(const Window& w) {
  const char* function = w.function == WindowFunction::linear         ? "linear"
                         : w.function == WindowFunction::linear_exact ? "linear_exact"
                                                                      : "sigmoid";
  return {{"center", w.center}, {"width", w.width}, {"function", function}};
}

Window window_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("center") || !j.contains("width") || !j["center"].is_number() ||
      !j["width"].is_number())
    throw ScanError("a window needs numeric center and width");
  Window w{j["center"].get<double>(), j["width"].get<double>(), WindowFunction::linear};
  if (!(w.width > 0)) throw ScanError("window width must be positive, not " + std::to_string(w.width));
  const std::string f = j.value("function", std::string("linear"));
  if (f == "linear_exact") w.function = WindowFunction::linear_exact;
  else if (f == "sigmoid") w.function = WindowFunction::sigmoid;
  else if (f != "linear") throw ScanError("unknown window function \"" + f + "\" (linear, linear_exact, sigmoid)");
  return w;
}

nlohmann::json to_json(const ScanInfo& info) {
  nlohmann::json j = {
      {"format", info.format},
      {"transferSyntax", info.transfer_syntax},
      {"modality", info.modality},
      {"seriesDescription", info.series_description},
      {"photometric", info.photometric},
      {"dataType", info.data_type},
      {"width", info.width},
      {"height", info.height},
      {"slices", info.slices},
      {"spacing", {info.spacing[0], info.spacing[1], info.spacing[2]}},
      {"sliceThickness", info.slice_thickness},
      {"fileWindow", info.file_window ? to_json(*info.file_window) : nlohmann::json(nullptr)},
      {"autoWindow", to_json(info.auto_window)},
      {"minimum", info.minimum},
      {"maximum", info.maximum},
      {"inverted", info.inverted},
      {"orientation", info.orientation},
      {"notes", info.notes},
  };
  return j;
}

nlohmann::json describe(const Volume& v) {
  return {{"source", v.source},       {"singleImage", v.single_image}, {"width", v.width()},
          {"height", v.height()},     {"slices", v.slices()},          {"info", to_json(v.info)},
          {"sliceFiles", v.slice_files}};
}

}  // namespace nl::scans
