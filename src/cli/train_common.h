// Helpers shared by the training-related subcommands (train, evaluate, bench-train).
#pragma once
#include <cmath>
#include <cstdlib>
#include <string>

#include "cli/args.h"

namespace nl::cli {

// A decimal number in [lo, hi]; `fallback` when the option is absent.
inline double get_number(const Args& args, const std::string& name, double fallback, double lo,
                         double hi) {
  if (!args.has(name)) return fallback;
  const std::string s = args.get(name);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    throw UsageError(name + " expects a number, got '" + s + "'");
  if (v < lo || v > hi)
    throw UsageError(name + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got " + s);
  return v;
}

// "model/neurolens.safetensors" -> "model/neurolens"; other names are kept whole.
inline std::string strip_safetensors(const std::string& path) {
  const std::string ext = ".safetensors";
  if (path.size() > ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0)
    return path.substr(0, path.size() - ext.size());
  return path;
}

// "1:02:03" / "4:05"
inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

}  // namespace nl::cli
