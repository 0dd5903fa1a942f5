#include "formats/file_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace nl {

namespace fs = std::filesystem;

namespace {

// "<kind> '<path>'", or "'<path>'" without a kind.
std::string describe(std::string_view kind, const std::string& path) {
  std::string s(kind);
  if (!s.empty()) s += ' ';
  return s + "'" + path + "'";
}

[[noreturn]] void too_large(std::string_view kind, const std::string& path, uint64_t size,
                            uint64_t max_bytes) {
  throw std::runtime_error("cannot read " + describe(kind, path) + ": it is " +
                           std::to_string(size) + " bytes, more than the " +
                           std::to_string(max_bytes) + " allowed");
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, std::string_view kind,
                                     uint64_t max_bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw std::runtime_error("cannot open " + describe(kind, path) + ": it is a directory");
  const uint64_t size = fs::file_size(path, ec);
  const bool size_known = !ec;
  if (size_known && size > max_bytes) too_large(kind, path, size, max_bytes);

  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot open " + describe(kind, path) + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  if (size_known) bytes.reserve(size);
  char chunk[1 << 16];
  errno = 0;
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    const auto got = static_cast<size_t>(in.gcount());
    if (bytes.size() + got > max_bytes) too_large(kind, path, bytes.size() + got, max_bytes);
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  if (in.bad()) {
    const int error = errno;
    throw std::runtime_error("cannot read " + describe(kind, path) +
                             (error ? std::string(": ") + std::strerror(error) : std::string()));
  }
  return bytes;
}

void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write '" + tmp + "': " + std::strerror(errno));
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw std::runtime_error("cannot write '" + tmp + "' (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

void write_text_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

}  // namespace nl
