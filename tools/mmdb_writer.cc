// MaxMind DB writer (see mmdb_writer.h). Section numbers below refer to the MaxMind DB File Format
// Specification v2.0 (https://maxmind.github.io/MaxMind-DB/).
//
// How it is built:
//   * add() walks a binary trie of 8-byte nodes (two tagged 32-bit records each), splitting leaves
//     on the way down and overwriting the record at the network's depth, and encodes the record
//     into the data section right away, once per distinct record.
//   * write() numbers the reachable nodes in pre-order (the root is node 0, as the spec requires),
//     picks the record size, and streams tree, separator, data section and metadata to a
//     temporary file that is renamed over the target.
// 200k IPv4 /24s make about 1.5M trie nodes (12 MB) and a few MB of data section.

#include "tools/mmdb_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <ctime>
#include <fstream>
#include <string_view>

#include "core/file.h"

namespace meridian::tools {

using core::errnoText;
using core::finishReplace;
using core::writeAll;

namespace {

using Bits = std::array<uint8_t, 16>;

// Trie record tags. Node indices stay below kDataTag, which limits the trie to 2^31 nodes and the
// data section to 2^31 - 2 bytes, both far beyond what a 32-bit record size could address anyway.
constexpr uint32_t kDataTag = 0x80000000u;
constexpr uint32_t kAlias = 0xFFFFFFFEu;  // "the IPv4 subtree", resolved in write()
constexpr uint32_t kEmpty = 0xFFFFFFFFu;
constexpr uint32_t kMaxDataOffset = kAlias - kDataTag - 1;

bool isNode(uint32_t ref) {
  return ref < kDataTag;
}

// §Data Field Format: type numbers.
enum class Type : uint8_t {
  kPointer = 1,
  kString = 2,
  kDouble = 3,
  kUint16 = 5,
  kUint32 = 6,
  kMap = 7,
  kUint64 = 9,
  kArray = 11,
};

// The metadata marker (§Database Metadata): the last occurrence in the file starts the metadata.
constexpr std::string_view kMetadataMarker("\xAB\xCD\xEFMaxMind.com", 14);
// §Data Section Separator: 16 zero bytes between tree and data.
constexpr size_t kSeparatorSize = 16;
// §Database Metadata: the metadata, marker included, may not exceed 128 KiB.
constexpr size_t kMaxMetadataSize = size_t{128} * 1024;

// Map keys, written once at the start of the data section and referenced by pointers.
constexpr const char* kKeys[] = {
    "meridian_region", "country",   "iso_code",
    "continent",       "code",      "location",
    "latitude",        "longitude", "autonomous_system_number",
};

// §Payload Size: control byte (type in the top 3 bits, or 0 plus an extended type byte), then the
// size in the low 5 bits, with 1-3 extra bytes for sizes of 29 and up.
void appendControl(std::string& out, Type type, size_t size) {
  const auto t = static_cast<uint8_t>(type);
  uint8_t ctrl = t <= 7 ? static_cast<uint8_t>(t << 5) : 0;
  uint8_t extra[3];
  size_t extra_len = 0;
  if (size < 29) {
    ctrl |= static_cast<uint8_t>(size);
  } else if (size < 29 + 256) {
    ctrl |= 29;
    extra[0] = static_cast<uint8_t>(size - 29);
    extra_len = 1;
  } else if (size < 285 + 65536) {
    ctrl |= 30;
    const size_t v = size - 285;
    extra[0] = static_cast<uint8_t>(v >> 8);
    extra[1] = static_cast<uint8_t>(v);
    extra_len = 2;
  } else {
    ctrl |= 31;
    const size_t v = size - 65821;
    extra[0] = static_cast<uint8_t>(v >> 16);
    extra[1] = static_cast<uint8_t>(v >> 8);
    extra[2] = static_cast<uint8_t>(v);
    extra_len = 3;
  }
  out.push_back(static_cast<char>(ctrl));
  if (t > 7) out.push_back(static_cast<char>(t - 7));
  out.append(reinterpret_cast<const char*>(extra), extra_len);
}

size_t controlLength(size_t size) {
  return size < 29 ? 1 : size < 285 ? 2 : size < 65821 ? 3 : 4;
}

void appendInlineString(std::string& out, std::string_view s) {
  appendControl(out, Type::kString, s.size());
  out.append(s);
}

// Unsigned integers use as few big-endian bytes as the value needs (§integer formats).
void appendUint(std::string& out, Type type, uint64_t v) {
  const size_t bytes = (std::bit_width(v) + 7) / 8;
  appendControl(out, type, bytes);
  for (size_t i = bytes; i-- > 0;) out.push_back(static_cast<char>(v >> (8 * i)));
}

void appendDouble(std::string& out, double d) {
  appendControl(out, Type::kDouble, 8);
  const auto v = std::bit_cast<uint64_t>(d);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// §Pointers: 001SSVVV; SS selects 11, 19 (+2048), 27 (+526336) or 32 value bits.
constexpr uint32_t kPointerBase1 = 2048;
constexpr uint32_t kPointerBase2 = 526336;
constexpr uint32_t kPointerBase3 = kPointerBase2 + (1u << 27);

size_t pointerLength(uint32_t offset) {
  return offset < kPointerBase1 ? 2 : offset < kPointerBase2 ? 3 : offset < kPointerBase3 ? 4 : 5;
}

void appendPointer(std::string& out, uint32_t offset) {
  const uint8_t type = static_cast<uint8_t>(Type::kPointer) << 5;
  if (offset < kPointerBase1) {
    out.push_back(static_cast<char>(type | (offset >> 8)));
    out.push_back(static_cast<char>(offset));
  } else if (offset < kPointerBase2) {
    const uint32_t v = offset - kPointerBase1;
    out.push_back(static_cast<char>(type | 0x08 | (v >> 16)));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
  } else if (offset < kPointerBase3) {
    const uint32_t v = offset - kPointerBase2;
    out.push_back(static_cast<char>(type | 0x10 | (v >> 24)));
    out.push_back(static_cast<char>(v >> 16));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
  } else {
    out.push_back(static_cast<char>(type | 0x18));
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(offset >> (8 * i)));
  }
}

// §UTF-8 string: the payload must be valid UTF-8 (no overlongs, surrogates or values past
// U+10FFFF).
bool validUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool bitAt(const Bits& key, unsigned depth) {
  return (key[depth / 8] >> (7 - depth % 8)) & 1;
}

// True when the network key/prefix lies inside (or equals) net/len.
bool inside(const Bits& key, unsigned prefix, const Bits& net, unsigned len) {
  if (prefix < len) return false;
  for (unsigned d = 0; d < len; ++d)
    if (bitAt(key, d) != bitAt(net, d)) return false;
  return true;
}

// The alias ranges of the IPv6 tree (§IPv4 addresses in an IPv6 tree).
constexpr Bits kMappedNet = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0};
constexpr unsigned kMappedLen = 96;
constexpr Bits kSixToFourNet = {0x20, 0x02};
constexpr unsigned kSixToFourLen = 16;

std::string networkText(const MmdbNetwork& n) {
  return n.address.to_string() + "/" + std::to_string(n.prefix);
}

// Big-endian record writer for one node (§Node Layout).
void appendNode(std::string& out, unsigned record_size, uint32_t left, uint32_t right) {
  switch (record_size) {
    case 24:
      for (uint32_t v : {left, right}) {
        out.push_back(static_cast<char>(v >> 16));
        out.push_back(static_cast<char>(v >> 8));
        out.push_back(static_cast<char>(v));
      }
      break;
    case 28:
      // | left 23..0 | left 27..24 , right 27..24 | right 23..0 |
      out.push_back(static_cast<char>(left >> 16));
      out.push_back(static_cast<char>(left >> 8));
      out.push_back(static_cast<char>(left));
      out.push_back(static_cast<char>(((left >> 20) & 0xF0) | ((right >> 24) & 0x0F)));
      out.push_back(static_cast<char>(right >> 16));
      out.push_back(static_cast<char>(right >> 8));
      out.push_back(static_cast<char>(right));
      break;
    default:
      for (uint32_t v : {left, right})
        for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
      break;
  }
}

}  // namespace

