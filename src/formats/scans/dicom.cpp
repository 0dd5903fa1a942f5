// One DICOM object through GDCM (gdcm::ImageReader decodes every transfer syntax of
// kSupportedSyntaxes with its bundled codecs), turned into real-world values: BitsStored
// masking, sign, Rescale Slope/Intercept, colour to grey, MONOCHROME1 noted for display.
#include <gdcmImage.h>
#include <gdcmFileMetaInformation.h>
#include <gdcmImageReader.h>
#include <gdcmReader.h>
#include <gdcmMediaStorage.h>
#include <gdcmTransferSyntax.h>
#include <gdcmUIDs.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <istream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <streambuf>

#include "formats/scans/scan_internal.h"

namespace nl::scans {
namespace {

// What the issue promises and the tests check; GDCM could read a few more, but a syntax we do
// not test is one we do not claim.
struct SyntaxName {
  const char* uid;
  const char* name;
};
constexpr SyntaxName kSupportedSyntaxes[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian"},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian"},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.5", "RLE Lossless"},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])"},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless)"},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)"},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression"},
};

const SyntaxName* supported_syntax(const std::string& uid) {
  for (const SyntaxName& s : kSupportedSyntaxes)
    if (uid == s.uid) return &s;
  return nullptr;
}

// Syntaxes newer than GDCM 3.0.24's dictionary, so that a refusal can still name them.
constexpr SyntaxName kNewerSyntaxes[] = {
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.4.110", "JPEG XL Lossless"},
    {"1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"},
    {"1.2.840.10008.1.2.4.112", "JPEG XL"},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)"},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)"},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression"},
    {"1.2.840.10008.1.2.4.204", "JPIP HTJ2K Referenced"},
    {"1.2.840.10008.1.2.4.205", "JPIP HTJ2K Referenced Deflate"},
};

std::string syntax_name(const std::string& uid) {
  for (const SyntaxName& s : kNewerSyntaxes)
    if (uid == s.uid) return s.name;
  gdcm::UIDs uids;
  return uids.SetFromUID(uid.c_str()) && uids.GetName() ? uids.GetName() : "unknown";
}

// GDCM reports some of its internal checks by throwing a std::string (gdcmAssertAlwaysMacro in
// release builds: "Assert: In <path>, line <n>, function <f>") or a C string ("Impossible"),
// not a std::exception. Runs f and turns those into std::runtime_error, so that every caller
// handles one kind of failure; the source path is cut to the file's name.
template <class F>
auto gdcm_call(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::string& s) {
    std::string what = s.substr(0, s.find('\n'));
    const size_t in = what.find("In "), slash = what.rfind('/');
    if (in != std::string::npos && slash != std::string::npos && slash > in) what.erase(in + 3, slash + 1 - (in + 3));
    throw std::runtime_error("internal check failed: " + what);
  } catch (const char* s) {
    throw std::runtime_error(std::string("internal check failed: ") + (s ? s : "(no message)"));
  }
}

// A read-only std::istream over bytes already in memory (GDCM seeks back and forth).
class MemoryBuffer : public std::streambuf {
 public:
  MemoryBuffer(std::span<const uint8_t> bytes) {
    char* p = const_cast<char*>(reinterpret_cast<const char*>(bytes.data()));
    setg(p, p, p + bytes.size());
  }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    const off_type base = dir == std::ios_base::beg ? 0 : dir == std::ios_base::cur ? gptr() - eback() : egptr() - eback();
    return seekpos(base + off, std::ios_base::in);
  }
  pos_type seekpos(pos_type pos, std::ios_base::openmode) override {
    if (pos < 0 || pos > egptr() - eback()) return pos_type(off_type(-1));
    setg(eback(), eback() + pos, egptr());
    return pos;
  }
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

std::string text(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  const gdcm::Tag tag(group, element);
  if (!ds.FindDataElement(tag)) return "";
  const gdcm::DataElement& de = ds.GetDataElement(tag);
  const gdcm::ByteValue* bv = de.GetByteValue();
  if (!bv || de.IsEmpty()) return "";
  return trimmed(std::string(bv->GetPointer(), bv->GetLength()));
}

