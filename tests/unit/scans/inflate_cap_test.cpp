// The caps on inflation (formats/scans/inflate.cpp): a small compressed stream can claim
// gigabytes, so .nii.gz and deflated DICOM data sets are inflated against a limit, and a
// deflated DICOM data set is measured before GDCM (which has no limit) reads it.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "formats/scans/scan.h"
#include "formats/scans/scan_internal.h"

namespace {

// `zeros` zero bytes, deflated (raw, or with a gzip wrapper), fed in 1 MiB pieces so the test
// never holds them.
std::vector<uint8_t> deflated_zeros(size_t zeros, bool gzip) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 1, Z_DEFLATED, gzip ? 16 + MAX_WBITS : -MAX_WBITS, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  const std::vector<uint8_t> piece(size_t{1} << 20, 0);
  std::vector<uint8_t> out;
  std::vector<uint8_t> buffer(size_t{1} << 16);
  size_t left = zeros;
  int rc = Z_OK;
  do {
    const size_t n = std::min(left, piece.size());
    zs.next_in = const_cast<Bytef*>(piece.data());
    zs.avail_in = static_cast<uInt>(n);
    left -= n;
    const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      zs.next_out = buffer.data();
      zs.avail_out = static_cast<uInt>(buffer.size());
      rc = deflate(&zs, flush);
      out.insert(out.end(), buffer.data(), buffer.data() + (buffer.size() - zs.avail_out));
    } while (zs.avail_out == 0);
  } while (left > 0);
  CHECK(rc == Z_STREAM_END);
  deflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("inflation caps: a stream past the limit is refused, naming the cap; within it, exact") {
  const std::vector<uint8_t> raw = deflated_zeros(3u << 20, false);  // 3 MiB of zeros
  CHECK(nl::scans::inflated_size(raw, 4u << 20, true) == (3u << 20));
  CHECK_THROWS_WITH_AS(nl::scans::inflated_size(raw, 1u << 20, true),
                       "compressed data inflates past the 1048576-byte cap", nl::scans::ScanError);

  const std::vector<uint8_t> gz = deflated_zeros(3u << 20, true);
  CHECK(nl::scans::inflate_bytes(gz, 4u << 20, 4u << 20, false).size() == (3u << 20));
  CHECK(nl::scans::inflate_bytes(gz, 1u << 20, 1000, false).size() == 1000);  // stops once it has what it wants
  CHECK_THROWS_WITH_AS(nl::scans::inflate_bytes(gz, 1u << 20, 2u << 20, false),
                       "compressed data inflates past the 1048576-byte cap", nl::scans::ScanError);
}

TEST_CASE("a deflated DICOM data set that inflates past 1 GiB is refused before GDCM reads it") {
  // A Part-10 file: preamble, DICM, a File Meta Information group (explicit VR little endian)
  // naming the deflated transfer syntax, then 1.1 GiB of zeros deflated to a few megabytes.
  std::vector<uint8_t> file(128, 0);
  for (char c : std::string("DICM")) file.push_back(static_cast<uint8_t>(c));
  auto element = [&](uint16_t element, const char* vr, std::string value) {
    if (value.size() % 2) value.push_back('\0');
    const uint8_t head[8] = {0x02, 0x00, static_cast<uint8_t>(element), static_cast<uint8_t>(element >> 8),
                             static_cast<uint8_t>(vr[0]), static_cast<uint8_t>(vr[1]),
                             static_cast<uint8_t>(value.size()), static_cast<uint8_t>(value.size() >> 8)};
    file.insert(file.end(), head, head + 8);
    file.insert(file.end(), value.begin(), value.end());
  };
  std::vector<uint8_t> group;
  element(0x0002, "UI", "1.2.840.10008.5.1.4.1.1.4");
  element(0x0003, "UI", "1.2.3.4");
  element(0x0010, "UI", "1.2.840.10008.1.2.1.99");
  // (0002,0000) group length goes first: insert it in front of the three elements.
  const uint32_t length = static_cast<uint32_t>(file.size() - 132);
  const uint8_t group_length[12] = {0x02, 0x00, 0x00, 0x00, 'U', 'L', 4, 0,
                                    static_cast<uint8_t>(length), static_cast<uint8_t>(length >> 8),
                                    static_cast<uint8_t>(length >> 16), static_cast<uint8_t>(length >> 24)};
  file.insert(file.begin() + 132, group_length, group_length + 12);
  const std::vector<uint8_t> bomb = deflated_zeros((size_t{1} << 30) + (100u << 20), false);
  CHECK(bomb.size() < (16u << 20));
  file.insert(file.end(), bomb.begin(), bomb.end());
  CHECK(nl::scans::sniff(file, "bomb.dcm") == nl::scans::Kind::dicom);
  CHECK_THROWS_WITH_AS(nl::scans::read_dicom(file, "bomb.dcm"),
                       "compressed data inflates past the 1073741824-byte cap", nl::scans::ScanError);
}
