// scantest::env (scan_fixtures.h): one definition, since EM_JS defines a symbol.
#include "scan_fixtures.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>

// Emscripten's getenv sees its own small environment, not node's: ask node.
EM_JS(int, scantest_node_getenv, (const char* name, char* out, int capacity), {
  if (typeof process === 'undefined' || !process.env) return -1;
  var value = process.env[UTF8ToString(name)];
  if (value === undefined) return -1;
  if (lengthBytesUTF8(value) + 1 > capacity) return -1;
  return stringToUTF8(value, out, capacity);
});
#endif

namespace scantest {

std::string env(const char* name) {
#ifdef __EMSCRIPTEN__
  std::vector<char> buffer(4096);
  const int n = scantest_node_getenv(name, buffer.data(), static_cast<int>(buffer.size()));
  return n < 0 ? std::string() : std::string(buffer.data(), static_cast<size_t>(n));
#else
  const char* v = std::getenv(name);
  return v ? v : "";
#endif
}

}  // namespace scantest
