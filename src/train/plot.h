// The training curves as a self-contained SVG: loss (left) and accuracy (right) per epoch,
// training and validation, with axes, ticks and a legend. Plain text, no filesystem.
#pragma once
#include <string>
#include <vector>

#include "train/options.h"

namespace nl {

std::string training_curves_svg(const std::vector<EpochRecord>& history, const std::string& title);

}  // namespace nl
