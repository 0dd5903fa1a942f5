// Whole-file reads and atomic writes: the one place the engine touches files (native; the
// browser hands the engine bytes instead).
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nl {

// Reads the whole file at `path`. `kind` names the file in messages ("model file" gives
// "cannot open model file 'x': ..."; empty gives "cannot open 'x': ..."). Throws
// std::runtime_error naming the file and the reason:
//   "cannot open <kind> '<path>': it is a directory"
//   "cannot open <kind> '<path>': <strerror>"
//   "cannot read <kind> '<path>': it is <N> bytes, more than the <max_bytes> allowed"
//   "cannot read <kind> '<path>'[: <strerror>]"
// The limit is checked before anything is allocated when the size is known, and again while
// reading (a file that grows, a pipe).
std::vector<uint8_t> read_file_bytes(const std::string& path, std::string_view kind = {},
                                     uint64_t max_bytes = std::numeric_limits<uint64_t>::max());

// Writes `bytes` to "<path>.tmp", then renames it over `path`, so readers (and an interrupted
// run) never see a half-written file. On failure the tmp file is removed and
// std::runtime_error says which step failed: "cannot write '<tmp>': <strerror>",
// "cannot write '<tmp>' (disk full?)" or "cannot rename '<tmp>' to '<path>': <reason>".
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);
void write_text_atomic(const std::string& path, std::string_view text);

}  // namespace nl