size_t MmdbWriter::SpanHash::operator()(const Span& s) const {
  return std::hash<std::string_view>{}(std::string_view(*data).substr(s.offset, s.length));
}

bool MmdbWriter::SpanEq::operator()(const Span& a, const Span& b) const {
  const std::string_view d(*data);
  return d.substr(a.offset, a.length) == d.substr(b.offset, b.length);
}

MmdbWriter::MmdbWriter(std::string database_type, unsigned ip_version)
    : database_type_(std::move(database_type)),
      ip_version_(ip_version == 4 ? 4 : 6),
      data_(std::make_unique<std::string>()),
      records_(0, SpanHash{data_.get()}, SpanEq{data_.get()}) {
  nodes_.push_back(Node{{kEmpty, kEmpty}});
  for (const char* key : kKeys) internString(key);
  if (ip_version_ == 6) installAliases();
}

// Returns the record slot that covers key/depth (depth ≥ 1), creating nodes on the way: a leaf
// met above that depth becomes a node whose two records both carry the leaf, so the rest of
// its range keeps its old value.
MmdbWriter::Ref* MmdbWriter::descend(const Bits& key, unsigned depth) {
  uint32_t node = 0;
  for (unsigned d = 0; d + 1 < depth; ++d) {
    const bool b = bitAt(key, d);
    const Ref r = nodes_[node].child[b];
    if (isNode(r)) {
      node = r;
      continue;
    }
    const auto fresh = static_cast<uint32_t>(nodes_.size());
    nodes_.push_back(Node{{r, r}});
    nodes_[node].child[b] = fresh;
    node = fresh;
  }
  return &nodes_[node].child[bitAt(key, depth - 1)];
}

