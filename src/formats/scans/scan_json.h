// ScanInfo and scan results as JSON: one description for `neurolens inspect --json`, the
// classify report and the page's scan module. Holds only ScanInfo's fields (no patient data).
#pragma once
#include <nlohmann/json.hpp>

#include "formats/scans/scan.h"

namespace nl::scans {

nlohmann::json to_json(const Window& w);
// A window from JSON {center, width, function?}; function defaults to "linear".
Window window_from_json(const nlohmann::json& j);
nlohmann::json to_json(const ScanInfo& info);
// {source, singleImage, width, height, slices, info, sliceFiles}
nlohmann::json describe(const Volume& v);

}  // namespace nl::scans
