// NIfTI-1 and NIfTI-2 single files (.nii, .nii.gz) through nifti_clib: the header is decoded
// and checked by nifti_clib from the bytes in memory (no temporary file), zlib inflates
// .nii.gz with a cap, and the volume is put in radiological display order.
#include <nifti2_io.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "formats/scans/scan_internal.h"

namespace nl::scans {
namespace {

struct NimDeleter {
  void operator()(nifti_image* nim) const { nifti_image_free(nim); }
};
using NimPtr = std::unique_ptr<nifti_image, NimDeleter>;

const char* datatype_name(int datatype) {
  switch (datatype) {
    case DT_UINT8: return "uint8";
    case DT_INT8: return "int8";
    case DT_INT16: return "int16";
    case DT_UINT16: return "uint16";
    case DT_INT32: return "int32";
    case DT_UINT32: return "uint32";
    case DT_INT64: return "int64";
    case DT_UINT64: return "uint64";
    case DT_FLOAT32: return "float32";
    case DT_FLOAT64: return "float64";
    case DT_RGB24: return "rgb24";
    default: return nullptr;
  }
}

// Value i of the stored data as double (bytes already in the machine's order).
double stored_value(const uint8_t* p, int datatype) {
  auto get = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return static_cast<double>(v);
  };
  switch (datatype) {
    case DT_UINT8: return p[0];
    case DT_INT8: return static_cast<int8_t>(p[0]);
    case DT_INT16: return get(int16_t{});
    case DT_UINT16: return get(uint16_t{});
    case DT_INT32: return get(int32_t{});
    case DT_UINT32: return get(uint32_t{});
    case DT_INT64: return get(int64_t{});
    case DT_UINT64: return get(uint64_t{});
    case DT_FLOAT32: return get(float{});
    case DT_FLOAT64: return get(double{});
    case DT_RGB24: return (77.0 * p[0] + 150.0 * p[1] + 29.0 * p[2]) / 256.0;  // as stb_image
  }
  return 0;
}

// Which way a display axis must run: columns toward the patient's left (so the patient's right
// is on the image's left) or toward posterior (sagittal: anterior on the left); rows toward
// posterior (axial: anterior up) or inferior (coronal, sagittal: superior up).
struct DisplayAxes {
  int column_code, row_code;  // NIFTI_R2L etc.
  const char* plane;
};

DisplayAxes display_axes(int slice_code) {
  switch (slice_code) {
    case NIFTI_I2S: case NIFTI_S2I: return {NIFTI_R2L, NIFTI_A2P, "axial"};
    case NIFTI_P2A: case NIFTI_A2P: return {NIFTI_R2L, NIFTI_S2I, "coronal"};
    default: return {NIFTI_A2P, NIFTI_S2I, "sagittal"};
  }
}

int opposite(int code) { return code % 2 == 1 ? code + 1 : code - 1; }
bool same_axis(int a, int b) { return a == b || a == opposite(b); }

}  // namespace

