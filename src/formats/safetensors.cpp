#include "formats/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>

namespace nl {

namespace {

// std::bit_cast, which Emscripten 3.1.6's libc++ lacks.
float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint32_t bits_of_float(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

[[noreturn]] void fail(const std::string& message) {
  throw std::invalid_argument("safetensors: " + message);
}

[[noreturn]] void fail_tensor(const std::string& name, const std::string& message) {
  fail("tensor '" + name + "': " + message);
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void write_u64_le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Shape entries and offsets must be JSON non-negative integers; nlohmann stores those as
// number_unsigned (negative ones as number_integer, too-large or fractional ones as float).
bool as_u64(const nlohmann::json& j, uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<uint64_t>();
  return true;
}

// The dtypes the format defines, so that a file with another one is named precisely.
bool is_known_dtype(const std::string& d) {
  static const char* const kKnown[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16",
                                       "U16",  "F16", "BF16", "I32",    "U32",     "F32",
                                       "F64",  "I64", "U64"};
  return std::any_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return d == k; });
}

struct PendingEntry {
  SafetensorsEntry entry;
  uint64_t begin = 0, end = 0;
};

PendingEntry parse_entry(const std::string& name, const nlohmann::json& info, uint64_t data_size) {
  if (name.empty()) fail("a tensor has an empty name");
  if (!info.is_object()) fail_tensor(name, "header entry is not a JSON object");
  for (const auto& [key, value] : info.items()) {
    (void)value;
    if (key != "dtype" && key != "shape" && key != "data_offsets")
      fail_tensor(name, "unknown header field '" + key + "'");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!info.contains(key)) fail_tensor(name, std::string("missing '") + key + "'");

  const auto& dtype = info["dtype"];
  if (!dtype.is_string()) fail_tensor(name, "dtype is not a string");
  const std::string d = dtype.get<std::string>();
  if (d != "F32" && d != "F16") {
    if (is_known_dtype(d)) fail_tensor(name, "dtype " + d + " is not supported (only F32, F16)");
    fail_tensor(name, "unknown dtype '" + d + "' (only F32 and F16 are supported)");
  }

  PendingEntry p;
  p.entry.name = name;
  p.entry.dtype = d == "F16" ? Dtype::f16 : Dtype::f32;
  const uint64_t element_bytes = dtype_bytes(p.entry.dtype);
  const auto& shape = info["shape"];
  if (!shape.is_array()) fail_tensor(name, "shape is not an array");
  if (shape.size() > kMaxSafetensorsRank)
    fail_tensor(name, "shape has rank " + std::to_string(shape.size()) + ", more than " +
                          std::to_string(kMaxSafetensorsRank));
  // Element count with overflow checks; its byte count must fit in the data section.
  uint64_t count = 1;
  bool overflow = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t dim = 0;
    if (!as_u64(shape[i], dim))
      fail_tensor(name, "shape[" + std::to_string(i) + "] is not a non-negative integer");
    if (dim > kMaxSafetensorsDim)
      fail_tensor(name, "shape[" + std::to_string(i) + "] is " + std::to_string(dim) + ", more than " +
                            std::to_string(kMaxSafetensorsDim));
    p.entry.shape.push_back(static_cast<size_t>(dim));
    if (dim != 0 && count > UINT64_MAX / dim) overflow = true;
    else count *= dim;
  }
  if (std::find(p.entry.shape.begin(), p.entry.shape.end(), size_t{0}) != p.entry.shape.end())
    overflow = false, count = 0;  // a zero dimension makes the product 0 whatever the others
  if (overflow || count > UINT64_MAX / element_bytes)
    fail_tensor(name, "shape " + to_string(p.entry.shape) + " has too many elements");
  const uint64_t byte_count = count * element_bytes;

  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    fail_tensor(name, "data_offsets is not an array of two integers");
  if (!as_u64(offsets[0], p.begin) || !as_u64(offsets[1], p.end))
    fail_tensor(name, "data_offsets are not non-negative integers");
  if (p.begin > p.end)
    fail_tensor(name, "data_offsets [" + std::to_string(p.begin) + "," + std::to_string(p.end) +
                          "] end before they begin");
  if (p.end > data_size)
    fail_tensor(name, "data_offsets [" + std::to_string(p.begin) + "," + std::to_string(p.end) +
                          "] exceed the data section (" + std::to_string(data_size) + " bytes)");
  if (p.end - p.begin != byte_count)
    fail_tensor(name, "data_offsets span " + std::to_string(p.end - p.begin) +
                          " bytes but " + d + " shape " + to_string(p.entry.shape) + " needs " +
                          std::to_string(byte_count));
  return p;
}

}  // namespace