void MmdbWriter::installAliases() {
  *descend(kMappedNet, kMappedLen) = kAlias;
  *descend(kSixToFourNet, kSixToFourLen) = kAlias;
}

uint32_t MmdbWriter::internString(const std::string& s) {
  const auto [it, fresh] = strings_.try_emplace(s, static_cast<uint32_t>(data_->size()));
  if (fresh) appendInlineString(*data_, s);
  return it->second;
}

// A string value: a pointer to its single copy when that is shorter than the string itself. The
// choice depends only on the string (its copy's offset never changes), so equal records encode
// to equal bytes and the byte-level dedup in internRecord() finds them.
void MmdbWriter::appendString(std::string& out, const std::string& s) {
  if (controlLength(s.size()) + s.size() <= 2) {  // no pointer is shorter than 2 bytes
    appendInlineString(out, s);
    return;
  }
  const uint32_t offset = internString(s);
  if (pointerLength(offset) < controlLength(s.size()) + s.size()) {
    appendPointer(out, offset);
  } else {
    appendInlineString(out, s);
  }
}

Result<uint32_t> MmdbWriter::internRecord(const MmdbRecord& rec) {
  std::string out;
  const bool has_location = rec.latitude || rec.longitude;
  const size_t pairs = !rec.region.empty() + !rec.country_iso.empty() +
                       !rec.continent_code.empty() + has_location + rec.asn.has_value() +
                       !rec.registered_country_iso.empty() + !rec.subdivisions.empty();
  appendControl(out, Type::kMap, pairs);
  // Keys outside kKeys (registered_country, subdivisions) are interned when first used, so
  // databases without them come out byte for byte as before.
  auto key = [&](const char* k) { appendPointer(out, internString(k)); };
  if (!rec.region.empty()) {
    key("meridian_region");
    appendString(out, rec.region);
  }
  if (!rec.country_iso.empty()) {
    key("country");
    appendControl(out, Type::kMap, 1);
    key("iso_code");
    appendString(out, rec.country_iso);
  }
  if (!rec.continent_code.empty()) {
    key("continent");
    appendControl(out, Type::kMap, 1);
    key("code");
    appendString(out, rec.continent_code);
  }
  if (has_location) {
    key("location");
    appendControl(out, Type::kMap,
                  static_cast<size_t>(rec.latitude.has_value()) +
                      static_cast<size_t>(rec.longitude.has_value()));
    if (rec.latitude) {
      key("latitude");
      appendDouble(out, *rec.latitude);
    }
    if (rec.longitude) {
      key("longitude");
      appendDouble(out, *rec.longitude);
    }
  }
  if (rec.asn) {
    key("autonomous_system_number");
    appendUint(out, Type::kUint32, *rec.asn);
  }
  if (!rec.registered_country_iso.empty()) {
    key("registered_country");
    appendControl(out, Type::kMap, 1);
    key("iso_code");
    appendString(out, rec.registered_country_iso);
  }
  if (!rec.subdivisions.empty()) {
    key("subdivisions");
    appendControl(out, Type::kArray, rec.subdivisions.size());
    for (const std::string& sub : rec.subdivisions) {
      appendControl(out, Type::kMap, 1);
      key("iso_code");
      appendString(out, sub);
    }
  }

  // Append, then look the bytes up; a duplicate is cut off again.
  std::string& data = *data_;
  const size_t offset = data.size();
  if (offset + out.size() > kMaxDataOffset) return Error{"MMDB data section would exceed 2 GiB"};
  data.append(out);
  const auto [it, fresh] =
      records_.insert(Span{static_cast<uint32_t>(offset), static_cast<uint32_t>(out.size())});
  if (!fresh) data.resize(offset);
  return it->offset;
}

