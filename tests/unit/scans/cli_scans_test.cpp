// The command line on scans (native only: it runs build/<preset>/neurolens): classify on single
// DICOM files, series folders and NIfTI volumes (text and --json), inspect without patient data,
// and evaluate reading single-frame DICOM files in class folders. Fixtures: tests/scans.
#ifndef __EMSCRIPTEN__
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../stb_write.h"
#include "../temp_dir.h"
#include "scan_fixtures.h"

namespace {

namespace fs = std::filesystem;

fs::path cli() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path("neurolens") : self.parent_path() / "neurolens";
}

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr together
};

Run run(const std::string& args) {
  const std::string command = "'" + cli().string() + "' " + args + " 2>&1";
  Run r;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string q(const std::string& path) { return "'" + path + "'"; }

// The demo model (seeded, untrained) at 32 px, cropping to the head like the shipped one.
std::string demo_model(const TempDir& tmp) {
  const std::string path = (tmp.path / "demo.safetensors").string();
  const Run r = run("demo-model --out " + q(path) + " --input-size 32 --seed 3");
  REQUIRE_MESSAGE(r.status == 0, r.out);
  return path;
}

// The grey picture the fixtures derive from, as a PNG file.
void write_grey_png(const fs::path& path) {
  const scantest::Picture& grey = scantest::grey();
  std::vector<uint8_t> png;
  REQUIRE(stbi_write_png_to_func(append_to, &png, static_cast<int>(grey.width), static_cast<int>(grey.height), 1,
                                 grey.pixels.data(), static_cast<int>(grey.width)));
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
}

nlohmann::json json_of(const Run& r) {
  // --json prints one document; anything before its first '{' would be a stray message.
  const size_t start = r.out.find('{');
  REQUIRE_MESSAGE(start != std::string::npos, r.out);
  return nlohmann::json::parse(r.out.substr(start));
}

}  // namespace

TEST_CASE("CLI classify: a DICOM with an image's grey levels and the identity window classifies like its PNG") {
  REQUIRE_MESSAGE(fs::exists(cli()), "the neurolens executable is not built at " << cli().string());
  TempDir tmp("neurolens-cli-scans");
  const std::string model = demo_model(tmp);
  const std::string png = (tmp.path / "grey.png").string();
  write_grey_png(png);
  const std::string dcm = scantest::fixture("dicom/base8.dcm");
  const Run r = run("classify --json --model " + q(model) + " " + q(dcm) + " " + q(png));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = json_of(r);
  REQUIRE(j["results"].size() == 2);
  const nlohmann::json& a = j["results"][0];
  const nlohmann::json& b = j["results"][1];
  CHECK(a["file"] == dcm);
  CHECK_FALSE(a.contains("slice"));  // a single-frame DICOM is one entry, like an image
  CHECK(a["class"] == b["class"]);
  CHECK(a["probabilities"] == b["probabilities"]);  // bit for bit
  CHECK(j["volumes"].empty());
}

TEST_CASE("CLI classify: a series folder and a NIfTI volume give a line per slice and a summary per volume") {
  TempDir tmp("neurolens-cli-scans-series");
  const std::string model = demo_model(tmp);
  const std::string series = scantest::fixture("series/numbered");
  const std::string nifti = scantest::fixture("nifti/coded_LPS.nii");
  Run r = run("classify --json --model " + q(model) + " " + q(series) + " " + q(nifti));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = json_of(r);
  REQUIRE(j["volumes"].size() == 2);
  size_t at = 0;
  for (const nlohmann::json& v : j["volumes"]) {
    const size_t n = v["slices"].get<size_t>();
    CAPTURE(v["file"]);
    REQUIRE(n > 1);
    size_t counted = 0;
    for (const auto& [cls, count] : v["slices_per_class"].items()) counted += count.get<size_t>();
    CHECK(counted == n);
    CHECK(v["most_tumour_like_slice"].get<size_t>() < n);
    CHECK(v.contains("verdict"));
    CHECK(v["scan"]["slices"] == n);
    // Its slices are the next n results, numbered 0..n-1 in display order, under its file name.
    for (size_t z = 0; z < n; ++z, ++at) {
      REQUIRE(at < j["results"].size());
      CHECK(j["results"][at]["file"] == v["file"]);
      CHECK(j["results"][at]["slice"] == z);
      CHECK(j["results"][at].contains("probabilities"));
    }
  }
  CHECK(at == j["results"].size());

  // Text: one line per slice, then the summary line.
  r = run("classify --model " + q(model) + " " + q(nifti));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  CHECK(r.out.find(nifti + " [slice 0]: ") != std::string::npos);
  CHECK(r.out.find("; verdict: ") != std::string::npos);
}

TEST_CASE("CLI classify: a bad scan is reported with its reason, the rest still run, exit status 1") {
  TempDir tmp("neurolens-cli-scans-bad");
  const std::string model = demo_model(tmp);
  const std::string good = scantest::fixture("dicom/base8.dcm"), bad = scantest::fixture("errors/truncated.dcm");
  const Run r = run("classify --json --model " + q(model) + " " + q(bad) + " " + q(good));
  CHECK(r.status == 1);
  const nlohmann::json j = json_of(r);
  bool saw_good = false, saw_bad = false;
  for (const nlohmann::json& e : j["results"]) {
    if (e["file"] == good) saw_good = e.contains("class");
    if (e["file"] == bad) saw_bad = e.contains("error") && e["error"].get<std::string>().find("truncated") != std::string::npos;
  }
  CHECK(saw_good);
  CHECK(saw_bad);
}

TEST_CASE("CLI inspect: what the reader sees, never the patient") {
  const std::string privacy = scantest::fixture("dicom/privacy.dcm");
  for (const char* mode : {"", "--json "}) {
    const Run r = run(std::string("inspect ") + mode + q(privacy));
    REQUIRE_MESSAGE(r.status == 0, r.out);
    CHECK(r.out.find("MR") != std::string::npos);
    CHECK(r.out.find("Explicit VR Little Endian") != std::string::npos);
    for (const char* secret : {"Janet", "Secretname", "Saint Privacy"}) CHECK(r.out.find(secret) == std::string::npos);
  }
}

TEST_CASE("CLI evaluate: single-frame DICOM files in class folders are read beside images") {
  TempDir tmp("neurolens-cli-scans-evaluate");
  const std::string model = demo_model(tmp);
  const fs::path data = tmp.path / "data";
  fs::create_directories(data / "glioma");
  fs::create_directories(data / "notumor");
  fs::copy_file(scantest::fixture("dicom/base8.dcm"), data / "glioma" / "IM0001");  // no extension
  fs::copy_file(scantest::fixture("dicom/mono1.dcm"), data / "notumor" / "scan.dcm");
  write_grey_png(data / "notumor" / "grey.png");
  const Run r = run("evaluate --json --model " + q(model) + " --data " + q(data.string()));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const nlohmann::json j = json_of(r);
  CHECK(j["images"] == 3);
  CHECK(j["skipped"].empty());
}
#endif  // __EMSCRIPTEN__