nlohmann::json parse_untrusted_json(std::string_view text, int max_depth, const std::string& what) {
  // The callback runs before each container is allocated, so refusing there bounds depth.
  std::vector<std::set<std::string>> keys_per_open_object;
  auto guard = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if ((event == E::object_start || event == E::array_start) && depth >= max_depth)
      throw std::invalid_argument(what + ": JSON nests deeper than " + std::to_string(max_depth) +
                                  " levels");
    if (event == E::object_start) keys_per_open_object.emplace_back();
    if (event == E::object_end && !keys_per_open_object.empty()) keys_per_open_object.pop_back();
    if (event == E::key && !keys_per_open_object.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys_per_open_object.back().insert(key).second)
        throw std::invalid_argument(what + ": duplicate JSON key '" + key + "'");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), guard);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(what + ": not well-formed JSON (" + e.what() + ")");
  }
}

const char* dtype_name(Dtype d) { return d == Dtype::f16 ? "F16" : "F32"; }
size_t dtype_bytes(Dtype d) { return d == Dtype::f16 ? 2 : 4; }

float half_to_float(uint16_t h) {
  // Exponent and mantissa move into place with one shift and the exponent is rebiased (15 ->
  // 127) with one add; infinities and NaNs get the rest of the way to an all-ones exponent, and
  // subnormals (and zero) come out exact by subtracting 2^-14 as floats. No loop and no branch
  // on the data, so the loader's conversion loop (copy_to) vectorises.
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t shifted = uint32_t{h & 0x7FFFu} << 13;
  const uint32_t exponent = shifted & 0x0F800000u;
  uint32_t bits = shifted + (112u << 23);
  if (exponent == 0x0F800000u) bits += 112u << 23;
  float f = float_from_bits(bits);
  if (exponent == 0) f = float_from_bits(bits + (1u << 23)) - float_from_bits(113u << 23);
  return float_from_bits(bits_of_float(f) | sign);
}

uint16_t float_to_half(float f) {
  const uint32_t bits = bits_of_float(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((magnitude >> 13) & 0x3FFu);  // NaN
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // rounds beyond 65504: infinity
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal, units of 2^-24, rounded to even.
    if (magnitude < 0x33000000u) return sign;  // below half the smallest subnormal: zero
    const uint32_t exponent = magnitude >> 23;
    const uint32_t mantissa = (magnitude & 0x7FFFFFu) | 0x800000u;
    // f = mantissa * 2^(exponent - 150); in units of 2^-24 that is mantissa >> (126 - exponent).
    const uint32_t shift = 126 - exponent;
    const uint32_t value = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    const uint32_t rounded = value + (rest > halfway || (rest == halfway && (value & 1u)));
    return sign | static_cast<uint16_t>(rounded);
  }
  // Normal: rebias the exponent and round the 23-bit mantissa to 10 bits, to nearest even
  // (a carry out of the mantissa correctly bumps the exponent).
  const uint32_t rebased = magnitude - (112u << 23);
  const uint32_t rounded = rebased + 0xFFFu + ((rebased >> 13) & 1u);
  return sign | static_cast<uint16_t>(rounded >> 13);
}

void SafetensorsEntry::copy_to(std::span<float> out) const {
  const size_t element_bytes = dtype_bytes(dtype);
  if (out.size() * element_bytes != bytes.size())
    throw std::invalid_argument("safetensors: tensor '" + name + "' holds " +
                                std::to_string(bytes.size() / element_bytes) + " values, destination " +
                                std::to_string(out.size()));
  const uint8_t* p = bytes.data();
  if (dtype == Dtype::f16) {
    for (size_t i = 0; i < out.size(); ++i, p += 2)
      out[i] = half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8));
    return;
  }
  for (size_t i = 0; i < out.size(); ++i, p += 4) {
    const uint32_t bits = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
                          uint32_t{p[3]} << 24;
    std::memcpy(&out[i], &bits, 4);
  }
}