Result<void> MmdbWriter::add(const MmdbNetwork& net) {
  const unsigned max_prefix = net.address.is_v4() ? 32 : 128;
  if (net.prefix > max_prefix) {
    return Error{"prefix of " + networkText(net) + " is out of range (0-" +
                 std::to_string(max_prefix) + ")"};
  }

  // The address bytes and the depth in our tree.
  Bits key{};
  unsigned depth = net.prefix;
  bool v4 = net.address.is_v4();
  if (v4) {
    const auto b = net.address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), key.begin());
  } else {
    const auto b = net.address.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), key.begin());
  }
  for (unsigned d = net.prefix; d < max_prefix; ++d) {
    if (bitAt(key, d)) {
      return Error{"network " + networkText(net) + " has host bits set after the prefix"};
    }
  }
  if (!v4 && net.prefix >= kMappedLen && inside(key, net.prefix, kMappedNet, kMappedLen)) {
    // ::ffff:a.b.c.d/96+n is a.b.c.d/n: store it where IPv4 lookups find it.
    std::copy(key.begin() + 12, key.end(), key.begin());
    std::fill(key.begin() + 4, key.end(), 0);
    depth = net.prefix - kMappedLen;
    v4 = true;
  }
  if (ip_version_ == 4 && !v4) {
    return Error{"network " + networkText(net) + " is IPv6 but the database is IPv4-only"};
  }
  if (ip_version_ == 6 && v4) {  // ::a.b.c.d/96+n (§IPv4 addresses in an IPv6 tree)
    std::copy(key.begin(), key.begin() + 4, key.begin() + 12);
    std::fill(key.begin(), key.begin() + 12, 0);
    depth += 96;
  }
  if (ip_version_ == 6 && inside(key, depth, kSixToFourNet, kSixToFourLen)) {
    return Error{"network " + networkText(net) +
                 " lies in 2002::/16, which aliases the IPv4 networks (6to4); add the IPv4 "
                 "network instead"};
  }
  for (const std::string* s : {&net.record.region, &net.record.country_iso,
                               &net.record.continent_code, &net.record.registered_country_iso}) {
    if (!validUtf8(*s)) return Error{"network " + networkText(net) + ": string is not UTF-8"};
  }
  for (const std::string& s : net.record.subdivisions) {
    if (!validUtf8(s)) return Error{"network " + networkText(net) + ": string is not UTF-8"};
  }
  for (const auto& c : {net.record.latitude, net.record.longitude}) {
    if (c && !std::isfinite(*c)) {
      return Error{"network " + networkText(net) + ": coordinate is not a finite number"};
    }
  }

  auto offset = internRecord(net.record);
  if (!offset) return offset.error();
  const Ref leaf = kDataTag | *offset;
  if (depth == 0) {
    nodes_[0] = Node{{leaf, leaf}};
  } else {
    *descend(key, depth) = leaf;
  }
  // A network that covers an alias range overwrote it; put the alias back on top.
  if (ip_version_ == 6 && (inside(kMappedNet, kMappedLen, key, depth) ||
                           inside(kSixToFourNet, kSixToFourLen, key, depth))) {
    installAliases();
  }
  ++network_count_;
  return {};
}

