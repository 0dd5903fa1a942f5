// Safetensors reader/writer: bit-exact round trip, the layout other readers expect, and
// every malformed-file rule rejected with a message naming it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "formats/safetensors.h"

namespace {

using nl::Tensor;

std::vector<uint8_t> file_from(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());  // one allocation (GCC 12 misjudges the
                                                 // growing insert as -Warray-bounds)
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}

// Parsing must fail with std::invalid_argument whose message contains `needle`.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& needle) {
  CAPTURE(needle);
  try {
    nl::parse_safetensors(bytes);
    FAIL("accepted a malformed file");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find(needle) != std::string::npos);
  }
}

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

}  // namespace

TEST_CASE("safetensors: round trip is bit-exact, sorted, aligned and readable by others") {
  Tensor a({3, 5, 7});
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.37f - 11.0f;
  Tensor special({6});
  special[0] = -0.0f;
  special[1] = std::numeric_limits<float>::infinity();
  special[2] = from_bits(0x7fc12345u);  // NaN with a payload
  special[3] = from_bits(0x00000001u);  // smallest denormal
  special[4] = std::numeric_limits<float>::max();
  special[5] = from_bits(0x3f800001u);
  Tensor scalar(nl::Shape{}, 2.5f);
  Tensor empty({0, 4});

  const std::map<std::string, std::string> meta{{"format", "x/1"}, {"note", "caf\xc3\xa9 \"quoted\"\n"}};
  // Given out of order: the writer sorts by name.
  const auto bytes = nl::write_safetensors(
      {{"z.last", &a}, {"a.special", &special}, {"m.scalar", &scalar}, {"e.empty", &empty}}, meta);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  CHECK((8 + header_len) % 8 == 0);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_len));
  CHECK(header.front() == '{');
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  // Data laid out in name order: a.special first, z.last last.
  CHECK(header.find("\"a.special\":{\"data_offsets\":[0,24]") != std::string::npos);
  CHECK(bytes.size() == 8 + header_len + (a.size() + special.size() + 1) * 4);

  const nl::SafetensorsFile file = nl::parse_safetensors(bytes);
  CHECK(file.metadata == meta);
  REQUIRE(file.tensors.size() == 4);
  CHECK(file.tensors[0].name == "a.special");
  CHECK(file.tensors[3].name == "z.last");
  CHECK(same_bits(file.find("z.last")->to_tensor(), a));
  CHECK(same_bits(file.find("a.special")->to_tensor(), special));
  CHECK(same_bits(file.find("m.scalar")->to_tensor(), scalar));
  CHECK(file.find("m.scalar")->shape.empty());
  CHECK(file.find("e.empty")->to_tensor().shape() == nl::Shape{0, 4});
  CHECK(file.find("nothing") == nullptr);

  // Writing what was read gives the same bytes.
  Tensor a2 = file.find("z.last")->to_tensor(), s2 = file.find("a.special")->to_tensor();
  Tensor c2 = file.find("m.scalar")->to_tensor(), e2 = file.find("e.empty")->to_tensor();
  CHECK(nl::write_safetensors({{"a.special", &s2}, {"e.empty", &e2}, {"m.scalar", &c2}, {"z.last", &a2}},
                              file.metadata) == bytes);
}

TEST_CASE("safetensors: a file from another writer (unpadded header, no metadata) parses") {
  // 1.0f and -2.5f little-endian, right after a header whose length is not a multiple of 8.
  const std::string header = "{" + entry("w", "F32", "[2]", "[0,8]") + "}";
  const auto bytes = file_from(header, {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc0});
  const auto file = nl::parse_safetensors(bytes);
  CHECK(file.metadata.empty());
  const Tensor w = file.find("w")->to_tensor();
  CHECK(w[0] == 1.0f);
  CHECK(w[1] == -2.5f);
  // No metadata written when there is none.
  const auto written = nl::write_safetensors({{"w", &w}}, {});
  CHECK(std::string(written.begin() + 8, written.end()).find("__metadata__") == std::string::npos);
}

namespace {
// The half nearest to x (ties to the even one), found by comparing neighbours in double.
uint16_t nearest_half(float x) {
  uint16_t best = 0;
  double best_error = INFINITY;
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  for (uint32_t m = 0; m < 0x7C00; ++m) {  // every finite magnitude
    const double error = std::fabs(static_cast<double>(nl::half_to_float(static_cast<uint16_t>(sign | m))) - x);
    if (error < best_error || (error == best_error && (m & 1) == 0)) best = static_cast<uint16_t>(sign | m), best_error = error;
  }
  return best;
}
}  // namespace

