// Safetensors: the file format of Hugging Face's `safetensors`, general enough for any
// reader of that format to open our files and for us to open theirs (F32 and F16 tensors;
// F16 is read into floats exactly and written rounded to nearest even).
//
//   [8 bytes: header length N, little-endian u64][N bytes: JSON header][data]
//
// The header maps tensor names to {"dtype","shape","data_offsets":[begin,end]} (offsets
// relative to the start of the data section) plus an optional "__metadata__" object whose
// values are strings. The reader trusts nothing: every rule it checks is named in its error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace nl {

// Limits of the reader. The format's reference implementation caps the header at 100 MB;
// ours holds a model description, so a smaller cap still leaves ample room.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 16u << 20;
inline constexpr size_t kMaxSafetensorsRank = 8;
// Each dimension fits in 32 bits, so a file means the same to 64-bit and wasm32 builds.
inline constexpr uint64_t kMaxSafetensorsDim = UINT32_MAX;

enum class Dtype { f32, f16 };
const char* dtype_name(Dtype d);  // "F32", "F16"
size_t dtype_bytes(Dtype d);      // 4, 2

// IEEE binary16 conversions. half_to_float is exact; float_to_half rounds to nearest even,
// gives +-inf beyond the largest half (65504) and keeps NaN a NaN.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// One tensor of a parsed file: a view into the caller's bytes (little-endian, possibly
// unaligned), valid as long as those bytes are.
struct SafetensorsEntry {
  std::string name;
  Shape shape;
  Dtype dtype = Dtype::f32;
  std::span<const uint8_t> bytes;  // numel(shape) * dtype_bytes(dtype) bytes

  // Decodes into out (exactly numel(shape) floats, else std::invalid_argument); bit-exact,
  // whatever the host's endianness.
  void copy_to(std::span<float> out) const;
  Tensor to_tensor() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsEntry> tensors;  // sorted by name

  // nullptr when absent.
  const SafetensorsEntry* find(std::string_view name) const;
};

// Validates and parses `bytes` (which must outlive the result). Throws std::invalid_argument
// naming the tensor (if any) and the rule broken, e.g.
//   "safetensors: tensor 'conv1.weight': dtype BF16 is not supported (only F32, F16)".
SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes);

struct NamedTensor {
  std::string name;
  const Tensor* tensor;
  Dtype dtype = Dtype::f32;  // how it is stored
};

// Serializes tensors, laid out in name order, with the header padded with spaces so that
// the data section starts at a multiple of 8 bytes. Throws std::invalid_argument for an
// empty or duplicate name, the reserved name "__metadata__", non-UTF-8 text, or a finite
// value too large for F16 (it would become infinite).
std::vector<uint8_t> write_safetensors(std::vector<NamedTensor> tensors,
                                       const std::map<std::string, std::string>& metadata);

// Parses JSON text that came from an untrusted file: nesting deeper than max_depth and
// duplicate object keys are refused (nlohmann would keep the last one silently), which
// also bounds the parser's memory by a constant factor of the text's length.
// Throws std::invalid_argument("<what>: ...").
nlohmann::json parse_untrusted_json(std::string_view text, int max_depth, const std::string& what);

}  // namespace nl
