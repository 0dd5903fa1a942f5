// ONNX export (src/formats/onnx, native only) of what unit tests can see without onnxruntime:
// the graph passes ONNX's checker and shape inference (model_to_onnx runs both), and a flip
// layer becomes a Slice with step -1 on the width axis. tests/e2e/onnx-export.test.mjs runs
// exported models in onnxruntime.
#ifndef __EMSCRIPTEN__
#include <doctest/doctest.h>

#include <string>

#include "core/model.h"
#include "features/ensemble.h"
#include "features/network_catalogue.h"
#include "formats/onnx/onnx_export.h"

TEST_CASE("ONNX export: a flip-averaged model, its flip layer a Slice with step -1, passes ONNX's checker") {
  nl::Model a(nl::make_architecture("tiny", 20, 4), nl::demo_classes());
  a.init_params(3);
  const std::string plain = nl::model_to_onnx(a);
  CHECK(plain.find("Slice") == std::string::npos);
  for (const bool fold : {false, true}) {
    CAPTURE(fold);
    nl::Model tta = fold ? nl::flip_averaged(a).folded() : nl::flip_averaged(a);
    std::string bytes;
    REQUIRE_NOTHROW(bytes = nl::model_to_onnx(tta));
    CHECK(bytes.find("Slice") != std::string::npos);
    for (const char* name : {"flip_m2.starts", "flip_m2.ends", "flip_m2.axes", "flip_m2.steps"})
      CHECK_MESSAGE(bytes.find(name) != std::string::npos, name);
    CHECK(bytes.size() > 2 * plain.size() - 4096);  // both branches' weights
  }
}
#endif
