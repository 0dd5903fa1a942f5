// libFuzzer target: model loading on arbitrary bytes. Bad input must end in
// std::invalid_argument (as load_model documents); a crash, sanitizer report, another
// exception type or an out-of-memory is a finding. A file that loads must survive a
// save -> load round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "formats/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    nl::Model model = nl::load_model({data, size});
    const std::vector<uint8_t> saved = nl::serialize_model(model);
    const nl::Model again = nl::load_model(saved);
    if (nl::serialize_model(again) != saved) std::abort();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
