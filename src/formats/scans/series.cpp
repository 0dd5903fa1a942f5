// ScanSet: files in, volumes out. DICOM objects are grouped into series by SeriesInstanceUID
// (within the folder they came from) and ordered along the slice normal.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>

#include "formats/scans/scan_internal.h"

namespace nl::scans {

struct ScanSet::Pending {
  std::string name;
  DicomObject object;
  size_t order = 0;  // when it was added, among all files
};

namespace {

std::string parent_directory(const std::string& path) {
  const size_t slash = path.find_last_of("/\\");
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Where a slice lies along the series' normal (row cosines x column cosines).
double along_normal(const std::array<double, 6>& o, const std::array<double, 3>& p) {
  const double n[3] = {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
  return n[0] * p[0] + n[1] * p[1] + n[2] * p[2];
}

bool same_orientation(const std::array<double, 6>& a, const std::array<double, 6>& b) {
  for (int i = 0; i < 6; ++i)
    if (std::fabs(a[i] - b[i]) > 1e-3) return false;
  return true;
}

}  // namespace

ScanSet::ScanSet() = default;
ScanSet::~ScanSet() = default;
ScanSet::ScanSet(ScanSet&&) noexcept = default;
ScanSet& ScanSet::operator=(ScanSet&&) noexcept = default;

Kind ScanSet::add(std::string name, std::span<const uint8_t> bytes) {
  const Kind kind = sniff(bytes, name);
  const size_t order = pending_.size() + result_.volumes.size() + result_.problems.size() + result_.skipped.size();
  try {
    switch (kind) {
      case Kind::dicomdir:
        result_.skipped.push_back(name);
        break;
      case Kind::nifti: {
        // order_ pairs with result_.volumes: only once the file has been read.
        Volume v = read_nifti(bytes, name);
        order_.push_back(order);
        result_.volumes.push_back(std::move(v));
        break;
      }
      case Kind::dicom: {
        DicomObject obj = read_dicom_object(bytes, name);
        if (obj.is_directory) {
          result_.skipped.push_back(name);
          return Kind::dicomdir;
        }
        pending_.push_back(Pending{name, std::move(obj), order});
        break;
      }
      case Kind::other:
        result_.problems.push_back({name, "not a DICOM or NIfTI file"});
        break;
    }
  } catch (const std::exception& e) {
    result_.problems.push_back({name, e.what()});
  }
  return kind;
}

ScanResult ScanSet::finish() {
  // Single-file volumes (NIfTI) keep their place; DICOM series take the place of their first file.
  std::vector<std::pair<size_t, Volume>> placed;
  for (size_t i = 0; i < result_.volumes.size(); ++i) placed.emplace_back(order_[i], std::move(result_.volumes[i]));

  // Multi-frame objects are volumes of their own; single frames group by folder + series UID.
  std::map<std::pair<std::string, std::string>, std::vector<Pending*>> series;
  std::vector<std::pair<std::string, std::string>> series_order;
  for (Pending& p : pending_) {
    if (p.object.volume.slices() > 1) {
      placed.emplace_back(p.order, std::move(p.object.volume));
      continue;
    }
    const std::string uid = p.object.series_uid.empty() ? "(no series UID) " + p.name : p.object.series_uid;
    auto key = std::make_pair(parent_directory(p.name), uid);
    if (!series.count(key)) series_order.push_back(key);
    series[key].push_back(&p);
  }

  for (const auto& key : series_order) {
    std::vector<Pending*>& files = series[key];
    const size_t first_order = files.front()->order;
    // Every slice must have the series' size: the most common one (the first file's on a tie),
    // so that one odd file does not push the rest out, whatever order the files came in.
    std::map<std::pair<size_t, size_t>, size_t> sizes;
    for (const Pending* p : files) ++sizes[{p->object.volume.width(), p->object.volume.height()}];
    size_t w = files.front()->object.volume.width(), h = files.front()->object.volume.height();
    for (const auto& [size, count] : sizes)
      if (count > sizes[{w, h}]) std::tie(w, h) = size;
    std::vector<Pending*> kept;
    for (Pending* p : files) {
      const Volume& v = p->object.volume;
      if (v.width() != w || v.height() != h)
        result_.problems.push_back({p->name, "its " + std::to_string(v.width()) + "x" + std::to_string(v.height()) +
                                                 " image differs from the series' " + std::to_string(w) + "x" +
                                                 std::to_string(h) + ": left out of the series"});
      else
        kept.push_back(p);
    }
    if (kept.size() == 1) {
      Volume v = std::move(kept[0]->object.volume);
      v.single_image = true;
      v.slice_files = {kept[0]->name};
      placed.emplace_back(first_order, std::move(v));
      continue;
    }

    // Order: along the normal when every slice has the same orientation and a position;
    // otherwise by InstanceNumber; otherwise as given (by name), and say so.
    std::string how;
    std::vector<std::string> notes;
    const bool geometry = std::all_of(kept.begin(), kept.end(), [&](Pending* p) {
      return p->object.orientation && p->object.position &&
             same_orientation(*p->object.orientation, *kept.front()->object.orientation);
    });
    const bool numbered = std::all_of(kept.begin(), kept.end(), [](Pending* p) { return p->object.instance_number.has_value(); });
    std::vector<double> where(kept.size());
    if (geometry) {
      for (size_t i = 0; i < kept.size(); ++i) where[i] = along_normal(*kept[i]->object.orientation, *kept[i]->object.position);
      std::vector<size_t> idx(kept.size());
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return where[a] < where[b]; });
      std::vector<Pending*> sorted;
      std::vector<double> sorted_where;
      for (size_t i : idx) { sorted.push_back(kept[i]); sorted_where.push_back(where[i]); }
      kept = std::move(sorted);
      where = std::move(sorted_where);
      how = "slices ordered along the slice normal (ImageOrientationPatient x ImagePositionPatient)";
      for (size_t i = 1; i < where.size(); ++i)
        if (std::fabs(where[i] - where[i - 1]) < 1e-4) {
          notes.push_back("two or more slices share a position along the normal");
          break;
        }
    } else if (numbered) {
      std::stable_sort(kept.begin(), kept.end(), [](Pending* a, Pending* b) { return *a->object.instance_number < *b->object.instance_number; });
      how = "slices ordered by InstanceNumber (no common ImageOrientationPatient/ImagePositionPatient)";
      notes.push_back(how);
    } else {
      std::stable_sort(kept.begin(), kept.end(), [](Pending* a, Pending* b) { return a->name < b->name; });
      how = "slices in file-name order (no position or InstanceNumber in the files)";
      notes.push_back(how);
    }
    check_budget("DICOM series", w, h, kept.size());

    Volume v;
    v.source = key.first;
    v.info = kept.front()->object.volume.info;  // format, syntax, modality, window of the first slice
    v.info.slices = kept.size();
    v.info.orientation = how + "; rows and columns as stored";
    v.info.notes = notes;
    if (geometry && where.size() > 1) {
      std::vector<double> gaps;
      for (size_t i = 1; i < where.size(); ++i) gaps.push_back(where[i] - where[i - 1]);
      std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
      v.info.spacing[2] = gaps[gaps.size() / 2];
    }
    std::vector<std::string> syntaxes;
    for (Pending* p : kept) {
      const Volume& s = p->object.volume;
      v.voxels.insert(v.voxels.end(), s.voxels.begin(), s.voxels.end());
      v.slice_files.push_back(p->name);
      if (s.info.transfer_syntax != v.info.transfer_syntax &&
          std::find(syntaxes.begin(), syntaxes.end(), s.info.transfer_syntax) == syntaxes.end())
        syntaxes.push_back(s.info.transfer_syntax);
      if (s.info.inverted != v.info.inverted)
        v.info.notes.push_back(p->name + " differs in photometric interpretation; the first file's is used");
    }
    if (!syntaxes.empty()) v.info.transfer_syntax += " and " + std::to_string(syntaxes.size()) + " other(s)";
    finish_intensity(v);
    placed.emplace_back(first_order, std::move(v));
  }

  std::stable_sort(placed.begin(), placed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  ScanResult out;
  for (auto& [order, v] : placed) out.volumes.push_back(std::move(v));
  out.problems = std::move(result_.problems);
  out.skipped = std::move(result_.skipped);
  pending_.clear();
  order_.clear();
  result_ = {};
  return out;
}

}  // namespace nl::scans
