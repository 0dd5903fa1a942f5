#include "train/labelled_folders.h"

#include <array>

namespace nl {

namespace {

// Must match READABLE and ALIASES in web/lib/labels.js.
constexpr std::array<std::string_view, 1> kGliomaAliases = {"gliomatumor"};
constexpr std::array<std::string_view, 1> kMeningiomaAliases = {"meningiomatumor"};
constexpr std::array<std::string_view, 2> kNoTumorAliases = {"notumour", "normal"};
constexpr std::array<std::string_view, 2> kPituitaryAliases = {"pituitarytumor", "pituitarytumour"};

const std::array<KnownClass, 4> kKnownClasses = {{
    {"glioma", "Glioma", kGliomaAliases},
    {"meningioma", "Meningioma", kMeningiomaAliases},
    {"notumor", "No tumor", kNoTumorAliases},
    {"pituitary", "Pituitary tumor", kPituitaryAliases},
}};

const KnownClass* known(std::string_view name) {
  for (const KnownClass& k : kKnownClasses)
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace

std::span<const KnownClass> known_classes() { return kKnownClasses; }

std::string folder_key(std::string_view name) {
  std::string key;
  for (char ch : name) {
    if (ch >= 'A' && ch <= 'Z') key += static_cast<char>(ch - 'A' + 'a');
    else if (ch >= 'a' && ch <= 'z') key += ch;
  }
  return key;
}

std::optional<size_t> class_from_folder_name(std::string_view folder,
                                             std::span<const std::string> classes) {
  for (size_t c = 0; c < classes.size(); ++c)
    if (classes[c] == folder) return c;
  const std::string key = folder_key(folder);
  if (key.empty()) return std::nullopt;

  std::optional<size_t> named;
  size_t matches = 0;
  for (size_t c = 0; c < classes.size(); ++c) {
    const KnownClass* k = known(classes[c]);
    if (key == folder_key(classes[c]) || (k && key == folder_key(k->readable))) {
      named = c;
      ++matches;
    }
  }
  if (matches > 0) return matches == 1 ? named : std::nullopt;

  for (size_t c = 0; c < classes.size(); ++c)
    if (const KnownClass* k = known(classes[c]))
      for (std::string_view alias : k->aliases)
        if (key == alias) return c;
  return std::nullopt;
}

std::optional<size_t> class_from_path(std::string_view path, std::span<const std::string> classes) {
  // Folders from the innermost out; the last element is the file name.
  size_t end = path.rfind('/');
  while (end != std::string_view::npos) {
    const size_t slash = end == 0 ? std::string_view::npos : path.rfind('/', end - 1);
    const size_t begin = slash == std::string_view::npos ? 0 : slash + 1;
    if (auto c = class_from_folder_name(path.substr(begin, end - begin), classes)) return c;
    end = slash;
  }
  return std::nullopt;
}

}  // namespace nl