TEST_CASE("F16: exact widening, round-to-nearest-even narrowing, specials") {
  // Known values.
  CHECK(nl::half_to_float(0x3C00) == 1.0f);
  CHECK(nl::half_to_float(0xC000) == -2.0f);
  CHECK(nl::half_to_float(0x7BFF) == 65504.0f);
  CHECK(nl::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(nl::half_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(nl::half_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(std::isinf(nl::half_to_float(0xFC00)));
  CHECK(std::isnan(nl::half_to_float(0x7E01)));
  CHECK(std::signbit(nl::half_to_float(0x8000)));
  // Every half survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) continue;  // NaNs: checked below
    if (nl::float_to_half(nl::half_to_float(static_cast<uint16_t>(h))) != h) {
      FAIL_CHECK("half 0x" << std::hex << h << " changes in a round trip");
      break;
    }
  }
  // Ties go to even, in the normal and subnormal ranges; overflow is infinite.
  CHECK(nl::float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie, down to even
  CHECK(nl::float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie, up to even
  CHECK(nl::float_to_half(std::ldexp(1.0f, -25)) == 0x0000);
  CHECK(nl::float_to_half(3 * std::ldexp(1.0f, -25)) == 0x0002);
  CHECK(nl::float_to_half(65519.0f) == 0x7BFF);
  CHECK(nl::float_to_half(65520.0f) == 0x7C00);
  CHECK(nl::float_to_half(-1e30f) == 0xFC00);
  CHECK(std::isnan(nl::half_to_float(nl::float_to_half(NAN))));
  // Against the brute-force nearest half, on odd values across the whole range.
  uint32_t s = 12345;
  for (int i = 0; i < 300; ++i) {
    s = s * 1664525u + 1013904223u;
    const float x = std::ldexp(static_cast<float>(s >> 8) / float(1 << 24) - 0.5f, static_cast<int>(s % 44) - 28);
    CAPTURE(x);
    CHECK(nl::float_to_half(x) == nearest_half(x));
  }
}

TEST_CASE("safetensors: F16 tensors are written rounded and read back as floats") {
  Tensor w({5});
  w[0] = 1.0f;
  w[1] = -0.1f;
  w[2] = 3.14159f;
  w[3] = 1e-6f;
  w[4] = 60000.0f;
  Tensor b({2}, 0.25f);
  const auto bytes = nl::write_safetensors({{"w", &w, nl::Dtype::f16}, {"b", &b}}, {});
  const nl::SafetensorsFile file = nl::parse_safetensors(bytes);
  REQUIRE(file.find("w") != nullptr);
  CHECK(file.find("w")->dtype == nl::Dtype::f16);
  CHECK(file.find("w")->bytes.size() == 10);
  CHECK(file.find("b")->dtype == nl::Dtype::f32);
  const Tensor back = file.find("w")->to_tensor();
  for (size_t i = 0; i < w.size(); ++i) {
    CHECK(back[i] == nl::half_to_float(nl::float_to_half(w[i])));
    CHECK(std::fabs(back[i] - w[i]) <= std::fabs(w[i]) * std::ldexp(1.0f, -11) + std::ldexp(1.0f, -25));
  }
  // Writing what was read, as F16 again, gives the same bytes.
  CHECK(nl::write_safetensors({{"w", &back, nl::Dtype::f16}, {"b", &b}}, {}) == bytes);
  Tensor big({3}, 1.0f);
  big[2] = 70000.0f;
  CHECK_THROWS_WITH_AS(nl::write_safetensors({{"big", &big, nl::Dtype::f16}}, {}),
                       doctest::Contains("tensor 'big': value 70000.000000 at index 2 does not fit F16"),
                       std::invalid_argument);
}

TEST_CASE("safetensors: writer refuses bad names") {
  Tensor t({2});
  CHECK_THROWS_WITH_AS(nl::write_safetensors({{"", &t}}, {}), doctest::Contains("empty name"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::write_safetensors({{"a", &t}, {"a", &t}}, {}),
                       doctest::Contains("duplicate tensor name 'a'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::write_safetensors({{"__metadata__", &t}}, {}),
                       doctest::Contains("reserved"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::write_safetensors({{"a", &t}}, {{"k", "\xff\xfe"}}),
                       doctest::Contains("UTF-8"), std::invalid_argument);
}

TEST_CASE("safetensors: malformed framing is rejected") {
  expect_rejected({}, "too short");
  expect_rejected({1, 0, 0}, "too short");
  // Header length larger than what follows.
  expect_rejected({200, 0, 0, 0, 0, 0, 0, 0, '{', '}'}, "header length 200 exceeds the 2 bytes");
  expect_rejected({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'}, "exceeds");
  // Header length within the file but beyond the sanity cap.
  {
    std::string huge = "{}";
    huge.append(nl::kMaxSafetensorsHeaderBytes, ' ');
    expect_rejected(file_from(huge), "exceeds the limit");
  }
  expect_rejected(file_from(""), "not well-formed JSON");
  expect_rejected(file_from("{\"a\":"), "not well-formed JSON");
  expect_rejected(file_from("{\"a\":1,}"), "not well-formed JSON");
  expect_rejected(file_from("{\"k\":\"\xff\"}"), "not well-formed JSON");  // invalid UTF-8
  expect_rejected(file_from("[1,2]"), "header is not a JSON object");
  expect_rejected(file_from("{\"a\":{\"b\":{\"c\":{}}}}"), "nests deeper");
  expect_rejected(file_from(std::string(100000, '[')), "nests deeper");
  expect_rejected(file_from("{\"a\":{},\"a\":{}}"), "duplicate JSON key 'a'");
  expect_rejected(file_from("{\"__metadata__\":[]}"), "__metadata__ is not a JSON object");
  expect_rejected(file_from("{\"__metadata__\":{\"format\":1}}"), "__metadata__ 'format' is not a string");
  // Data after the (empty) tensor list.
  expect_rejected(file_from("{}", zeros(4)), "data section is 4 bytes but the tensors cover 0");
}

TEST_CASE("safetensors: malformed tensor entries are rejected, naming the tensor") {
  auto one = [](const std::string& e, size_t data_bytes) { return file_from("{" + e + "}", zeros(data_bytes)); };
  expect_rejected(one(entry("w", "BF16", "[2]", "[0,4]"), 4), "tensor 'w': dtype BF16 is not supported (only F32, F16)");
  expect_rejected(one(entry("w", "F16", "[3]", "[0,4]"), 4), "tensor 'w': data_offsets span 4 bytes but F16 shape [3] needs 6");
  expect_rejected(one(entry("w", "F64", "[2]", "[0,16]"), 16), "dtype F64 is not supported");
  expect_rejected(one(entry("w", "Q4", "[2]", "[0,8]"), 8), "tensor 'w': unknown dtype 'Q4'");
  expect_rejected(one("\"w\":{\"dtype\":3,\"shape\":[2],\"data_offsets\":[0,8]}", 8), "dtype is not a string");
  expect_rejected(one("\"w\":[1]", 8), "tensor 'w': header entry is not a JSON object");
  expect_rejected(one("\"w\":{\"dtype\":\"F32\",\"shape\":[2]}", 8), "tensor 'w': missing 'data_offsets'");
  expect_rejected(one("\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}", 8),
                  "unknown header field 'x'");
  expect_rejected(one(entry("", "F32", "[2]", "[0,8]"), 8), "empty name");
  expect_rejected(one(entry("w", "F32", "2", "[0,8]"), 8), "tensor 'w': shape is not an array");
  expect_rejected(one(entry("w", "F32", "[-2]", "[0,8]"), 8), "shape[0] is not a non-negative integer");
  expect_rejected(one(entry("w", "F32", "[2.0]", "[0,8]"), 8), "shape[0] is not a non-negative integer");
  expect_rejected(one(entry("w", "F32", "[1,1,1,1,1,1,1,1,2]", "[0,8]"), 8), "rank 9, more than 8");
  expect_rejected(one(entry("w", "F32", "[2,4294967296]", "[0,8]"), 8), "shape[1] is 4294967296, more than 4294967295");
  expect_rejected(one(entry("w", "F32", "[18446744073709551615,2]", "[0,8]"), 8), "shape[0] is 18446744073709551615");
  expect_rejected(one(entry("w", "F32", "[4294967295,4294967295]", "[0,8]"), 8), "too many elements");
  expect_rejected(one(entry("w", "F32", "[4294967295,4294967295,4294967295]", "[0,8]"), 8), "too many elements");
  expect_rejected(one(entry("w", "F32", "[65536,65536,65536]", "[0,8]"), 8), "needs 1125899906842624");
  expect_rejected(one(entry("w", "F32", "[2]", "[0]"), 8), "not an array of two integers");
  expect_rejected(one(entry("w", "F32", "[2]", "[0,-8]"), 8), "not non-negative integers");
  expect_rejected(one(entry("w", "F32", "[2]", "[8,0]"), 8), "end before they begin");
  expect_rejected(one(entry("w", "F32", "[2]", "[0,16]"), 8), "exceed the data section (8 bytes)");
  expect_rejected(one(entry("w", "F32", "[2]", "[0,18446744073709551615]"), 8), "exceed the data section");
  expect_rejected(one(entry("w", "F32", "[3]", "[0,8]"), 8), "span 8 bytes but F32 shape [3] needs 12");
  // A zero in the shape makes a 0-byte tensor even beside a huge dimension.
  CHECK_NOTHROW(nl::parse_safetensors(one(entry("w", "F32", "[4294967295,0,4294967295]", "[0,0]"), 0)));
}

TEST_CASE("safetensors: offsets must tile the data section") {
  const std::string a = entry("a", "F32", "[2]", "[0,8]");
  expect_rejected(file_from("{" + a + "," + entry("b", "F32", "[2]", "[4,12]") + "}", zeros(12)),
                  "tensor 'b': data_offsets [4,12] overlap tensor 'a'");
  expect_rejected(file_from("{" + a + "," + entry("b", "F32", "[2]", "[0,8]") + "}", zeros(8)),
                  "overlap tensor 'a'");
  expect_rejected(file_from("{" + a + "," + entry("b", "F32", "[1]", "[12,16]") + "}", zeros(16)),
                  "tensor 'b': data_offsets begin at 12, leaving bytes 8..12");
  expect_rejected(file_from("{" + entry("b", "F32", "[1]", "[4,8]") + "}", zeros(8)), "leaving bytes 0..4");
  expect_rejected(file_from("{" + a + "}", zeros(12)), "data section is 12 bytes but the tensors cover 8");
  CHECK(nl::parse_safetensors(file_from("{" + entry("b", "F32", "[1]", "[8,12]") + "," + a + "}", zeros(12)))
            .tensors.size() == 2);
}

TEST_CASE("safetensors: every truncation and every single-byte corruption fails cleanly") {
  Tensor t({3, 3}, 1.5f);
  const auto good = nl::write_safetensors({{"conv.weight", &t}, {"conv.bias", &t}}, {{"format", "x"}});
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    CHECK_THROWS_AS(nl::parse_safetensors(cut), std::invalid_argument);
  }
  // Corrupting the header: either still a valid file or rejected; never anything else.
  uint64_t header_len = good[0] | good[1] << 8;
  for (size_t i = 0; i < 8 + header_len; ++i) {
    for (uint8_t value : {uint8_t{0}, uint8_t{'9'}, uint8_t{'"'}, uint8_t{0xff}}) {
      std::vector<uint8_t> bad = good;
      bad[i] = value;
      try {
        nl::parse_safetensors(bad);
      } catch (const std::invalid_argument&) {
      }
    }
  }
}

TEST_CASE("safetensors: untrusted JSON guard") {
  CHECK(nl::parse_untrusted_json("[1,[2]]", 2, "x") == nlohmann::json::parse("[1,[2]]"));
  CHECK_THROWS_WITH_AS(nl::parse_untrusted_json("[1,[[2]]]", 2, "thing"),
                       "thing: JSON nests deeper than 2 levels", std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::parse_untrusted_json("[{\"a\":1},{\"a\":2,\"b\":3,\"a\":4}]", 4, "thing"),
                       "thing: duplicate JSON key 'a'", std::invalid_argument);
  CHECK_THROWS_WITH_AS(nl::parse_untrusted_json("{1:2}", 4, "thing"),
                       doctest::Contains("thing: not well-formed JSON"), std::invalid_argument);
}

// half_to_float is branch-free arithmetic (for a vectorised loader): every one of the 65,536
// halves against the value its fields spell, computed the naive way.
TEST_CASE("F16: every half widens to the value its sign, exponent and mantissa spell") {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const uint32_t sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    const float got = nl::half_to_float(static_cast<uint16_t>(h));
    uint32_t got_bits;
    std::memcpy(&got_bits, &got, 4);
    CAPTURE(h);
    if (exponent == 0x1F) {  // infinity, or NaN keeping its payload
      CHECK(got_bits == ((sign << 31) | 0x7F800000u | (mantissa << 13)));
      continue;
    }
    const double magnitude = exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)
                                           : std::ldexp(static_cast<double>(1024 + mantissa), static_cast<int>(exponent) - 25);
    CHECK(static_cast<double>(got) == (sign ? -magnitude : magnitude));
    CHECK(std::signbit(got) == (sign == 1));
  }
}