// Text for display as UTF-8 (ScanInfo ends up in JSON, and nlohmann's dump() throws on invalid
// UTF-8): with Specific Character Set ISO_IR 192 the bytes are UTF-8 already and invalid
// sequences become U+FFFD; otherwise bytes over 0x7F are read as ISO 8859-1 (ISO_IR 100, the
// usual Western default; other single-byte sets show as Latin-1 look-alikes).
std::string display_utf8(const std::string& s, bool utf8) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (!utf8) {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
      ++i;
      continue;
    }
    // One well-formed UTF-8 sequence (no overlongs, surrogates or values past U+10FFFF).
    const size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok && n == 3) ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
    if (ok && n == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// A decimal/integer string attribute's values ("a\b\c").
std::vector<double> numbers(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  std::vector<double> out;
  std::stringstream ss(text(ds, group, element));
  std::string item;
  while (std::getline(ss, item, '\\')) {
    try {
      size_t used = 0;
      const double v = std::stod(trimmed(item), &used);
      if (!std::isfinite(v)) return {};
      out.push_back(v);
    } catch (const std::exception&) {
      return {};  // a malformed value counts as absent
    }
  }
  return out;
}

// Colour buffers GDCM hands back as RGB: RGB itself and JPEG 2000's reversible/irreversible
// colour transforms (OpenJPEG undoes them). YBR_FULL and YBR_FULL_422 come back as Y Cb Cr per
// pixel: GDCM's JPEG codec turns libjpeg's colour conversion off for them (out_color_space
// JCS_UNKNOWN) and its RAW codec only upsamples native 4:2:2 (ImageCodec::DoYBRFull422).
bool decoded_as_rgb(const std::string& photometric) {
  return photometric == "RGB" || photometric == "YBR_RCT" || photometric == "YBR_ICT";
}

// Names the element whose declared length runs past the end of the file. GDCM itself now
// refuses such a length before allocating it (cmake/patches/gdcm-declared-length.patch), but
// only as "could not parse"; this walk checks declared lengths against the bytes that are
// really there before GDCM sees the file, so that the message says which element and how many
// bytes. It refuses only an element header whose defined length runs past the end of the file
// (an unknown VR is read like UN, as PS3.5 7.1.2 says and GDCM does); anything it does not
// understand (undefined length other than SQ or Pixel Data, an implicit length that looks like
// explicit VR letters, deflate, a bare data set not starting with group 0002/0008, deep
// nesting) ends the walk and GDCM decides. An explicit syntax whose data set turns out
// implicit is walked the way GDCM then reads it (known VR: explicit, else implicit).
class LengthWalk {
 public:
  explicit LengthWalk(std::span<const uint8_t> bytes) : b_(bytes) {}

  // The meta header's Media Storage SOP Class UID, once check() has run ("" without one).
  const std::string& media_sop_class() const { return media_sop_class_; }

  // "" when nothing was found to refuse.
  std::string check() {
    size_t pos = 0;
    bool little = true, explicit_vr = true;
    if (b_.size() >= 132 && std::memcmp(b_.data() + 128, "DICM", 4) == 0) {
      pos = 132;
      std::string syntax;
      // Meta header: explicit VR little endian, group 0002.
      while (pos + 8 <= b_.size() && u16(pos, true) == 0x0002) {
        Header h;
        if (!header(pos, true, true, h)) return "";
        if (h.defined && h.length > b_.size() - h.value) return overlong(h);
        const std::string value = h.defined ? std::string(reinterpret_cast<const char*>(b_.data()) + h.value, h.length) : "";
        if (h.element == 0x0010) syntax = trimmed(value);
        if (h.element == 0x0002) media_sop_class_ = trimmed(value);
        if (!h.defined) return "";
        pos = h.value + h.length;
      }
      if (syntax == "1.2.840.10008.1.2.1.99" || syntax.empty()) return "";  // deflated; or no syntax
      little = syntax != "1.2.840.10008.1.2.2";
      explicit_vr = syntax != "1.2.840.10008.1.2";
    } else {
      // A bare data set: walked only when it starts like one in little endian (group 0002 or
      // 0008, as sniff() wants), explicit VR when VR letters follow the first tag.
      if (b_.size() < 8 || (u16(0, true) != 0x0002 && u16(0, true) != 0x0008)) return "";
      explicit_vr = std::isupper(b_[4]) && std::isupper(b_[5]);
    }
    // An explicit syntax whose first element has no VR letters: GDCM reads the data set with
    // ExplicitImplicitDataElement (each element explicit when its VR is known, else implicit).
    mixed_ = explicit_vr && pos + 6 <= b_.size() && !(std::isalpha(b_[pos + 4]) && std::isalpha(b_[pos + 5]));
    const size_t walked = dataset(pos, b_.size(), little, explicit_vr, 0, false);
    // When its explicit reading fails, GDCM reads the data set again that mixed way: so does
    // this walk when the explicit one could not finish.
    if (walked == std::string::npos && found_.empty() && explicit_vr && !mixed_) {
      mixed_ = true;
      dataset(pos, b_.size(), little, explicit_vr, 0, false);
    }
    return found_;
  }

 private:
  struct Header {
    uint16_t group = 0, element = 0;
    char vr[2] = {0, 0};
    bool defined = true;
    size_t length = 0, value = 0;  // value: offset of the value
  };

  uint16_t u16(size_t at, bool little) const {
    return little ? static_cast<uint16_t>(b_[at] | b_[at + 1] << 8) : static_cast<uint16_t>(b_[at] << 8 | b_[at + 1]);
  }
  uint32_t u32(size_t at, bool little) const {
    const uint32_t lo = u16(at, little), hi = u16(at + 2, little);
    return little ? lo | hi << 16 : lo << 16 | hi;
  }

  // Reads an element (or item) header at `at`; false when it is not understood.
  bool header(size_t at, bool little, bool explicit_vr, Header& h) const {
    if (at + 8 > b_.size()) return false;
    h.group = u16(at, little);
    h.element = u16(at + 2, little);
    uint32_t length;
    static constexpr const char* kShort[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                             "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"};
    static constexpr const char* kLong[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
                                            "UT", "UV"};
    const std::string vr(reinterpret_cast<const char*>(b_.data()) + at + 4, 2);
    const bool is_short = std::find(std::begin(kShort), std::end(kShort), vr) != std::end(kShort);
    const bool is_long = std::find(std::begin(kLong), std::end(kLong), vr) != std::end(kLong);
    // Items and delimiters have no VR; in a mixed data set (GDCM's ExplicitImplicitDataElement)
    // an element without a known VR is implicit.
    if (h.group == 0xFFFE || !explicit_vr || (mixed_ && !is_short && !is_long)) {
      length = u32(at + 4, little);
      h.value = at + 8;
      if (h.group != 0xFFFE && (!explicit_vr || mixed_) && std::isupper(b_[at + 4]) && std::isupper(b_[at + 5]) &&
          length > b_.size())
        return false;  // explicit VR letters in an implicit data set: GDCM's guesswork, not ours
    } else {
      h.vr[0] = vr[0];
      h.vr[1] = vr[1];
      if (is_short) {
        length = u16(at + 6, little);
        h.value = at + 8;
      } else {  // the long VRs, and an unknown VR, which PS3.5 7.1.2 (and GDCM) read like UN
        if (at + 12 > b_.size()) return false;
        length = u32(at + 8, little);
        h.value = at + 12;
      }
    }
    h.defined = length != 0xFFFFFFFFu;
    h.length = h.defined ? length : 0;
    return true;
  }

  std::string overlong(const Header& h) const {
    char tag[16];
    std::snprintf(tag, sizeof tag, "(%04X,%04X)", h.group, h.element);
    const std::string what = h.group == 0x7FE0 && h.element == 0x0010 ? "truncated pixel data: Pixel Data "
                                                                       : "truncated or damaged DICOM file: element ";
    return what + tag + " declares " + std::to_string(h.length) + " bytes, only " +
           std::to_string(b_.size() - std::min(h.value, b_.size())) + " follow";
  }

  // Walks elements in [pos, end). Returns the position after the walk, or npos to stop.
  size_t dataset(size_t pos, size_t end, bool little, bool explicit_vr, int depth, bool in_undefined_item) {
    static constexpr size_t npos = std::string::npos;
    if (depth > 16) return npos;
    while (pos + 8 <= end && found_.empty()) {
      Header h;
      if (!header(pos, little, explicit_vr, h)) return npos;
      if (h.group == 0xFFFE) return in_undefined_item && h.element == 0xE00D ? h.value : npos;
      if (h.defined) {
        if (h.length > b_.size() - std::min(h.value, b_.size())) {
          found_ = overlong(h);
          return npos;
        }
        const bool sequence = explicit_vr ? std::string(h.vr, 2) == "SQ" : false;
        if (sequence && items(h.value, h.value + h.length, little, explicit_vr, depth, false) == npos) return npos;
        pos = h.value + h.length;
        continue;
      }
      // Undefined length: a sequence, or encapsulated Pixel Data (fragments); UN and the rest: stop.
      const bool pixel_data = h.group == 0x7FE0 && h.element == 0x0010;
      const bool sequence = explicit_vr ? std::string(h.vr, 2) == "SQ" : !pixel_data;
      if (!sequence && !pixel_data) return npos;
      pos = items(h.value, end, little, explicit_vr, depth, pixel_data);
      if (pos == npos) return npos;
    }
    return in_undefined_item ? npos : pos;
  }

  // Walks items (or fragments) from `pos` to `end` or to a sequence delimiter.
  size_t items(size_t pos, size_t end, bool little, bool explicit_vr, int depth, bool fragments) {
    static constexpr size_t npos = std::string::npos;
    while (pos + 8 <= end && found_.empty()) {
      Header h;
      if (!header(pos, little, false, h) || h.group != 0xFFFE) return npos;
      if (h.element == 0xE0DD) return h.value;  // sequence delimiter
      if (h.element != 0xE000) return npos;
      if (h.defined) {
        if (h.length > b_.size() - std::min(h.value, b_.size())) {
          found_ = overlong(h);
          return npos;
        }
        if (!fragments && dataset(h.value, h.value + h.length, little, explicit_vr, depth + 1, false) == npos &&
            !found_.empty())
          return npos;
        pos = h.value + h.length;
      } else {
        if (fragments) return npos;
        pos = dataset(h.value, end, little, explicit_vr, depth + 1, true);
        if (pos == npos) return npos;
      }
    }
    return pos <= end ? pos : npos;
  }

  std::span<const uint8_t> b_;
  std::string found_, media_sop_class_;
  bool mixed_ = false;
};

// A first pass with a plain gdcm::Reader up to Pixel Data: the meta header's transfer syntax
// and SOP class, whether the data set parses at all (ImageReader also fails, without saying
// why, on a complete file that holds no image), and where Pixel Data's value starts in `bytes`
// (an odd length is padded by a byte in GDCM's value, so the file's end bounds it). No offset
// for deflated data sets. A damaged file stops here, before ImageReader parses it a second time.
struct FirstPass {
  bool parsed = false;
  std::string syntax;     // (0002,0010), "" without meta header
  std::string sop_class;  // (0002,0002), else (0008,0016); valid UTF-8
  std::optional<size_t> pixel_value_offset;
};

FirstPass read_up_to_pixel_data(std::span<const uint8_t> bytes) {
  FirstPass out;
  MemoryBuffer buffer(bytes);
  std::istream stream(&buffer);
  gdcm::Reader reader;
  reader.SetStream(stream);
  const gdcm::Tag pixel_data(0x7FE0, 0x0010);
  try {
    out.parsed = gdcm_call([&] { return reader.ReadUpToTag(pixel_data, std::set<gdcm::Tag>{pixel_data}); });
  } catch (const std::exception&) {
    out.parsed = false;
  }
  const gdcm::FileMetaInformation& meta = reader.GetFile().GetHeader();
  out.syntax = text(meta, 0x0002, 0x0010);
  out.sop_class = text(meta, 0x0002, 0x0002);
  if (out.sop_class.empty()) out.sop_class = text(reader.GetFile().GetDataSet(), 0x0008, 0x0016);
  out.sop_class = display_utf8(out.sop_class, false);
  if (!out.parsed) return out;
  // Skipped, Pixel Data's tag, VR and length were read: the stream is at its value. Check the
  // tag bytes before it (explicit VR OB/OW: 12 bytes of header, implicit: 8; either byte order).
  const std::streampos pos = stream.tellg();
  if (pos <= 0 || static_cast<size_t>(pos) > bytes.size()) return out;
  const size_t value = static_cast<size_t>(pos);
  auto tag_at = [&](size_t header) {
    if (value < header) return false;
    const uint8_t* t = bytes.data() + value - header;
    return (t[0] == 0xE0 && t[1] == 0x7F && t[2] == 0x10 && t[3] == 0x00) ||
           (t[0] == 0x7F && t[1] == 0xE0 && t[2] == 0x00 && t[3] == 0x10);
  };
  if (tag_at(12) || tag_at(8)) out.pixel_value_offset = value;
  return out;
}

// GDCM inflates a deflated data set whole, with no limit: measure it first, so a small hostile
// file cannot claim gigabytes. The data set starts after the File Meta Information.
void check_deflated_size(std::span<const uint8_t> bytes) {
  if (bytes.size() < 132 || std::memcmp(bytes.data() + 128, "DICM", 4) != 0) return;
  MemoryBuffer buffer(bytes.subspan(132));
  std::istream stream(&buffer);
  gdcm::FileMetaInformation meta;
  try {
    gdcm_call([&] { meta.Read(stream); });
  } catch (const std::exception&) {
    return;  // GDCM's full read reports the broken header
  }
  if (text(meta, 0x0002, 0x0010) != "1.2.840.10008.1.2.1.99") return;
  const std::streamoff at = stream.tellg();
  if (at <= 0 || static_cast<size_t>(at) + 132 > bytes.size()) return;
  inflated_size(bytes.subspan(132 + static_cast<size_t>(at)), kMaxInflatedBytes, true);
}

}  // namespace

