// The rules of the C++ <-> JS boundary, shared by the engine module (bindings.cpp) and the scan
// module (scan_bindings.cpp): C++ exceptions become JS Errors carrying the message, inputs are
// copied in from Uint8Arrays, results are copies JS owns, options are checked and named.
#pragma once
#include <emscripten.h>
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace nl::wasm {

using emscripten::val;

// ---- errors ---------------------------------------------------------------------------------

EM_JS(void, nl_throw_js_error, (const char* message), {
  throw new Error(UTF8ToString(message));
});

// A JS exception unwinding through wasm frames does not restore the wasm shadow-stack pointer,
// so each error would leak a few bytes of stack. Every Engine method is therefore wrapped (once
// the bindings are live, after start-up) to save the stack pointer and restore it on a throw.
EM_JS(void, nl_install_stack_guards, (const char* class_name), {
  var name_of_class = UTF8ToString(class_name);
  addOnPostRun(function() {
    var proto = Module[name_of_class].prototype;
    Object.getOwnPropertyNames(proto).forEach(function(name) {
      var method = proto[name];
      if (name === 'constructor' || typeof method !== 'function') return;
      var guard = function() {
        var saved = stackSave();
        try {
          return method.apply(this, arguments);
        } catch (error) {
          stackRestore(saved);
          throw error;
        }
      };
      // An overloaded method (e.g. ScanReader.slice with 2 or 3 arguments) is Embind's
      // dispatcher, which looks its overloads up on proto[name] at each call: keep them there.
      if (method.overloadTable) guard.overloadTable = method.overloadTable;
      proto[name] = guard;
    });
  });
});

inline std::string g_error_message;  // outlives the throw, which skips C++ destructors

// Runs f; a C++ exception becomes a JS Error with its message. All of f's locals are destroyed
// before the JS throw (which unwinds without running C++ destructors).
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    g_error_message = "out of memory (the wasm heap could not grow)";
  } catch (const std::exception& e) {
    g_error_message = e.what();
  } catch (...) {
    g_error_message = "unknown C++ exception";
  }
  nl_throw_js_error(g_error_message.c_str());
  __builtin_unreachable();
}

// ---- conversions ----------------------------------------------------------------------------

inline std::vector<uint8_t> bytes_from_js(const val& bytes, const char* what) {
  if (!bytes.instanceof(val::global("Uint8Array")))
    throw std::invalid_argument(std::string(what) + " must be a Uint8Array");
  std::vector<uint8_t> out(bytes["length"].as<size_t>());
  // Copy into our vector through a temporary view (no allocation happens while it lives).
  val(emscripten::typed_memory_view(out.size(), out.data())).call<void>("set", bytes);
  return out;
}

inline val float_array_copy(const float* data, size_t n) {
  return val(emscripten::typed_memory_view(n, data)).call<val>("slice");
}

inline val byte_array_copy(const std::vector<uint8_t>& bytes) {
  return val(emscripten::typed_memory_view(bytes.size(), bytes.data())).call<val>("slice");
}

inline val string_array(const std::vector<std::string>& items) {
  val out = val::array();
  for (const std::string& s : items) out.call<void>("push", s);
  return out;
}

// Reads an optional boolean option; undefined/null mean `fallback`.
inline bool bool_option(const val& options, const char* name, bool fallback) {
  if (options.isUndefined() || options.isNull()) return fallback;
  if (options.typeOf().as<std::string>() != "object")
    throw std::invalid_argument("options must be a plain object");
  const val v = options[name];
  if (v.isUndefined() || v.isNull()) return fallback;
  if (v.typeOf().as<std::string>() != "boolean")
    throw std::invalid_argument(std::string("option '") + name + "' must be true or false");
  return v.as<bool>();
}

// Reads an optional finite number option; undefined/null mean `fallback`.
inline double number_option(const val& options, const char* name, double fallback) {
  if (options.isUndefined() || options.isNull()) return fallback;
  const val v = options[name];
  if (v.isUndefined() || v.isNull()) return fallback;
  const double d = v.typeOf().as<std::string>() == "number" ? v.as<double>() : NAN;
  if (!std::isfinite(d))
    throw std::invalid_argument(std::string("option '") + name + "' must be a finite number");
  return d;
}

inline size_t count_option(const val& options, const char* name, size_t fallback) {
  const double d = number_option(options, name, static_cast<double>(fallback));
  if (d < 0 || d != std::floor(d) || d > 1e9)
    throw std::invalid_argument(std::string("option '") + name + "' must be a whole number >= 0, got " +
                                std::to_string(d));
  return static_cast<size_t>(d);
}

}  // namespace nl::wasm