Tensor SafetensorsEntry::to_tensor() const {
  Tensor t(shape);
  copy_to(t.values());
  return t;
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const SafetensorsEntry& e, std::string_view n) { return e.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8)
    fail("file is " + std::to_string(bytes.size()) +
         " bytes, too short for the 8-byte header length");
  const uint64_t header_size = read_u64_le(bytes.data());
  const uint64_t available = bytes.size() - 8;
  if (header_size > available)
    fail("header length " + std::to_string(header_size) + " exceeds the " +
         std::to_string(available) + " bytes that follow it");
  if (header_size > kMaxSafetensorsHeaderBytes)
    fail("header length " + std::to_string(header_size) + " exceeds the limit of " +
         std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  const std::string_view header_text(reinterpret_cast<const char*>(bytes.data() + 8),
                                     static_cast<size_t>(header_size));
  // Depth: header object > tensor entry / __metadata__ > shape / data_offsets.
  const nlohmann::json header = parse_untrusted_json(header_text, 3, "safetensors header");
  if (!header.is_object()) fail("header is not a JSON object");

  const uint64_t data_size = available - header_size;
  const std::span<const uint8_t> data = bytes.subspan(8 + static_cast<size_t>(header_size));
  SafetensorsFile file;
  std::vector<PendingEntry> pending;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail("__metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail("__metadata__ '" + key + "' is not a string");
        file.metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    pending.push_back(parse_entry(name, info, data_size));
  }

  // The tensors must tile the data section exactly: no overlap, no gap, nothing left over.
  std::vector<const PendingEntry*> by_offset;
  for (const auto& p : pending) by_offset.push_back(&p);
  std::sort(by_offset.begin(), by_offset.end(), [](const PendingEntry* a, const PendingEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const PendingEntry* previous = nullptr;
  for (const PendingEntry* p : by_offset) {
    if (p->begin < covered)
      fail_tensor(p->entry.name, "data_offsets [" + std::to_string(p->begin) + "," +
                                     std::to_string(p->end) + "] overlap tensor '" +
                                     previous->entry.name + "'");
    if (p->begin > covered)
      fail_tensor(p->entry.name, "data_offsets begin at " + std::to_string(p->begin) +
                                     ", leaving bytes " + std::to_string(covered) + ".." +
                                     std::to_string(p->begin) + " of the data section unused");
    covered = p->end;
    previous = p;
  }
  if (covered != data_size)
    fail("data section is " + std::to_string(data_size) + " bytes but the tensors cover " +
         std::to_string(covered));

  for (auto& p : pending) {
    p.entry.bytes = data.subspan(static_cast<size_t>(p.begin), static_cast<size_t>(p.end - p.begin));
    file.tensors.push_back(std::move(p.entry));
  }
  // nlohmann's object is a std::map, so items() already came in name order; keep the
  // sort anyway so find() does not depend on that detail.
  std::sort(file.tensors.begin(), file.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
  return file;
}

std::vector<uint8_t> write_safetensors(std::vector<NamedTensor> tensors,
                                       const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const NamedTensor& a, const NamedTensor& b) { return a.name < b.name; });
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.name.empty()) throw std::invalid_argument("safetensors: a tensor has an empty name");
    if (t.name == "__metadata__")
      throw std::invalid_argument("safetensors: '__metadata__' is reserved, not a tensor name");
    if (i > 0 && tensors[i - 1].name == t.name)
      throw std::invalid_argument("safetensors: duplicate tensor name '" + t.name + "'");
    if (t.tensor == nullptr)
      throw std::invalid_argument("safetensors: tensor '" + t.name + "' is null");
    const uint64_t byte_count = uint64_t{t.tensor->size()} * dtype_bytes(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.tensor->shape()},
                      {"data_offsets", {offset, offset + byte_count}}};
    offset += byte_count;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("safetensors: header text is not valid UTF-8 (") +
                                e.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out(8 + text.size() + static_cast<size_t>(offset));
  write_u64_le(out.data(), text.size());
  std::memcpy(out.data() + 8, text.data(), text.size());
  uint8_t* p = out.data() + 8 + text.size();
  for (const auto& t : tensors) {
    if (t.dtype == Dtype::f16) {
      const std::span<const float> values = t.tensor->values();
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = float_to_half(values[i]);
        if ((h & 0x7FFFu) == 0x7C00u && std::isfinite(values[i]))
          throw std::invalid_argument("safetensors: tensor '" + t.name + "': value " +
                                      std::to_string(values[i]) + " at index " + std::to_string(i) +
                                      " does not fit F16 (largest 65504)");
        *p++ = static_cast<uint8_t>(h);
        *p++ = static_cast<uint8_t>(h >> 8);
      }
      continue;
    }
    for (float v : t.tensor->values()) {
      const uint32_t bits = bits_of_float(v);
      for (int b = 0; b < 4; ++b) *p++ = static_cast<uint8_t>(bits >> (8 * b));
    }
  }
  return out;
}

}  // namespace nl
