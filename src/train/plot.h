// The training curves as a self-contained SVG: loss (left) and accuracy (right) per epoch,
// training and validation, with axes, ticks and a legend. Plain text, no filesystem.
#pragma once
#include <string>
#include <vector>

#include "train/calibration.h"
#include "train/options.h"

namespace nl {

std::string training_curves_svg(const std::vector<EpochRecord>& history, const std::string& title);

// The reliability diagram: per confidence bin, the accuracy of its images (bars) against the
// diagonal of perfect calibration, for each set of figures given (e.g. before and after
// temperature scaling, side by side), with each panel's ECE and NLL. Empty bins are left out.
std::string reliability_diagram_svg(const std::vector<CalibrationFigures>& panels, const std::string& title);

}  // namespace nl
