// Which class a labelled image belongs to, from the folders it sits in: the one rule that
// `neurolens train` / `neurolens evaluate` (through load_image_folder) and the page (web/lib/
// labels.js classFromFolderName, web/lib/files.js labelFromPath) follow. The two copies, and
// the class list below (kKnownClasses), must match: change both together.
//
// A folder names class c (one of `classes`) when
//   1. its name is exactly c; else
//   2. its key -- the name's ASCII letters, lower-cased ("No Tumor" -> "notumor") -- is not
//      empty and equals the key of c or of c's readable name ("No tumor", "Pituitary tumor"),
//      for exactly one class (two or more: the folder names none); else
//   3. its key is an alias of c ("notumour", "normal", "pituitarytumour", ...).
// A file belongs to the class its nearest enclosing folder names; a file under no such folder
// belongs to none (the loaders skip it, "not inside a folder named after a class").
#pragma once
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace nl {

// The classes the rule knows beyond their names: readable name and aliases.
struct KnownClass {
  std::string_view name;
  std::string_view readable;
  std::span<const std::string_view> aliases;  // keys (lower-case letters)
};
std::span<const KnownClass> known_classes();

// The name's ASCII letters, lower-cased: "No Tumor" -> "notumor", "class_2" -> "class".
std::string folder_key(std::string_view name);

// Index in `classes` of the class the folder name stands for, if any.
std::optional<size_t> class_from_folder_name(std::string_view folder,
                                             std::span<const std::string> classes);

// Index of the class of the file at `path` ('/'-separated, relative to the labelled folder, file
// name last): the nearest enclosing folder that names a class. "Training/No Tumor/x.jpg" ->
// notumor, "glioma/patient1/x.jpg" -> glioma, "x.jpg" -> none.
std::optional<size_t> class_from_path(std::string_view path, std::span<const std::string> classes);

}  // namespace nl