Result<void> MmdbWriter::write(const std::string& path) const {
  if (!validUtf8(database_type_) || !validUtf8(description_)) {
    return Error{"MMDB database type and description must be UTF-8"};
  }
  // Where the alias records point: whatever ::/96 resolves to (a node, data, or nothing).
  Ref v4_root = 0;
  if (ip_version_ == 6) {
    for (unsigned d = 0; d < 96; ++d) {
      v4_root = nodes_[v4_root].child[0];
      if (!isNode(v4_root)) break;
    }
  }
  auto resolve = [&](Ref r) { return r == kAlias ? v4_root : r; };

  // Number reachable nodes in pre-order; shared targets (the IPv4 subtree) once.
  constexpr uint32_t kUnnumbered = 0xFFFFFFFFu;
  std::vector<uint32_t> number(nodes_.size(), kUnnumbered);
  std::vector<uint32_t> order;  // new number → trie index
  std::vector<uint32_t> stack{0};
  while (!stack.empty()) {
    const uint32_t n = stack.back();
    stack.pop_back();
    if (number[n] != kUnnumbered) continue;
    number[n] = static_cast<uint32_t>(order.size());
    order.push_back(n);
    for (int side = 1; side >= 0; --side) {
      const Ref r = resolve(nodes_[n].child[side]);
      if (isNode(r) && number[r] == kUnnumbered) stack.push_back(r);
    }
  }
  const uint64_t node_count = order.size();
  const std::string& data = *data_;

  // §Node Layout: the smallest record size that holds the largest value, node_count + 16 +
  // the last data offset.
  const uint64_t max_value = node_count + kSeparatorSize + data.size();
  const unsigned record_size = max_value < (1ull << 24) ? 24 : max_value < (1ull << 28) ? 28 : 32;
  if (max_value >= (1ull << 32)) return Error{"MMDB too large for 32-bit records"};
  auto value = [&](Ref r) -> uint32_t {
    r = resolve(r);
    if (r == kEmpty) return static_cast<uint32_t>(node_count);
    if (isNode(r)) return number[r];
    return static_cast<uint32_t>(node_count + kSeparatorSize + (r & ~kDataTag));
  };

  // Metadata (§Database Metadata).
  std::string meta(kMetadataMarker);
  appendControl(meta, Type::kMap, 9);
  const auto put_key = [&](std::string_view k) { appendInlineString(meta, k); };
  put_key("binary_format_major_version");
  appendUint(meta, Type::kUint16, 2);
  put_key("binary_format_minor_version");
  appendUint(meta, Type::kUint16, 0);
  put_key("build_epoch");
  appendUint(meta, Type::kUint64,
             build_epoch_ ? *build_epoch_ : static_cast<uint64_t>(std::time(nullptr)));
  put_key("database_type");
  appendInlineString(meta, database_type_);
  put_key("description");
  appendControl(meta, Type::kMap, 1);
  put_key("en");
  appendInlineString(
      meta, description_.empty() ? "Meridian network map (" + database_type_ + ")" : description_);
  put_key("ip_version");
  appendUint(meta, Type::kUint16, ip_version_);
  put_key("languages");
  appendControl(meta, Type::kArray, 1);
  appendInlineString(meta, "en");
  put_key("node_count");
  appendUint(meta, Type::kUint32, node_count);
  put_key("record_size");
  appendUint(meta, Type::kUint16, record_size);
  if (meta.size() > kMaxMetadataSize) return Error{"MMDB metadata exceeds 128 KiB (description?)"};

  // Temp file next to the target, so the rename stays on one file system.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Error{errnoText("cannot create temporary file for", path)};
  auto fail = [&](const std::string& what) {
    Error e{errnoText(what, tmp)};
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, 0644) != 0) return fail("cannot chmod");

  // The tree, streamed through a 1 MiB buffer rather than built whole in memory.
  constexpr size_t kChunk = 1 << 20;
  std::string buf;
  buf.reserve(kChunk + 8);
  for (const uint32_t n : order) {
    appendNode(buf, record_size, value(nodes_[n].child[0]), value(nodes_[n].child[1]));
    if (buf.size() >= kChunk) {
      if (!writeAll(fd, buf.data(), buf.size())) return fail("cannot write");
      buf.clear();
    }
  }
  buf.append(kSeparatorSize, '\0');
  if (!writeAll(fd, buf.data(), buf.size()) || !writeAll(fd, data.data(), data.size()) ||
      !writeAll(fd, meta.data(), meta.size())) {
    return fail("cannot write");
  }
  if (auto r = finishReplace(fd, tmp, path); !r) return r;
  // Make the rename itself durable; a failure here leaves a complete file, so it is not an error.
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

// ---- CSV ----------------------------------------------------------------------------------------

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

Result<MmdbNetwork> parseCidr(std::string_view text) {
  const auto slash = text.find('/');
  const std::string addr(text.substr(0, slash));
  boost::system::error_code ec;
  MmdbNetwork n;
  n.address = boost::asio::ip::make_address(addr, ec);
  if (ec) return Error{"bad network '" + std::string(text) + "': not an IP address"};
  if (slash == std::string_view::npos) {  // a bare address is a single host
    n.prefix = n.address.is_v4() ? 32 : 128;
    return n;
  }
  const std::string_view p = text.substr(slash + 1);
  const auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), n.prefix);
  if (p.empty() || err != std::errc() || end != p.data() + p.size() ||
      n.prefix > (n.address.is_v4() ? 32u : 128u)) {
    return Error{"bad network '" + std::string(text) + "': bad prefix length"};
  }
  return n;
}

