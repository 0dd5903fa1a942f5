// A tiny command-line parser for the subcommands: `--name value`, `--name=value`, flags,
// positional arguments, `--` to end options, and -h/--help. Each subcommand lists its
// options once; the same list prints its help.
#pragma once
#include <algorithm>
#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nl::cli {

struct Option {
  std::string name;        // "--model"
  std::string value_name;  // "FILE"; empty for a flag
  std::string help;
};

// A mistake in how the command was called: reported with the subcommand's usage, exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(const std::vector<std::string>& argv, const std::vector<Option>& options) {
    bool options_done = false;
    for (size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (options_done || a.size() < 2 || a[0] != '-') {
        positional_.push_back(a);
        continue;
      }
      if (a == "--") {
        options_done = true;
        continue;
      }
      if (a == "-h" || a == "--help") {
        help_ = true;
        continue;
      }
      const size_t eq = a.find('=');
      const std::string name = a.substr(0, eq);
      const Option* opt = find(options, name);
      if (!opt) throw UsageError("unknown option '" + name + "'");
      if (opt->value_name.empty()) {
        if (eq != std::string::npos) throw UsageError(name + " takes no value");
        values_[name] = "";
      } else if (eq != std::string::npos) {
        values_[name] = a.substr(eq + 1);
      } else {
        if (i + 1 >= argv.size()) throw UsageError(name + " needs a value (" + opt->value_name + ")");
        values_[name] = argv[++i];
      }
    }
  }

  bool help() const { return help_; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const std::vector<std::string>& positional() const { return positional_; }

  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }

  // A whole number in [lo, hi]; `fallback` when the option is absent.
  size_t get_size(const std::string& name, size_t fallback, size_t lo, size_t hi) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    const std::string& s = it->second;
    size_t v = 0;
    bool ok = !s.empty() && s.size() <= 12;
    for (char c : s) {
      if (c < '0' || c > '9') ok = false;
      else v = v * 10 + static_cast<size_t>(c - '0');
    }
    if (!ok) throw UsageError(name + " expects a whole number, got '" + s + "'");
    if (v < lo || v > hi)
      throw UsageError(name + " must be from " + std::to_string(lo) + " to " + std::to_string(hi) +
                       ", got " + s);
    return v;
  }

 private:
  static const Option* find(const std::vector<Option>& options, std::string_view name) {
    for (const Option& o : options)
      if (o.name == name) return &o;
    return nullptr;
  }

  bool help_ = false;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// "  --model FILE    the model file ..." lines for --help.
inline std::string describe_options(const std::vector<Option>& options) {
  size_t width = 0;
  for (const Option& o : options) width = std::max(width, o.name.size() + 1 + o.value_name.size());
  std::string out;
  for (const Option& o : options) {
    std::string left = o.name + (o.value_name.empty() ? "" : " " + o.value_name);
    out += "  " + left + std::string(width - left.size() + 2, ' ') + o.help + "\n";
  }
  out += "  -h, --help" + std::string(width > 8 ? width - 8 : 2, ' ') + "show this help\n";
  return out;
}

}  // namespace nl::cli
