// The layer types the runtime knows, in the order error messages list them.
#pragma once
#include <string>
#include <vector>

namespace nl {

const std::vector<std::string>& layer_types();
bool is_layer_type(const std::string& type);

}  // namespace nl
