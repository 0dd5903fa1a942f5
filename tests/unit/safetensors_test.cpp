// Safetensors reader/writer: bit-exact round trip, the layout other readers expect, and
// every malformed-file rule rejected with a message naming it.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "safetensors.h"

namespace {

using nl::Tensor;

std::vector<uint8_t> file_from(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
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
  expect_rejected(one(entry("w", "F16", "[2]", "[0,4]"), 4), "tensor 'w': dtype F16 is not supported (only F32)");
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