Volume read_nifti(std::span<const uint8_t> file, std::string name) {
  const bool gzip = file.size() >= 2 && file[0] == 0x1f && file[1] == 0x8b;
  std::vector<uint8_t> inflated;
  std::span<const uint8_t> bytes = file;
  if (gzip) {
    inflated = inflate_bytes(file, kMaxInflatedBytes, 540, false);
    bytes = inflated;
  }
  if (bytes.size() < 348) throw ScanError("truncated NIfTI header (" + std::to_string(bytes.size()) + " bytes)");
  const int version = nifti_header_version(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (version != 1 && version != 2)
    throw ScanError("not a NIfTI-1 or NIfTI-2 header (sizeof_hdr and magic do not match)");
  if (version == 2 && bytes.size() < 540) throw ScanError("truncated NIfTI-2 header");

  NimPtr nim;
  if (version == 1) {
    nifti_1_header h;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (std::memcmp(h.magic, "n+1", 4) != 0)
      throw ScanError("NIfTI-1 header/image pair (magic \"ni1\": .hdr + .img) is not supported; use a single .nii file");
    nim.reset(nifti_convert_n1hdr2nim(h, name.c_str()));
  } else {
    nifti_2_header h;
    std::memcpy(&h, bytes.data(), sizeof h);
    if (std::memcmp(h.magic, "n+2", 4) != 0)
      throw ScanError("NIfTI-2 header/image pair (magic \"ni2\") is not supported; use a single .nii file");
    // nifti_convert_n2hdr2nim trusts dim[0] (nifti_clib's own readers validate the header
    // first): with dim[0] > 7 its loops over dim[2..dim[0]] write past the 8-entry array.
    int64_t dim0 = h.dim[0];
    if (NIFTI2_NEEDS_SWAP(h)) {
      auto* b = reinterpret_cast<unsigned char*>(&dim0);
      std::reverse(b, b + sizeof dim0);
    }
    if (dim0 < 1 || dim0 > 7) throw ScanError("NIfTI-2 dim[0] " + std::to_string(dim0) + " is not 1..7");
    nim.reset(nifti_convert_n2hdr2nim(h, name.c_str()));
  }
  if (!nim) throw ScanError("NIfTI header rejected by nifti_clib (bad dim[0], dim[1], sizeof_hdr or datatype)");

  const char* type = datatype_name(nim->datatype);
  if (!type)
    throw ScanError(std::string("NIfTI datatype ") + std::to_string(nim->datatype) + " (" +
                    nifti_datatype_to_string(nim->datatype) + ") is not supported");
  if (nim->nx <= 0 || nim->ny <= 0 || nim->nz <= 0)
    throw ScanError("NIfTI dimensions " + std::to_string(nim->nx) + "x" + std::to_string(nim->ny) +
                    "x" + std::to_string(nim->nz) + " are not positive");
  // Checked as 64-bit values before they become size_t (32-bit in wasm).
  check_budget("NIfTI volume", static_cast<uint64_t>(nim->nx), static_cast<uint64_t>(nim->ny),
               static_cast<uint64_t>(nim->nz));
  const size_t nx = static_cast<size_t>(nim->nx), ny = static_cast<size_t>(nim->ny);
  const size_t nz = static_cast<size_t>(nim->nz);

  const size_t bpv = static_cast<size_t>(nim->nbyper);
  if (nim->iname_offset < (version == 1 ? 352 : 544) && nim->iname_offset != 0)
    throw ScanError("NIfTI vox_offset " + std::to_string(nim->iname_offset) + " lies inside the header");
  if (static_cast<uint64_t>(nim->iname_offset) > (gzip ? kMaxInflatedBytes : file.size()))
    throw ScanError("truncated NIfTI data: vox_offset " + std::to_string(nim->iname_offset) +
                    " lies beyond the " + (gzip ? std::to_string(kMaxInflatedBytes) + "-byte cap" :
                                                  std::to_string(file.size()) + "-byte file"));
  const size_t offset = static_cast<size_t>(nim->iname_offset);
  const size_t data_offset = offset == 0 ? (version == 1 ? 352 : 544) : offset;
  const size_t volume_bytes = nx * ny * nz * bpv;
  const size_t need = data_offset + volume_bytes;
  if (gzip) {
    inflated = inflate_bytes(file, kMaxInflatedBytes, need, false);
    bytes = inflated;
  }
  if (bytes.size() < need)
    throw ScanError("truncated NIfTI data: " + std::to_string(nx) + "x" + std::to_string(ny) + "x" +
                    std::to_string(nz) + " " + type + " needs " + std::to_string(need) +
                    " bytes, the file has " + std::to_string(bytes.size()));

  Volume v;
  v.source = name;
  ScanInfo& info = v.info;
  info.format = version == 1 ? "NIfTI-1" : "NIfTI-2";
  if (gzip) info.format += " (gzip)";
  info.data_type = type;
  const int64_t volumes = nim->nvox / static_cast<int64_t>(nx * ny * nz);
  if (volumes > 1)
    info.notes.push_back(std::to_string(nim->nt > 1 ? nim->nt : volumes) +
                         "-volume (4-D or higher) file: the first volume is shown");

  // Stored values -> real-world values (scl_slope/scl_inter, ignored for RGB as the standard says).
  const bool swap = nim->byteorder != nifti_short_order();
  const bool scaled = nim->datatype != DT_RGB24 && std::isfinite(nim->scl_slope) &&
                      nim->scl_slope != 0 && std::isfinite(nim->scl_inter);
  const size_t count = nx * ny * nz;
  std::vector<float> stored(count);
  std::vector<uint8_t> value(bpv);
  size_t non_finite = 0;
  for (size_t i = 0; i < count; ++i) {
    std::memcpy(value.data(), bytes.data() + data_offset + i * bpv, bpv);
    if (swap && nim->swapsize > 1) std::reverse(value.begin(), value.end());
    double x = stored_value(value.data(), nim->datatype);
    if (scaled) x = x * nim->scl_slope + nim->scl_inter;
    // Beyond float's range counts as infinite (and converting it to float would be undefined).
    if (!(std::fabs(x) <= std::numeric_limits<float>::max())) { x = 0; ++non_finite; }
    stored[i] = static_cast<float>(x);
  }
  if (scaled && (nim->scl_slope != 1 || nim->scl_inter != 0))
    info.notes.push_back("scaled by scl_slope " + std::to_string(nim->scl_slope) + " and scl_inter " +
                         std::to_string(nim->scl_inter));
  if (non_finite) info.notes.push_back(std::to_string(non_finite) + " NaN/infinite voxels (or beyond float's range) shown as 0");

  // Display order. The voxel axes' directions come from sform, else qform; slices are the third
  // voxel axis in stored order; within a slice i and j are swapped and/or flipped so that the
  // image reads like a radiology viewer's.
  const nifti_dmat44* affine = nim->sform_code > 0 ? &nim->sto_xyz : nim->qform_code > 0 ? &nim->qto_xyz : nullptr;
  bool transpose = false, flip_columns = false, flip_rows = false;
  if (affine) {
    int icode = 0, jcode = 0, kcode = 0;
    nifti_dmat44_to_orientation(*affine, &icode, &jcode, &kcode);
    const DisplayAxes want = display_axes(kcode);
    if (same_axis(icode, want.row_code) && same_axis(jcode, want.column_code)) {
      transpose = true;
      std::swap(icode, jcode);
    }
    flip_columns = same_axis(icode, want.column_code) && icode != want.column_code;
    flip_rows = same_axis(jcode, want.row_code) && jcode != want.row_code;
    info.orientation = std::string(want.plane) + " slices from the " +
                       (nim->sform_code > 0 ? "sform" : "qform") +
                       ": patient right on the image's left, " +
                       (want.row_code == NIFTI_A2P ? "anterior up" : "superior up") +
                       "; slices in stored order along the third voxel axis";
  } else {
    info.orientation = "stored order (no sform or qform): rows along the second voxel axis, slices along the third";
    info.notes.push_back("no sform or qform: shown in stored order, orientation unknown");
  }
  const size_t width = transpose ? ny : nx, height = transpose ? nx : ny;
  info.width = width;
  info.height = height;
  info.slices = nz;
  const double di = std::fabs(nim->dx), dj = std::fabs(nim->dy);
  info.spacing[0] = transpose ? dj : di;
  info.spacing[1] = transpose ? di : dj;
  info.spacing[2] = std::fabs(nim->dz);
  info.slice_thickness = info.spacing[2];
  v.voxels.resize(count);
  for (size_t z = 0; z < nz; ++z)
    for (size_t r = 0; r < height; ++r)
      for (size_t c = 0; c < width; ++c) {
        const size_t cc = flip_columns ? width - 1 - c : c, rr = flip_rows ? height - 1 - r : r;
        // NIfTI stores i fastest; in display (cc, rr) is (i, j), or (j, i) when transposed.
        const size_t i = transpose ? rr : cc, j = transpose ? cc : rr;
        v.voxels[(z * height + r) * width + c] = stored[(z * ny + j) * nx + i];
      }
  if (std::isfinite(nim->cal_min) && std::isfinite(nim->cal_max) && nim->cal_max > nim->cal_min)
    info.file_window = Window{(nim->cal_min + nim->cal_max) / 2, nim->cal_max - nim->cal_min,
                              WindowFunction::linear_exact};
  finish_intensity(v);
  return v;
}

}  // namespace nl::scans
