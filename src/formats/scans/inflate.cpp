// zlib inflation with a cap on the output (a small .nii.gz can claim gigabytes).
#include <zlib.h>

#include <algorithm>

#include "formats/scans/scan_internal.h"

namespace nl::scans {

void check_budget(const std::string& what, uint64_t width, uint64_t height, uint64_t slices) {
  auto refuse = [&](const std::string& why) { throw ScanError(what + ": " + why); };
  if (width == 0 || height == 0 || slices == 0)
    refuse("empty image (" + std::to_string(width) + "x" + std::to_string(height) + ", " +
           std::to_string(slices) + " slices)");
  if (width > kMaxSide || height > kMaxSide)
    refuse(std::to_string(width) + "x" + std::to_string(height) + " exceeds the " +
           std::to_string(kMaxSide) + "-pixel side limit");
  if (slices > kMaxSlices)
    refuse(std::to_string(slices) + " slices exceed the " + std::to_string(kMaxSlices) + "-slice limit");
  if (width * height * slices > kMaxVoxels)
    refuse(std::to_string(width) + "x" + std::to_string(height) + "x" + std::to_string(slices) +
           " exceeds the " + std::to_string(kMaxVoxels) + "-voxel limit");
}

std::vector<uint8_t> inflate_bytes(std::span<const uint8_t> compressed, size_t limit, size_t want,
                                   bool raw_deflate) {
  z_stream zs{};
  if (inflateInit2(&zs, raw_deflate ? -MAX_WBITS : 16 + MAX_WBITS) != Z_OK)
    throw ScanError("zlib could not start inflating");
  std::vector<uint8_t> out;
  zs.next_in = const_cast<Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(std::min<size_t>(compressed.size(), UINT32_MAX));
  int rc = Z_OK;
  while (rc != Z_STREAM_END && out.size() < want) {
    if (out.size() >= limit) {
      inflateEnd(&zs);
      throw ScanError("compressed data inflates past the " + std::to_string(limit) + "-byte cap");
    }
    const size_t chunk = std::min<size_t>({size_t{1} << 20, limit - out.size(), want - out.size()});
    const size_t old = out.size();
    out.resize(old + chunk);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(chunk);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + chunk - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended early
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      const std::string why = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      throw ScanError("corrupt compressed data (zlib: " + why + ")");
    }
  }
  // A gzip file may hold further members (concatenated); they are not needed once `want` is out.
  inflateEnd(&zs);
  return out;
}

size_t inflated_size(std::span<const uint8_t> compressed, size_t limit, bool raw_deflate) {
  z_stream zs{};
  if (inflateInit2(&zs, raw_deflate ? -MAX_WBITS : 16 + MAX_WBITS) != Z_OK)
    throw ScanError("zlib could not start inflating");
  std::vector<uint8_t> scratch(size_t{1} << 16);
  zs.next_in = const_cast<Bytef*>(compressed.data());
  zs.avail_in = static_cast<uInt>(std::min<size_t>(compressed.size(), UINT32_MAX));
  size_t total = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = scratch.data();
    zs.avail_out = static_cast<uInt>(scratch.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    total += scratch.size() - zs.avail_out;
    if (total > limit) {
      inflateEnd(&zs);
      throw ScanError("compressed data inflates past the " + std::to_string(limit) + "-byte cap");
    }
    if (rc == Z_BUF_ERROR || (rc != Z_OK && rc != Z_STREAM_END)) break;  // ended early or corrupt: the reader says which
  }
  inflateEnd(&zs);
  return total;
}

}  // namespace nl::scans