DicomObject read_dicom_object(std::span<const uint8_t> bytes, std::string name) {
  if (bytes.empty()) throw ScanError("empty file");
  check_deflated_size(bytes);  // before any GDCM read: they inflate a deflated data set unbounded
  DicomObject obj;
  LengthWalk walk(bytes);
  const std::string overlong = walk.check();
  if (walk.media_sop_class() == "1.2.840.10008.1.3.10") {  // a DICOMDIR, even a damaged one: skipped
    obj.is_directory = true;
    return obj;
  }
  if (!overlong.empty()) throw ScanError(overlong);
  const FirstPass first = read_up_to_pixel_data(bytes);
  if (first.sop_class == "1.2.840.10008.1.3.10") {  // Media Storage Directory (DICOMDIR)
    obj.is_directory = true;
    return obj;
  }
  if (!first.syntax.empty() && !supported_syntax(first.syntax))  // the UID goes into messages as UTF-8
    throw ScanError("transfer syntax " + display_utf8(first.syntax, false) + " (" + syntax_name(first.syntax) +
                    ") is not supported");
  const bool part10 = bytes.size() >= 132 && std::memcmp(bytes.data() + 128, "DICM", 4) == 0;
  if (!first.parsed)
    throw ScanError(first.syntax.empty() && !part10
                        ? std::string("not a readable DICOM file (GDCM could not parse its data set)")
                                         : "truncated or damaged DICOM file: GDCM could not parse its data set (" +
                                               std::to_string(bytes.size()) + " bytes)");
  MemoryBuffer buffer(bytes);
  std::istream stream(&buffer);
  gdcm::ImageReader reader;
  reader.SetStream(stream);
  bool read = false;
  try {
    read = gdcm_call([&] { return reader.Read(); });
  } catch (const std::exception& e) {
    throw ScanError("not a readable DICOM file (GDCM: " + display_utf8(e.what(), false) + ")");
  }
  const gdcm::File& file = reader.GetFile();
  const gdcm::DataSet& ds = file.GetDataSet();
  const gdcm::FileMetaInformation& meta = file.GetHeader();

  std::string sop_class = text(meta, 0x0002, 0x0002);
  if (sop_class.empty()) sop_class = text(ds, 0x0008, 0x0016);
  sop_class = display_utf8(sop_class, false);
  if (sop_class == "1.2.840.10008.1.3.10") {  // Media Storage Directory (DICOMDIR)
    obj.is_directory = true;
    return obj;
  }
  std::string syntax = text(meta, 0x0002, 0x0010);
  if (syntax.empty()) syntax = reader.GetImage().GetTransferSyntax().GetString() ? reader.GetImage().GetTransferSyntax().GetString() : "";
  if (syntax.empty() && !read) throw ScanError("not a readable DICOM file (GDCM could not parse its data set)");
  if (syntax.empty()) syntax = "1.2.840.10008.1.2";  // no meta header: GDCM read it as implicit VR LE
  const SyntaxName* known = supported_syntax(syntax);
  if (!known)
    throw ScanError("transfer syntax " + display_utf8(syntax, false) + " (" + syntax_name(syntax) + ") is not supported");
  if (!ds.FindDataElement(gdcm::Tag(0x7FE0, 0x0010))) {
    gdcm::UIDs uid;
    const std::string what = !sop_class.empty() && uid.SetFromUID(sop_class.c_str()) && uid.GetName()
                                 ? std::string(uid.GetName()) + " (" + sop_class + ")"
                                 : sop_class.empty() ? std::string("an object without SOP class") : sop_class;
    throw ScanError("no pixel data (7FE0,0010): " + what + " holds no image");
  }
  if (!read && syntax == "1.2.840.10008.1.2.1.99")  // the zlib stream ended or broke
    throw ScanError("truncated or damaged deflated data set: GDCM could not inflate the whole file");
  if (!read) throw ScanError("GDCM could not read the image in this DICOM file (" + std::string(known->name) + ")");

  const gdcm::Image& image = reader.GetImage();
  const gdcm::PixelFormat& pf = image.GetPixelFormat();
  const size_t columns = image.GetDimension(0), rows = image.GetDimension(1);
  const size_t frames = image.GetNumberOfDimensions() >= 3 ? image.GetDimension(2) : 1;
  check_budget("DICOM image", columns, rows, frames);
  // GDCM's inline GetBitsStored asserts BitsStored <= BitsAllocated, and native builds keep
  // assert(): IsValid checks that (and HighBit, PixelRepresentation) without asserting.
  if (!pf.IsValid())
    throw ScanError(pf.GetBitsAllocated() == 0
                        ? std::string("BitsAllocated (0028,0100) is missing or 0")
                        : "inconsistent pixel format: BitsStored or HighBit beyond BitsAllocated " +
                              std::to_string(pf.GetBitsAllocated()) + ", or BitsStored over 32");
  const unsigned allocated = pf.GetBitsAllocated(), stored = pf.GetBitsStored(), high = pf.GetHighBit();
  const unsigned samples = pf.GetSamplesPerPixel();
  const bool is_signed = pf.GetPixelRepresentation() == 1;
  if (allocated != 8 && allocated != 16 && allocated != 32)
    throw ScanError("BitsAllocated " + std::to_string(allocated) + " is not supported (8, 16 or 32)");
  if (stored == 0 || stored > allocated || high + 1 < stored || high >= allocated)
    throw ScanError("inconsistent pixel format: BitsAllocated " + std::to_string(allocated) + ", BitsStored " +
                    std::to_string(stored) + ", HighBit " + std::to_string(high));
  if (samples != 1 && samples != 3)
    throw ScanError("SamplesPerPixel " + std::to_string(samples) + " is not supported (1 or 3)");
  const std::string photometric = trimmed(image.GetPhotometricInterpretation().GetString()
                                              ? image.GetPhotometricInterpretation().GetString() : "");
  const bool mono = photometric == "MONOCHROME1" || photometric == "MONOCHROME2";
  if (samples == 1 && !mono)
    throw ScanError("photometric interpretation " + (photometric.empty() ? std::string("(missing)") : photometric) +
                    " is not supported for one sample per pixel (MONOCHROME1 or MONOCHROME2)");
  const size_t bytes_per_sample = allocated / 8;
  const size_t frame_pixels = columns * rows;

  // Native pixel data must hold every frame: GDCM hands back a short buffer without complaint
  // (and an odd length padded by a byte the file does not hold).
  const gdcm::DataElement& pixel_data = ds.GetDataElement(gdcm::Tag(0x7FE0, 0x0010));
  const bool encapsulated = pixel_data.GetSequenceOfFragments() != nullptr;
  bool ybr422_native = false;
  if (!encapsulated) {
    const gdcm::ByteValue* bv = pixel_data.GetByteValue();
    size_t have = bv ? static_cast<size_t>(static_cast<uint32_t>(bv->GetLength())) : 0;
    if (first.pixel_value_offset) have = std::min(have, bytes.size() - *first.pixel_value_offset);
    size_t expected = frame_pixels * frames * samples * bytes_per_sample;
    if (samples == 3 && photometric == "YBR_FULL_422" && have >= frame_pixels * frames * 2 * bytes_per_sample &&
        have < expected) {
      ybr422_native = true;
      expected = frame_pixels * frames * 2 * bytes_per_sample;
    }
    if (have < expected)
      throw ScanError("truncated pixel data: " + std::to_string(columns) + "x" + std::to_string(rows) + "x" +
                      std::to_string(frames) + " needs " + std::to_string(expected) + " bytes, the file has " +
                      std::to_string(have));
  }
  // GDCM 3.0.24's JPEG codec retries a frame whose precision its 8-bit libjpeg refuses with the
  // 12- or 16-bit one, and has none past 16: its codec pointer is then null and JPEGCodec::Decode
  // dereferences it (SEGV, found by fuzz_dicom). Refuse such a precision first: SOF markers
  // (FFC0-FFCF but DHT C4, JPG C8, DAC CC) cannot occur inside entropy-coded data.
  const bool jpeg = syntax == "1.2.840.10008.1.2.4.50" || syntax == "1.2.840.10008.1.2.4.51" ||
                    syntax == "1.2.840.10008.1.2.4.57" || syntax == "1.2.840.10008.1.2.4.70";
  if (jpeg && encapsulated) {
    const gdcm::SequenceOfFragments* fragments = pixel_data.GetSequenceOfFragments();
    for (unsigned f = 0; f < fragments->GetNumberOfFragments(); ++f) {
      const gdcm::ByteValue* bv = fragments->GetFragment(f).GetByteValue();
      if (!bv) continue;
      const auto* p = reinterpret_cast<const uint8_t*>(bv->GetPointer());
      const size_t n = bv->GetLength();
      for (size_t i = 0; i + 4 < n; ++i) {
        const uint8_t m = p[i + 1];
        if (p[i] != 0xFF || m < 0xC0 || m > 0xCF || m == 0xC4 || m == 0xC8 || m == 0xCC) continue;
        const unsigned precision = p[i + 4];
        if (precision < 2 || precision > 16)
          throw ScanError("JPEG data precision " + std::to_string(precision) + " is not supported (2 to 16 bits; " +
                          known->name + ")");
      }
    }
  }
  std::vector<char> raw(image.GetBufferLength());
  bool decoded = false;
  try {
    decoded = !raw.empty() && gdcm_call([&] { return image.GetBuffer(raw.data()); });
  } catch (const std::exception&) {
    decoded = false;
  }
  if (!decoded) throw ScanError("could not decode the pixel data (" + std::string(known->name) + ")");
  // GDCM upsamples native YBR_FULL_422 to three samples per pixel.
  const size_t needed = frame_pixels * frames * samples * bytes_per_sample;
  if (raw.size() < needed)
    throw ScanError("decoded pixel data is " + std::to_string(raw.size()) + " bytes, " + std::to_string(needed) +
                    " expected (" + std::string(known->name) + ")");

  // Rescale Slope/Intercept from the file itself (GDCM ignores them for some SOP classes).
  double slope = 1, intercept = 0;
  const std::vector<double> rs = numbers(ds, 0x0028, 0x1053), ri = numbers(ds, 0x0028, 0x1052);
  if (!rs.empty() && rs[0] != 0) slope = rs[0];
  else if (image.GetSlope() != 0) slope = image.GetSlope();
  if (!ri.empty()) intercept = ri[0];
  else intercept = image.GetIntercept();

  // One sample as an integer: masked to BitsStored below HighBit, sign-extended when signed.
  const unsigned shift = high + 1 - stored;
  const uint64_t mask = stored >= 64 ? ~uint64_t{0} : (uint64_t{1} << stored) - 1;
  auto sample = [&](size_t index) -> double {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(raw.data()) + index * bytes_per_sample;
    uint64_t v = 0;
    if (bytes_per_sample == 1) v = p[0];
    else if (bytes_per_sample == 2) { uint16_t x; std::memcpy(&x, p, 2); v = x; }
    else { uint32_t x; std::memcpy(&x, p, 4); v = x; }
    v = (v >> shift) & mask;
    if (is_signed && stored < 64 && (v >> (stored - 1)) & 1) return static_cast<double>(static_cast<int64_t>(v | ~mask));
    return static_cast<double>(v);
  };

  Volume& vol = obj.volume;
  vol.source = name;
  vol.voxels.resize(frame_pixels * frames);
  const bool planar = image.GetPlanarConfiguration() == 1 && !ybr422_native;
  const bool rgb = samples == 3 && decoded_as_rgb(photometric);
  for (size_t f = 0; f < frames; ++f)
    for (size_t i = 0; i < frame_pixels; ++i) {
      double x;
      if (samples == 1) {
        x = sample(f * frame_pixels + i);
      } else {
        const size_t base = f * frame_pixels * 3;
        auto channel = [&](size_t c) { return planar ? sample(base + c * frame_pixels + i) : sample(base + i * 3 + c); };
        // RGB -> grey with stb_image's weights (a colour DICOM greys like the same colour PNG);
        // YBR: luma is the first channel.
        x = rgb ? std::floor((77 * channel(0) + 150 * channel(1) + 29 * channel(2)) / 256) : channel(0);
      }
      // A huge Rescale Slope can take a value past float's range (an undefined conversion).
      const double y = samples == 1 ? x * slope + intercept : x;
      constexpr double kFloatMax = std::numeric_limits<float>::max();
      vol.voxels[f * frame_pixels + i] = static_cast<float>(std::clamp(y, -kFloatMax, kFloatMax));
    }

  ScanInfo& info = vol.info;
  info.format = "DICOM";
  info.transfer_syntax = syntax + " (" + known->name + ")";
  const bool utf8 = text(ds, 0x0008, 0x0005).find("ISO_IR 192") != std::string::npos;
  info.modality = display_utf8(text(ds, 0x0008, 0x0060), utf8);
  info.series_description = display_utf8(text(ds, 0x0008, 0x103E), utf8);
  info.photometric = photometric;
  info.inverted = photometric == "MONOCHROME1";
  info.data_type = std::string(is_signed ? "int" : "uint") + std::to_string(allocated) + " (" +
                   std::to_string(stored) + " bits stored" + (samples == 3 ? ", colour" : "") + ")";
  info.width = columns;
  info.height = rows;
  info.slices = frames;
  const std::vector<double> ps = numbers(ds, 0x0028, 0x0030);
  if (ps.size() == 2) {
    info.spacing[0] = ps[1];  // Pixel Spacing is row spacing \ column spacing
    info.spacing[1] = ps[0];
  } else {
    info.spacing[0] = image.GetSpacing(0);
    info.spacing[1] = image.GetSpacing(1);
  }
  const std::vector<double> thickness = numbers(ds, 0x0018, 0x0050);
  if (!thickness.empty()) info.slice_thickness = thickness[0];
  const std::vector<double> between = numbers(ds, 0x0018, 0x0088);
  if (frames > 1) info.spacing[2] = !between.empty() ? between[0] : image.GetSpacing(2);
  if (samples == 1 && (slope != 1 || intercept != 0))
    info.notes.push_back("rescaled: value x " + std::to_string(slope) + " + " + std::to_string(intercept));

  const std::vector<double> centers = numbers(ds, 0x0028, 0x1050), widths = numbers(ds, 0x0028, 0x1051);
  if (!centers.empty() && !widths.empty() && widths[0] > 0) {
    Window w{centers[0], widths[0], WindowFunction::linear};
    const std::string function = text(ds, 0x0028, 0x1056);
    if (function == "LINEAR_EXACT") w.function = WindowFunction::linear_exact;
    else if (function == "SIGMOID") w.function = WindowFunction::sigmoid;
    else if (!function.empty() && function != "LINEAR")
      info.notes.push_back("VOI LUT function " + display_utf8(function, utf8) + " is not supported: LINEAR used");
    info.file_window = w;
  }

  obj.series_uid = text(ds, 0x0020, 0x000E);
  const std::vector<double> iop = numbers(ds, 0x0020, 0x0037), ipp = numbers(ds, 0x0020, 0x0032);
  if (iop.size() == 6) obj.orientation = std::array<double, 6>{iop[0], iop[1], iop[2], iop[3], iop[4], iop[5]};
  if (ipp.size() == 3) obj.position = std::array<double, 3>{ipp[0], ipp[1], ipp[2]};
  const std::vector<double> instance = numbers(ds, 0x0020, 0x0013);
  if (!instance.empty()) obj.instance_number = static_cast<long>(instance[0]);
  finish_intensity(vol);
  return obj;
}

Volume read_dicom(std::span<const uint8_t> bytes, std::string name) {
  DicomObject obj = read_dicom_object(bytes, std::move(name));
  if (obj.is_directory) throw ScanError("a DICOMDIR (media directory) holds no image");
  return std::move(obj.volume);
}

}  // namespace nl::scans