Result<std::optional<double>> parseCoordinate(std::string_view text, const char* what,
                                              double limit) {
  if (text.empty()) return std::optional<double>{};
  double v = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (err != std::errc() || end != text.data() + text.size() || !std::isfinite(v) ||
      std::fabs(v) > limit) {
    return Error{std::string("bad ") + what + " '" + std::string(text) + "' (want -" +
                 std::to_string(static_cast<int>(limit)) + ".." +
                 std::to_string(static_cast<int>(limit)) + ")"};
  }
  return std::optional<double>(v);
}

// One data line into a network, or an error without the file:line prefix.
Result<MmdbNetwork> parseLine(std::string_view line) {
  std::vector<std::string_view> f;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    f.push_back(trim(line.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  for (std::string_view field : f) {
    if (field.find('"') != std::string_view::npos) {
      return Error{"quoted fields are not supported (no field may contain a comma or a quote)"};
    }
  }
  if (f.size() > 7) {
    return Error{"too many fields (" + std::to_string(f.size()) +
                 "); want network,region,country,continent,latitude,longitude,asn"};
  }
  f.resize(7);

  auto net = parseCidr(f[0]);
  if (!net) return net.error();
  MmdbRecord& r = net->record;
  r.region = std::string(f[1]);

  if (!f[2].empty()) {
    if (f[2].size() != 2 || !std::isalpha(static_cast<unsigned char>(f[2][0])) ||
        !std::isalpha(static_cast<unsigned char>(f[2][1]))) {
      return Error{"bad country '" + std::string(f[2]) + "' (want an ISO 3166-1 alpha-2 code)"};
    }
    r.country_iso = upper(f[2]);
  }
  if (!f[3].empty()) {
    r.continent_code = upper(f[3]);
    static constexpr std::string_view kContinents[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};
    if (std::find(std::begin(kContinents), std::end(kContinents), r.continent_code) ==
        std::end(kContinents)) {
      return Error{"bad continent '" + std::string(f[3]) + "' (want AF AN AS EU NA OC SA)"};
    }
  }

  auto lat = parseCoordinate(f[4], "latitude", 90);
  if (!lat) return lat.error();
  auto lon = parseCoordinate(f[5], "longitude", 180);
  if (!lon) return lon.error();
  if (lat->has_value() != lon->has_value()) return Error{"latitude and longitude go together"};
  r.latitude = *lat;
  r.longitude = *lon;

  if (!f[6].empty()) {
    std::string_view a = f[6];
    if (a.size() > 2 && iequals(a.substr(0, 2), "AS")) a.remove_prefix(2);
    uint32_t asn = 0;
    const auto [end, err] = std::from_chars(a.data(), a.data() + a.size(), asn);
    if (a.empty() || err != std::errc() || end != a.data() + a.size()) {
      return Error{"bad asn '" + std::string(f[6]) +
                   "' (want 0-4294967295, optionally AS-prefixed)"};
    }
    r.asn = asn;
  }
  return net;
}

}  // namespace

Result<size_t> buildMmdbFromCsv(const std::string& csv_path, const std::string& out_path) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) return Error{errnoText("cannot open", csv_path)};

  MmdbWriter writer;
  std::string line;
  size_t lineno = 0;
  bool seen_data = false;
  while (std::getline(in, line)) {
    ++lineno;
    std::string_view l = line;
    if (lineno == 1 && l.starts_with("\xEF\xBB\xBF")) l.remove_prefix(3);  // UTF-8 BOM
    // '#' starts a comment, on a line of its own or after the fields (no field may contain one,
    // as none may contain a comma).
    l = trim(l.substr(0, l.find('#')));
    if (l.empty()) continue;
    const auto where = csv_path + ":" + std::to_string(lineno) + ": ";
    if (!seen_data && iequals(trim(l.substr(0, l.find(','))), "network")) {
      seen_data = true;  // the header, allowed only as the first non-comment line
      continue;
    }
    seen_data = true;
    auto net = parseLine(l);
    if (!net) return Error{where + net.error().message};
    if (auto added = writer.add(*net); !added) return Error{where + added.error().message};
  }
  if (in.bad()) return Error{errnoText("cannot read", csv_path)};
  if (writer.networkCount() == 0) return Error{csv_path + ": no networks"};
  if (auto written = writer.write(out_path); !written) return written.error();
  return writer.networkCount();
}

}  // namespace meridian::tools
