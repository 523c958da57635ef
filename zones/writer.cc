// Zone-file text from a ZoneContent, and atomic file replacement. The native formatting below
// mirrors the loader's native conversions (loader.cc nativeRdata) in reverse; every other type goes
// through ldns and is checked by reading it back. Control thread only.
#include "zones/writer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/file.h"

namespace meridian::zones {

using core::errnoText;
using core::finishReplace;
using core::writeAll;

namespace {

constexpr uint16_t kSpf = 99;   // RFC 7208 §3.1: TXT's format
constexpr uint16_t kCaa = 257;  // RFC 8659 §4.1

// Length of the uncompressed name at rd[pos], or 0 if it does not end inside rd.
size_t nameAt(std::span<const uint8_t> rd, size_t pos) {
  size_t p = pos;
  while (p < rd.size()) {
    const uint8_t len = rd[p];
    if (len == 0) return p + 1 - pos;
    if (len > 63) return 0;
    p += 1 + len;
  }
  return 0;
}

void putDecimal(std::string& out, uint64_t v) {
  out += std::to_string(v);
}

uint32_t readBe(std::span<const uint8_t> rd, size_t pos, size_t octets) {
  uint32_t v = 0;
  for (size_t k = 0; k < octets; ++k) v = v << 8 | rd[pos + k];
  return v;
}

// One <character-string> body (RFC 1035 §5.1), quoted.
void putQuoted(std::string& out, std::span<const uint8_t> s) {
  out.push_back('"');
  for (const uint8_t c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c > 0x7E) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void putGeneric(std::string& out, std::span<const uint8_t> rd) {
  // RFC 3597 §5; hex in groups of 64 digits, so no token is very long.
  static const char* kHex = "0123456789abcdef";
  out += "\\# ";
  putDecimal(out, rd.size());
  for (size_t k = 0; k < rd.size(); ++k) {
    if (k % 32 == 0) out.push_back(' ');
    out.push_back(kHex[rd[k] >> 4]);
    out.push_back(kHex[rd[k] & 15]);
  }
}

// The fields of the common types; false when the RDATA is not well formed for its type (then the
// generic form is written).
bool putNative(std::string& out, uint16_t type, std::span<const uint8_t> rd) {
  auto name = [&](size_t pos, size_t& len) {
    len = nameAt(rd, pos);
    if (len == 0) return false;
    out += dns::toText(rd.data() + pos);
    return true;
  };
  size_t len = 0;
  switch (type) {
    case dns::rrtype::kA:
    case dns::rrtype::kAAAA: {
      const bool v4 = type == dns::rrtype::kA;
      if (rd.size() != (v4 ? 4u : 16u)) return false;
      char text[INET6_ADDRSTRLEN];
      if (::inet_ntop(v4 ? AF_INET : AF_INET6, rd.data(), text, sizeof text) == nullptr) {
        return false;
      }
      out += text;
      return true;
    }
    case dns::rrtype::kNS:
    case dns::rrtype::kCNAME:
    case dns::rrtype::kDNAME:
    case dns::rrtype::kPTR:
      return name(0, len) && len == rd.size();
    case dns::rrtype::kMX:
      if (rd.size() < 3) return false;
      putDecimal(out, readBe(rd, 0, 2));
      out.push_back(' ');
      return name(2, len) && 2 + len == rd.size();
    case dns::rrtype::kSRV:
      if (rd.size() < 7) return false;
      for (size_t k = 0; k < 3; ++k) {
        putDecimal(out, readBe(rd, 2 * k, 2));
        out.push_back(' ');
      }
      return name(6, len) && 6 + len == rd.size();
    case dns::rrtype::kSOA: {
      size_t len2 = 0;
      if (!name(0, len)) return false;
      out.push_back(' ');
      if (!name(len, len2) || len + len2 + 20 != rd.size()) return false;
      for (size_t k = 0; k < 5; ++k) {
        out.push_back(' ');
        putDecimal(out, readBe(rd, len + len2 + 4 * k, 4));
      }
      return true;
    }
    case dns::rrtype::kTXT:
    case kSpf: {
      if (rd.empty()) return false;
      for (size_t p = 0; p < rd.size();) {
        const size_t n = rd[p];
        if (p + 1 + n > rd.size()) return false;
        if (p > 0) out.push_back(' ');
        putQuoted(out, rd.subspan(p + 1, n));
        p += 1 + n;
      }
      return true;
    }
    case kCaa: {
      // flags, tag (letters and digits, RFC 8659 §4.1), value.
      if (rd.size() < 2 || rd[1] == 0 || 2u + rd[1] > rd.size()) return false;
      const size_t tag = rd[1];
      for (size_t k = 0; k < tag; ++k) {
        if (std::isalnum(rd[2 + k]) == 0) return false;
      }
      putDecimal(out, rd[0]);
      out.push_back(' ');
      out.append(reinterpret_cast<const char*>(rd.data() + 2), tag);
      out.push_back(' ');
      putQuoted(out, rd.subspan(2 + tag));
      return true;
    }
    default:
      return false;
  }
}

bool isNative(uint16_t type) {
  switch (type) {
    case dns::rrtype::kA:
    case dns::rrtype::kAAAA:
    case dns::rrtype::kNS:
    case dns::rrtype::kCNAME:
    case dns::rrtype::kDNAME:
    case dns::rrtype::kPTR:
    case dns::rrtype::kMX:
    case dns::rrtype::kSRV:
    case dns::rrtype::kSOA:
    case dns::rrtype::kTXT:
    case kSpf:
    case kCaa:
      return true;
    default:
      return false;
  }
}

bool knownToLdns(uint16_t type) {
  const ldns_rr_descriptor* d = ldns_rr_descript(type);
  return d != nullptr && d->_type == type && d->_name != nullptr;
}

// ldns's presentation of the RDATA, kept only if ldns reads it back to the same octets.
bool putLdns(std::string& out, uint16_t type, std::span<const uint8_t> rd) {
  if (!knownToLdns(type) || rd.size() > 65535) return false;
  std::vector<uint8_t> wire(2 + rd.size());
  dns::writeU16(wire.data(), static_cast<uint16_t>(rd.size()));
  std::copy(rd.begin(), rd.end(), wire.begin() + 2);
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_type(rr, static_cast<ldns_rr_type>(type));
  size_t pos = 0;
  bool ok = ldns_wire2rdf(rr, wire.data(), wire.size(), &pos) == LDNS_STATUS_OK &&
            pos == wire.size() && ldns_rr_rd_count(rr) > 0;
  std::string text;
  if (ok) {
    ldns_buffer* buf = ldns_buffer_new(rd.size() * 2 + 64);
    for (size_t k = 0; k < ldns_rr_rd_count(rr) && ok; ++k) {
      if (k > 0) ldns_buffer_printf(buf, " ");
      ok = ldns_rdf2buffer_str(buf, ldns_rr_rdf(rr, k)) == LDNS_STATUS_OK;
    }
    ok = ok && ldns_buffer_status_ok(buf);
    if (ok) {
      text.assign(reinterpret_cast<const char*>(ldns_buffer_begin(buf)), ldns_buffer_position(buf));
      while (!text.empty() && text.back() == ' ') text.pop_back();  // ldns ends bitmaps with one
    }
    ldns_buffer_free(buf);
  }
  ldns_rr_free(rr);
  if (!ok) return false;
  // Read back as the loader's ldns path does.
  std::string line = ". 0 IN " + typeToText(type) + " " + text;
  ldns_rr* back = nullptr;
  if (ldns_rr_new_frm_str(&back, line.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) {
    return false;
  }
  ldns_buffer* again = ldns_buffer_new(rd.size() + 16);
  const bool same = ldns_rr_rdata2buffer_wire(again, back) == LDNS_STATUS_OK &&
                    ldns_buffer_position(again) == rd.size() &&
                    std::equal(rd.begin(), rd.end(), ldns_buffer_begin(again));
  ldns_buffer_free(again);
  ldns_rr_free(back);
  if (same) out += text;
  return same;
}

// Labels of `owner` before the apex's (which it ends with), as relative presentation text; "@" for
// the apex itself. Empty when the owner's spelling of the apex part differs from `origin`'s (the
// owner is then written absolute, to keep its case).
std::string relativeOwner(const uint8_t* owner, size_t owner_length, const uint8_t* origin,
                          size_t origin_length) {
  if (owner_length < origin_length ||
      std::memcmp(owner + owner_length - origin_length, origin, origin_length) != 0) {
    return {};
  }
  if (owner_length == origin_length) return "@";
  // The suffix must start at a label boundary.
  size_t p = 0;
  while (p < owner_length - origin_length) p += 1 + owner[p];
  if (p != owner_length - origin_length) return {};
  uint8_t head[dns::kMaxNameLength];
  std::memcpy(head, owner, p);
  head[p] = 0;
  std::string text = dns::toText(head);
  text.pop_back();  // the trailing dot: relative
  return text;
}

}  // namespace

bool nativeText(uint16_t type) {
  return isNative(type);
}

std::string typeToText(uint16_t type) {
  if (knownToLdns(type)) return ldns_rr_descript(type)->_name;
  return "TYPE" + std::to_string(type);
}

std::string rdataToText(uint16_t type, std::span<const uint8_t> rdata) {
  std::string out;
  if (isNative(type) ? putNative(out, type, rdata) : putLdns(out, type, rdata)) return out;
  out.clear();
  putGeneric(out, rdata);
  return out;
}

std::string zoneText(const ZoneContent& content) {
  std::string out;
  out.reserve(content.recordCount() * 48 + 256);
  // $ORIGIN spelled as the apex's SOA owner is (relative owners then keep their case).
  const uint8_t* origin = content.apex().data;
  size_t origin_length = content.apex().length;
  if (auto soa = content.find(content.apex().data, dns::rrtype::kSOA)) {
    origin = soa->owner();
    origin_length = soa->ownerLength();
  }
  out += "; Zone ";
  out += content.origin();
  if (auto serial = content.serial()) out += " serial " + std::to_string(*serial);
  out +=
      ", written by Meridian. Regenerated from the zone's content: comments and layout are not "
      "kept.\n$ORIGIN ";
  out += dns::toText(origin);
  out.push_back('\n');
  const uint8_t* previous = nullptr;
  size_t previous_length = 0;
  for (size_t i = 0; i < content.rrsetCount(); ++i) {
    const auto rs = content.rrset(i);
    std::string owner = relativeOwner(rs.owner(), rs.ownerLength(), origin, origin_length);
    if (owner.empty()) owner = rs.ownerText();
    const std::string type = typeToText(rs.type());
    const std::string ttl = std::to_string(rs.ttl());
    for (auto rd : rs.rdata()) {
      // A blank owner repeats the previous record's (RFC 1035 §5.1), spelling included.
      const bool same = previous != nullptr && previous_length == rs.ownerLength() &&
                        std::memcmp(previous, rs.owner(), previous_length) == 0;
      if (!same) out += owner;
      out.push_back('\t');
      out += ttl;
      out += "\tIN\t";
      out += type;
      out.push_back('\t');
      out += rdataToText(rs.type(), rd);
      out.push_back('\n');
      previous = rs.owner();
      previous_length = rs.ownerLength();
    }
  }
  return out;
}

Result<void> writeFileAtomic(const std::string& path_in, std::string_view data) {
  std::string path = path_in;
  struct stat st {};
  bool exists = ::lstat(path.c_str(), &st) == 0;
  if (exists && S_ISLNK(st.st_mode)) {
    // Replace the link's target, not the link.
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) return Error{errnoText("cannot resolve", path)};
    path = real;
    std::free(real);
    exists = ::stat(path.c_str(), &st) == 0;
  }
  if (exists && !S_ISREG(st.st_mode)) return Error{path + ": not a regular file"};
  const std::filesystem::path target(path);
  // Built with constructors and append(), not `dir = "."` or a chain of +: GCC 12 at -O3
  // misreports those as an overlapping memcpy (-Wrestrict false positive; Release build).
  const std::string parent = target.parent_path().string();
  const std::string dir = parent.empty() ? std::string(1, '.') : parent;
  std::string tmp = dir;
  tmp.append("/.").append(target.filename().string()).append(".tmp.XXXXXX");
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Error{errnoText("cannot create a temporary file in", dir)};
  auto fail = [&](const std::string& what) -> Result<void> {
    Error e{errnoText(what, tmp)};
    ::close(fd);
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd, exists ? (st.st_mode & 07777) : 0644) != 0) return fail("cannot chmod");
  if (!writeAll(fd, data.data(), data.size())) return fail("cannot write");
  if (auto r = finishReplace(fd, tmp, path); !r) return r;
  // The rename is durable once the directory is.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Error{errnoText("cannot open directory", dir)};
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return Error{errnoText("cannot fsync directory", dir)};
  return {};
}

Result<void> writeZoneFile(const ZoneContent& content, const std::string& path) {
  return writeFileAtomic(path, zoneText(content));
}

}  // namespace meridian::zones
