// formats/file_io: whole-file reads (exact bytes across chunk boundaries; a clear error for a
// directory, a missing file, a file over the limit, a read error) and atomic writes (no tmp
// file left behind, on success or failure).
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "formats/file_io.h"
#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 131 + 7) % 251);
  return v;
}

void write_plain(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("read_file_bytes: exact bytes at odd sizes, around the 64 KiB chunk") {
  TempDir tmp("neurolens-file-io");
  for (size_t n : {size_t{0}, size_t{1}, size_t{17}, size_t{65535}, size_t{65536}, size_t{65537},
                   size_t{3 * 65536 + 11}}) {
    CAPTURE(n);
    const fs::path p = tmp.path / ("f" + std::to_string(n));
    write_plain(p, pattern(n));
    CHECK(nl::read_file_bytes(p.string()) == pattern(n));
    CHECK(nl::read_file_bytes(p.string(), "image", n) == pattern(n));  // exactly at the limit
  }
}

TEST_CASE("read_file_bytes: errors name the file, its kind and the reason") {
  TempDir tmp("neurolens-file-io");
  const std::string dir = tmp.path.string();
  CHECK_THROWS_WITH_AS(nl::read_file_bytes(dir), ("cannot open '" + dir + "': it is a directory").c_str(),
                       std::runtime_error);
  CHECK_THROWS_WITH_AS(nl::read_file_bytes(dir, "model file"),
                       ("cannot open model file '" + dir + "': it is a directory").c_str(), std::runtime_error);
  const std::string absent = (tmp.path / "absent.jpg").string();
  CHECK_THROWS_WITH_AS(nl::read_file_bytes(absent, "image"),
                       ("cannot open image '" + absent + "': No such file or directory").c_str(),
                       std::runtime_error);

  const fs::path big = tmp.path / "big.bin";
  write_plain(big, pattern(101));
  CHECK_THROWS_WITH_AS(nl::read_file_bytes(big.string(), "image", 100),
                       ("cannot read image '" + big.string() + "': it is 101 bytes, more than the 100 allowed").c_str(),
                       std::runtime_error);
#if defined(__linux__) && !defined(__EMSCRIPTEN__)
  // A size the file system does not know (0 for /proc files): the limit holds while reading.
  CHECK_THROWS_WITH_AS(nl::read_file_bytes("/proc/self/status", "", 10),
                       doctest::Contains("more than the 10 allowed"), std::runtime_error);
  // Reading /proc/self/mem at offset 0 fails (nothing is mapped there): a read error.
  CHECK_THROWS_WITH_AS(nl::read_file_bytes("/proc/self/mem"), doctest::Contains("cannot read '/proc/self/mem'"),
                       std::runtime_error);
#endif
}

TEST_CASE("write_file_atomic: writes, replaces, leaves no tmp; failures remove the tmp") {
  TempDir tmp("neurolens-file-io");
  const std::string path = (tmp.path / "out.bin").string();
  nl::write_file_atomic(path, pattern(70001));
  CHECK(nl::read_file_bytes(path) == pattern(70001));
  nl::write_file_atomic(path, pattern(3));  // replacing a longer file truncates
  CHECK(nl::read_file_bytes(path) == pattern(3));
  nl::write_text_atomic(path, "text\n");
  CHECK(nl::read_file_bytes(path) == std::vector<uint8_t>{'t', 'e', 'x', 't', '\n'});
  nl::write_file_atomic(path, {});
  CHECK(nl::read_file_bytes(path).empty());
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const std::string nowhere = (tmp.path / "no" / "such" / "x.bin").string();
  CHECK_THROWS_WITH_AS(nl::write_file_atomic(nowhere, pattern(5)),
                       ("cannot write '" + nowhere + ".tmp': No such file or directory").c_str(),
                       std::runtime_error);

  // The target is a folder that is not empty: the rename fails and the tmp file goes.
  const fs::path folder = tmp.path / "folder";
  fs::create_directories(folder / "inside");
  CHECK_THROWS_WITH_AS(nl::write_file_atomic(folder.string(), pattern(5)),
                       doctest::Contains(("cannot rename '" + folder.string() + ".tmp' to '" + folder.string() + "'").c_str()),
                       std::runtime_error);
  CHECK_FALSE(fs::exists(folder.string() + ".tmp"));
  CHECK(fs::is_directory(folder / "inside"));
}
