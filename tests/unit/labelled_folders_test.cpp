// The labelled-folder rule (train/labelled_folders.h), shared with the page's
// web/lib/labels.js classFromFolderName and web/lib/files.js labelFromPath.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "train/labelled_folders.h"

namespace {

const std::vector<std::string> kModel = {"glioma", "meningioma", "notumor", "pituitary"};

// The class name for a path, or "-" for none.
std::string label(const std::string& path, const std::vector<std::string>& classes = kModel) {
  const std::optional<size_t> c = nl::class_from_path(path, classes);
  return c ? classes.at(*c) : "-";
}

std::string folder(const std::string& name, const std::vector<std::string>& classes = kModel) {
  const std::optional<size_t> c = nl::class_from_folder_name(name, classes);
  return c ? classes.at(*c) : "-";
}

}  // namespace

TEST_CASE("folder_key: ASCII letters only, lower-cased") {
  CHECK(nl::folder_key("No Tumor") == "notumor");
  CHECK(nl::folder_key("Pituitary_Tumour-2") == "pituitarytumour");
  CHECK(nl::folder_key("class_2") == "class");
  CHECK(nl::folder_key("2024") == "");
  CHECK(nl::folder_key("Gli\xC3\xB3ma") == "glima");  // non-ASCII bytes dropped
  CHECK(nl::folder_key("") == "");
}

TEST_CASE("class of a folder name: the name, its readable name, an alias") {
  for (const std::string& c : kModel) CHECK(folder(c) == c);
  CHECK(folder("Glioma") == "glioma");
  CHECK(folder("GLIOMA") == "glioma");
  CHECK(folder("glioma_tumor") == "glioma");
  CHECK(folder("Meningioma Tumor") == "meningioma");
  CHECK(folder("No tumor") == "notumor");
  CHECK(folder("no_tumor") == "notumor");
  CHECK(folder("No Tumour") == "notumor");
  CHECK(folder("normal") == "notumor");
  CHECK(folder("Pituitary tumor") == "pituitary");
  CHECK(folder("pituitary_tumour") == "pituitary");
  CHECK(folder("Pituitary") == "pituitary");
  CHECK(folder("tumor") == "-");
  CHECK(folder("Training") == "-");
  CHECK(folder("") == "-");
  CHECK(folder("123") == "-");
  // An alias counts only for a class the model has.
  CHECK(folder("normal", {"glioma", "meningioma"}) == "-");
  CHECK(folder("Glioma", {"meningioma"}) == "-");
  // Readable names and aliases belong to the known classes only.
  CHECK(folder("No tumor", {"healthy", "sick"}) == "-");
}

TEST_CASE("class of a folder name: any class names, exact first, ambiguity names none") {
  const std::vector<std::string> shapes = {"disc", "hbar", "square", "vbar"};
  CHECK(folder("vbar", shapes) == "vbar");
  CHECK(folder("V-Bar", shapes) == "vbar");
  CHECK(folder("circle", shapes) == "-");
  // Classes whose keys collide: only the exact name picks one.
  const std::vector<std::string> numbered = {"class_1", "class_2", "3"};
  CHECK(folder("class_2", numbered) == "class_2");
  CHECK(folder("class_1", numbered) == "class_1");
  CHECK(folder("Class-1", numbered) == "-");
  CHECK(folder("class_3", numbered) == "-");
  CHECK(folder("3", numbered) == "3");
  CHECK(folder("4", numbered) == "-");  // an empty key names nothing
  // The exact name beats another class's alias or readable name.
  CHECK(folder("normal", {"notumor", "normal"}) == "normal");
  CHECK(folder("Normal", {"notumor", "normal"}) == "normal");  // its own key before the alias
}

TEST_CASE("class of a path: the nearest enclosing class folder") {
  CHECK(label("glioma/x.jpg") == "glioma");
  CHECK(label("Training/No Tumor/x.jpg") == "notumor");
  CHECK(label("glioma/patient1/x.jpg") == "glioma");
  CHECK(label("glioma/notumor/x.jpg") == "notumor");  // the nearest wins
  CHECK(label("data/Testing/pituitary_tumor/scan 3/slice.png") == "pituitary");
  CHECK(label("x.jpg") == "-");
  CHECK(label("Training/x.jpg") == "-");
  CHECK(label("Training/misc/x.jpg") == "-");
  CHECK(label("glioma") == "-");  // a file named like a class is not a folder
  CHECK(label("notumor/glioma") == "notumor");
  CHECK(label("") == "-");
  CHECK(label("/x.jpg") == "-");
  CHECK(label("a//glioma//x.jpg") == "glioma");
}

TEST_CASE("the known classes: readable names and aliases, as web/lib/labels.js lists them") {
  const auto known = nl::known_classes();
  REQUIRE(known.size() == 4);
  for (size_t i = 0; i < known.size(); ++i) {
    CHECK(known[i].name == kModel[i]);
    for (std::string_view alias : known[i].aliases) {
      CHECK(nl::folder_key(alias) == alias);  // stored as keys
      CHECK(folder(std::string(alias)) == kModel[i]);
    }
    CHECK(folder(std::string(known[i].readable)) == kModel[i]);
  }
}
