#include "zones/zone_builder.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "zones/lookup.h"

namespace meridian::zones {

using dns::rrtype::kA;
using dns::rrtype::kAAAA;

namespace {
constexpr uint16_t kNSEC3PARAM = 51;  // RFC 5155 §4
// RRset::rr_count and RFC 1035's ANCOUNT are 16 bits.
constexpr size_t kMaxRRsetSize = 0xFFFF;
}  // namespace

size_t compressibleNames(uint16_t type, const uint8_t* rdata, size_t rdlen, uint16_t pos[2]) {
  if (!dns::hasCompressibleNames(type) || rdlen == 0) return 0;
  switch (type) {
    case dns::rrtype::kMX:
      pos[0] = 2;
      return rdlen > 2 ? 1 : 0;
    case dns::rrtype::kSOA:
    case dns::rrtype::kMINFO:
      pos[0] = 0;
      pos[1] = static_cast<uint16_t>(dns::wireLength(rdata));
      return 2;
    default:
      pos[0] = 0;
      return 1;
  }
}

bool isMetaType(uint16_t type) {
  switch (type) {
    case dns::rrtype::kOPT:
    case dns::rrtype::kTSIG:
    case dns::rrtype::kTKEY:
    case dns::rrtype::kIXFR:
    case dns::rrtype::kAXFR:
    case dns::rrtype::kMAILB:
    case dns::rrtype::kMAILA:
    case dns::rrtype::kANY:
      return true;
    default:
      return false;
  }
}

int additionalTargetPos(uint16_t type) {
  switch (type) {
    case dns::rrtype::kNS:
      return 0;
    case dns::rrtype::kMX:
      return 2;
    case dns::rrtype::kSRV:
      return 6;  // RFC 2782: priority, weight, port, target
    default:
      return -1;
  }
}

ZoneBuilder::ZoneBuilder(const dns::NameBuf& apex, std::string source)
    : apex_(apex), source_(std::move(source)) {
  dns::lowercase(apex_);
}

void ZoneBuilder::addError(std::string message) {
  ++source_errors_;
  errors_.push_back(std::move(message));
}

std::string ZoneBuilder::where(const Record& r) const {
  if (r.line == 0) return files_[r.file];  // records without a line (built from a ZoneContent)
  return files_[r.file] + ":" + std::to_string(r.line);
}

void ZoneBuilder::add(const uint8_t* owner, uint16_t type, uint16_t klass, uint32_t ttl,
                      const uint8_t* rdata, size_t rdlen, std::string_view file, uint32_t line) {
  auto here = [&] {
    return line == 0 ? std::string(file) : std::string(file) + ":" + std::to_string(line);
  };
  dns::NameBuf name;
  size_t end = 0;
  const size_t owner_len = dns::wireLength(owner);
  if (dns::parseName(owner, owner_len, 0, name, &end) != dns::NameStatus::kOk) {
    return addError(here() + ": invalid owner name");
  }
  dns::lowercase(name);
  if (klass != dns::rrclass::kIN) return addError(here() + ": only class IN is supported");
  if (!dns::isSubdomain(name.data, name.length, apex_.data, apex_.length)) {
    early_warnings_.push_back(here() + ": " + dns::toText(name.data) + " is outside zone " +
                              dns::toText(apex_.data) + ", ignored");
    return;
  }
  if (isMetaType(type)) {
    return addError(here() + ": meta type cannot appear in a zone");
  }
  if (rdlen > maxRdataLength(name.length)) {
    // RR::length is 16 bits and a message is at most 65535 octets: such a record can never be sent.
    return addError(here() + ": RDATA of " + std::to_string(rdlen) +
                    " octets cannot fit in a DNS message (at most " +
                    std::to_string(maxRdataLength(name.length)) + " for this owner name)");
  }
  // One copy of each file name ($INCLUDE switches files; records of one file come in a run).
  if (files_.empty() || files_[last_file_] != file) {
    auto it = std::find(files_.begin(), files_.end(), file);
    if (it == files_.end()) it = files_.emplace(files_.end(), file);
    last_file_ = static_cast<uint32_t>(it - files_.begin());
  }
  Record r{};
  // The owner is shared with the previous record when equal (a name's records usually follow
  // each other).
  const std::string_view owner_view(reinterpret_cast<const char*>(name.data), name.length);
  if (!records_.empty() && ownerOf(records_.back()) == owner_view) {
    r.owner = records_.back().owner;
  } else {
    r.owner = data_.size();
    data_.insert(data_.end(), name.data, name.data + name.length);
  }
  r.owner_length = static_cast<uint8_t>(name.length);
  r.rdata = data_.size();
  data_.insert(data_.end(), rdata, rdata + rdlen);
  r.rdlen = static_cast<uint16_t>(rdlen);
  r.type = type;
  r.ttl = ttl;
  r.seq = static_cast<uint32_t>(records_.size());
  r.file = last_file_;
  r.line = line;
  records_.push_back(r);
}

namespace {
bool nameLess(std::string_view a, std::string_view b) {
  return compareNames(reinterpret_cast<const uint8_t*>(a.data()), a.size(),
                      reinterpret_cast<const uint8_t*>(b.data()), b.size()) < 0;
}
std::string text(std::string_view wire) {
  return dns::toText(reinterpret_cast<const uint8_t*>(wire.data()));
}
std::string_view parentOf(std::string_view wire) {
  return wire.substr(1 + static_cast<uint8_t>(wire[0]));
}
std::string lowerName(const uint8_t* p) {
  std::string s(reinterpret_cast<const char*>(p), dns::wireLength(p));
  for (auto& c : s) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  return s;
}

// FNV-1a over the record, finished with the SplitMix64 mixer so that summing record hashes (an
// order-independent combination) stays well distributed. Not cryptographic: it detects edits.
uint64_t recordHash(std::string_view owner, uint16_t type, uint32_t ttl, std::string_view rdata) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  };
  uint8_t head[8];
  dns::writeU16(head, type);
  dns::writeU32(head + 2, ttl);
  dns::writeU16(head + 6, static_cast<uint16_t>(rdata.size()));
  mix(owner.data(), owner.size());
  mix(head, sizeof head);
  mix(rdata.data(), rdata.size());
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// Mnemonic for messages (RFC 3597 TYPEnnn for the rest).
std::string typeText(uint16_t type) {
  switch (type) {
    case dns::rrtype::kA:
      return "A";
    case dns::rrtype::kNS:
      return "NS";
    case dns::rrtype::kCNAME:
      return "CNAME";
    case dns::rrtype::kSOA:
      return "SOA";
    case dns::rrtype::kPTR:
      return "PTR";
    case dns::rrtype::kMX:
      return "MX";
    case dns::rrtype::kTXT:
      return "TXT";
    case dns::rrtype::kAAAA:
      return "AAAA";
    case dns::rrtype::kSRV:
      return "SRV";
    case dns::rrtype::kDNAME:
      return "DNAME";
    case dns::rrtype::kDS:
      return "DS";
    default:
      return "TYPE" + std::to_string(type);
  }
}

bool isDnssecType(uint16_t type) {
  switch (type) {
    case dns::rrtype::kDNSKEY:
    case dns::rrtype::kRRSIG:
    case dns::rrtype::kNSEC:
    case dns::rrtype::kNSEC3:
    case kNSEC3PARAM:
      return true;
    default:
      return false;
  }
}

const char* dnssecTypeName(uint16_t type) {
  switch (type) {
    case dns::rrtype::kDNSKEY:
      return "DNSKEY";
    case dns::rrtype::kRRSIG:
      return "RRSIG";
    case dns::rrtype::kNSEC:
      return "NSEC";
    case dns::rrtype::kNSEC3:
      return "NSEC3";
    default:
      return "NSEC3PARAM";
  }
}
// The negative-answer SOA as putRRset writes it after a question for the apex itself, captured
// for replay after the question of any name in the zone (zones/lookup.h putNegativeSoa). Left
// empty (every answer takes putRRset) when the capture declines.
void captureNegativeSoa(const Zone& z, dns::ReplayRecord& out) {
  dns::Query q;
  size_t end = 0;
  if (dns::parseName(z.apex(), z.apexLength(), 0, q.qname, &end) != dns::NameStatus::kOk) return;
  q.qname_lower = q.qname;
  q.qtype = dns::rrtype::kSOA;
  q.qclass = dns::rrclass::kIN;
  q.has_question = true;
  uint8_t buf[dns::kHeaderSize + dns::kMaxNameLength + 4 + dns::ReplayRecord::kMaxLength];
  dns::ResponseWriter w;
  w.reset(buf, sizeof buf, 0);
  w.begin(q, true);
  const dns::ResponseWriter::Mark from = w.mark();
  if (!putRRset(z, z.negativeSoa(), z.apex(), w, dns::ResponseWriter::Section::kAuthority)) return;
  // The names as written: the owner, then MNAME and RNAME after TYPE, CLASS, TTL and RDLENGTH.
  uint16_t names_at[3] = {0, 0, 0};
  size_t pos = from.size;
  for (int i = 0; i < 3; ++i) {
    names_at[i] = static_cast<uint16_t>(pos - from.size);
    if (dns::skipName(buf, w.size(), pos, &pos) != dns::NameStatus::kOk) return;
    if (i == 0) pos += 10;
  }
  (void)w.capture(from, names_at, 3, out);
}

}  // namespace

Result<std::shared_ptr<const Zone>> ZoneBuilder::build(std::vector<std::string>& warnings) {
  warnings.insert(warnings.end(), early_warnings_.begin(), early_warnings_.end());
  const std::string apex(reinterpret_cast<const char*>(apex_.data), apex_.length);
  // Errors found here, keyed by the offending record's position in the input so that they are
  // reported in file order (zone-level ones last), after the source's own.
  std::vector<std::pair<uint32_t, std::string>> found;
  auto fail = [&found](uint32_t seq, std::string message) {
    found.emplace_back(seq, std::move(message));
  };
  auto failZone = [&found, this](std::string message) {
    found.emplace_back(kNone, source_.empty() ? std::move(message) : source_ + ": " + message);
  };

  // Group by owner, then type; keep file order inside an RRset.
  std::stable_sort(records_.begin(), records_.end(), [this](const Record& a, const Record& b) {
    const std::string_view ao = ownerOf(a), bo = ownerOf(b);
    if (ao != bo) return nameLess(ao, bo);
    return a.type < b.type;
  });

  // Every owner and every ancestor down to the apex becomes a node (empty non-terminals included).
  // Ancestors are suffixes of an owner, so every name is a view into data_ (or apex). The owners
  // come sorted from records_ (the apex first: it is the shortest); only the empty non-terminals
  // need sorting before they are merged in.
  std::vector<std::string_view> names;
  names.reserve(records_.size() + 1);
  names.push_back(apex);
  for (const auto& r : records_) {
    const std::string_view n = ownerOf(r);
    if (n != names.back() && n != apex) names.push_back(n);
  }
  {
    const size_t owners = names.size();
    auto isOwner = [&names, owners](std::string_view n) {
      return std::binary_search(names.begin(), names.begin() + owners, n, nameLess);
    };
    std::unordered_set<std::string_view> added;
    for (size_t k = 1; k < owners; ++k) {
      std::string_view n = parentOf(names[k]);
      while (n != apex && !isOwner(n) && added.insert(n).second) {
        names.push_back(n);
        n = parentOf(n);
      }
    }
    std::sort(names.begin() + owners, names.end(), nameLess);
    std::inplace_merge(names.begin(), names.begin() + owners, names.end(), nameLess);
  }

  auto zone = std::make_shared<Zone>();
  Zone& z = *zone;
  z.origin_ = text(apex);
  z.rrs_.push_back(RR{});  // index 0 unused, so a zero first_rr never aliases a real record
  size_t names_octets = 0;
  size_t blob_octets = 10 + maxRdataLength(0);  // and the negative-answer SOA
  for (const auto& n : names) names_octets += n.size();
  for (const auto& r : records_) blob_octets += 10 + r.rdlen;
  // Sized once: a vector grown by doubling keeps up to half its capacity unused for the zone's
  // life.
  z.nodes_.reserve(names.size());
  z.names_.reserve(names_octets);
  z.blob_.reserve(blob_octets);
  z.rrs_.reserve(records_.size() + 2);
  std::memcpy(z.apex_copy_, apex.data(), apex.size());
  for (const auto& n : names) {
    Node node;
    node.name_offset = static_cast<uint32_t>(z.names_.size());
    node.name_length = static_cast<uint8_t>(n.size());
    // Every name here is the apex or below it (out-of-zone records were dropped on add()).
    const size_t rel = n.size() - apex.size();
    if (n.size() >= apex.size() && rel <= Node::kInlineOctets && n.substr(rel) == apex) {
      node.relative_length = static_cast<uint8_t>(rel);
      std::memcpy(node.relative, n.data(), rel);
    }
    z.names_.insert(z.names_.end(), n.begin(), n.end());
    z.nodes_.push_back(node);
  }
  z.buildIndex();
  auto index = [&z](std::string_view n) {
    return z.find(reinterpret_cast<const uint8_t*>(n.data()), n.size());
  };
  z.apex_node_ = index(apex);
  z.nodes_[z.apex_node_].flags |= Node::kApex;

  bool blob_overflow = false;
  auto encode = [&z, &blob_overflow](uint16_t type, uint32_t ttl, std::string_view rdata) {
    // RR::offset is 32 bits; maxRdataLength() keeps 10 + RDLENGTH within RR::length's 16.
    if (z.blob_.size() + 10 + rdata.size() > 0xFFFFFFFFu) blob_overflow = true;
    RR rr;
    rr.offset = static_cast<uint32_t>(z.blob_.size());
    rr.length = static_cast<uint16_t>(10 + rdata.size());
    uint8_t head[10];
    dns::writeU16(head, type);
    dns::writeU16(head + 2, dns::rrclass::kIN);
    dns::writeU32(head + 4, ttl);
    dns::writeU16(head + 8, static_cast<uint16_t>(rdata.size()));
    z.blob_.insert(z.blob_.end(), head, head + 10);
    z.blob_.insert(z.blob_.end(), rdata.begin(), rdata.end());
    rr.name_count = static_cast<uint8_t>(compressibleNames(
        type, reinterpret_cast<const uint8_t*>(rdata.data()), rdata.size(), rr.name_pos));
    z.rrs_.push_back(rr);
  };

  // RRsets, in node order. Duplicates are found by sorting each RRset's RDATA (not by comparing
  // every pair: an RRset may hold tens of thousands of records).
  std::vector<uint32_t> node_first_record(z.nodes_.size(), kNone);
  std::vector<uint32_t> order;
  std::vector<bool> duplicate;
  uint32_t dnssec_types = 0;  // bit per isDnssecType() type, for the warning
  size_t i = 0;
  for (uint32_t ni = 0; ni < z.nodes_.size(); ++ni) {
    Node& node = z.nodes_[ni];
    // A copy: CNAME and DNAME targets are appended to z.names_ below, which may move its storage.
    char owner_buf[dns::kMaxNameLength];
    std::memcpy(owner_buf, z.names_.data() + node.name_offset, node.name_length);
    const std::string_view owner(owner_buf, node.name_length);
    node.rrset_begin = static_cast<uint32_t>(z.rrsets_.size());
    if (i < records_.size() && ownerOf(records_[i]) == owner) {
      node_first_record[ni] = static_cast<uint32_t>(i);
    }
    bool has_cname = false;
    bool has_other = false;
    size_t cname_rec = 0;
    size_t other_rec = 0;
    while (i < records_.size() && ownerOf(records_[i]) == owner) {
      const uint16_t type = records_[i].type;
      RRset rs;
      rs.type = type;
      const uint32_t ttl = records_[i].ttl;
      rs.first_rr = static_cast<uint32_t>(z.rrs_.size());
      rs.blob_offset = static_cast<uint32_t>(z.blob_.size());
      const size_t begin = i;
      size_t end = i;
      while (end < records_.size() && ownerOf(records_[end]) == owner &&
             records_[end].type == type) {
        ++end;
      }
      auto first_where = [this, begin] { return where(records_[begin]); };
      const uint32_t first_seq = records_[begin].seq;
      order.resize(end - begin);
      for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<uint32_t>(begin + k);
      std::stable_sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
        return rdataOf(records_[a]) < rdataOf(records_[b]);
      });
      duplicate.assign(end - begin, false);
      for (size_t k = 1; k < order.size(); ++k) {
        if (rdataOf(records_[order[k]]) == rdataOf(records_[order[k - 1]])) {
          duplicate[order[k] - begin] = true;  // stable sort: the earlier one in the file stays
        }
      }
      size_t kept = 0;
      for (; i < end; ++i) {
        const Record& r = records_[i];
        if (duplicate[i - begin]) {
          warnings.push_back(where(r) + ": duplicate record " + text(owner) + " ignored");
          continue;
        }
        if (r.ttl != ttl) {
          // RFC 2181 §5.2: TTLs in an RRset must match; use the first one's, as BIND and Knot do.
          warnings.push_back(where(r) + ": TTL " + std::to_string(r.ttl) +
                             " differs from the RRset's " + std::to_string(ttl) + ", using " +
                             std::to_string(ttl));
        }
        ++kept;
        z.digest_ += recordHash(owner, type, ttl, rdataOf(r));
        encode(type, ttl, rdataOf(r));
      }
      rs.plain = std::all_of(z.rrs_.begin() + rs.first_rr, z.rrs_.end(),
                             [](const RR& rr) { return rr.name_count == 0; });
      if (kept > kMaxRRsetSize) {
        // RRset::rr_count and ANCOUNT are 16 bits, and no DNS message could carry it anyway.
        fail(first_seq, first_where() + ": the RRset " + text(owner) + " " + typeText(type) +
                            " has " + std::to_string(kept) + " records, more than " +
                            std::to_string(kMaxRRsetSize));
      }
      rs.rr_count = static_cast<uint16_t>(std::min(kept, kMaxRRsetSize));
      if (isDnssecType(type)) {
        dnssec_types |= 1u << (type == kNSEC3PARAM ? 0 : type - dns::rrtype::kRRSIG + 1);
      }
      if (type == dns::rrtype::kCNAME) {
        has_cname = true;
        node.flags |= Node::kCname;
        cname_rec = begin;
        if (rs.rr_count > 1)
          fail(first_seq, first_where() + ": more than one CNAME at " + text(owner));
        const RR& rr = z.rrs_[rs.first_rr];
        const std::string target = lowerName(z.blob_.data() + rr.offset + 10);
        rs.target_offset = static_cast<uint32_t>(z.names_.size());
        z.names_.insert(z.names_.end(), target.begin(), target.end());
      } else if (type != dns::rrtype::kRRSIG && type != dns::rrtype::kNSEC) {
        has_other = true;
        other_rec = begin;
      }
      if (type == dns::rrtype::kDNAME) {
        // RFC 6672 §2.4: one DNAME per owner; names below it are rewritten, not looked up.
        if (rs.rr_count > 1)
          fail(first_seq, first_where() + ": more than one DNAME at " + text(owner));
        node.flags |= Node::kDname;
        const std::string target = lowerName(z.blob_.data() + z.rrs_[rs.first_rr].offset + 10);
        rs.target_offset = static_cast<uint32_t>(z.names_.size());
        z.names_.insert(z.names_.end(), target.begin(), target.end());
      }
      if (type == dns::rrtype::kSOA && owner != apex) {
        fail(first_seq, first_where() + ": SOA record at " + text(owner) +
                            " is not at the zone apex " + z.origin_);
      }
      if (type == dns::rrtype::kSOA && rs.rr_count > 1) {
        fail(first_seq, first_where() + ": more than one SOA record at the apex");
      }
      if (type == dns::rrtype::kNS && owner != apex) node.flags |= Node::kDelegation;
      z.rrsets_.push_back(rs);
    }
    node.rrset_count = static_cast<uint16_t>(z.rrsets_.size() - node.rrset_begin);
    if (has_cname && has_other) {
      // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME cannot coexist with other data.
      fail(records_[cname_rec].seq, where(records_[cname_rec]) + ": CNAME at " + text(owner) +
                                        " beside other data (" + where(records_[other_rec]) + ")");
    }
  }
  if (blob_overflow) failZone("zone " + z.origin_ + ": more than 4 GiB of record data");

  const Node& apex_node = z.nodes_[z.apex_node_];
  const RRset* soa = z.rrset(apex_node, dns::rrtype::kSOA);
  // A syntax error in the SOA or NS lines would also show as "no SOA": say only what is wrong.
  if (source_errors_ == 0) {
    if (soa == nullptr) failZone("zone " + z.origin_ + " has no SOA record at its apex");
    if (z.rrset(apex_node, dns::rrtype::kNS) == nullptr) {
      failZone("zone " + z.origin_ + " has no NS records at its apex");
    }
  }

  // Parents, cuts (top-down: names sort by length first, so parents come before children),
  // wildcards, and data below a DNAME.
  std::vector<uint32_t> dname_above(z.nodes_.size(), kNone);
  for (uint32_t ni = 0; ni < z.nodes_.size(); ++ni) {
    Node& node = z.nodes_[ni];
    if (ni == z.apex_node_) continue;
    const std::string_view owner(reinterpret_cast<const char*>(z.names_.data() + node.name_offset),
                                 node.name_length);
    const uint32_t parent = index(parentOf(owner));
    const Node& p = z.nodes_[parent];
    if (p.cut != kNone) {
      node.cut = p.cut;
    } else if (node.flags & Node::kDelegation) {
      node.cut = ni;
    }
    dname_above[ni] = (p.flags & Node::kDname) ? parent : dname_above[parent];
    if (dname_above[ni] != kNone && node.rrset_count > 0) {
      // RFC 6672 §2.3: there MUST NOT be data at any subdomain of a DNAME owner.
      const Record& r = records_[node_first_record[ni]];
      fail(r.seq, where(r) + ": " + text(owner) + " is below the DNAME at " +
                      dns::toText(z.nodeName(z.nodes_[dname_above[ni]])) +
                      "; no data may exist there (RFC 6672 \u00a72.3)");
    }
    if (owner.size() >= 2 && owner[0] == 1 && owner[1] == '*') z.nodes_[parent].wildcard = ni;
  }

  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& f : found) errors_.push_back(std::move(f.second));
  if (!errors_.empty()) {
    std::string message;
    const size_t shown = std::min(errors_.size(), kMaxErrors);
    for (size_t k = 0; k < shown; ++k) {
      if (k > 0) message.push_back('\n');
      message += errors_[k];
    }
    if (errors_.size() > shown) {
      const size_t rest = errors_.size() - shown;
      message += "\n... and " + std::to_string(rest) + (rest == 1 ? " more error" : " more errors");
    }
    return Error{message};
  }

  if (dnssec_types != 0) {
    std::string list;
    for (uint16_t t : {dns::rrtype::kDNSKEY, dns::rrtype::kRRSIG, dns::rrtype::kNSEC,
                       dns::rrtype::kNSEC3, kNSEC3PARAM}) {
      if (dnssec_types & (1u << (t == kNSEC3PARAM ? 0 : t - dns::rrtype::kRRSIG + 1))) {
        list += list.empty() ? "" : ", ";
        list += dnssecTypeName(t);
      }
    }
    warnings.push_back("zone " + z.origin_ + " contains DNSSEC records (" + list +
                       "): they are served as plain data and answers are not signed (DNSSEC is "
                       "not supported yet: DO is echoed but no RRSIGs are added to answers)");
  }

  // Occluded data below a cut: only addresses (glue) are meaningful there.
  for (uint32_t ni = 0; ni < z.nodes_.size(); ++ni) {
    const Node& node = z.nodes_[ni];
    if (node.cut == kNone) continue;
    const bool at_cut = ni == node.cut;
    for (uint32_t k = 0; k < node.rrset_count; ++k) {
      const uint16_t t = z.rrsets_[node.rrset_begin + k].type;
      const bool ok = t == kA || t == kAAAA ||
                      (at_cut && (t == dns::rrtype::kNS || t == dns::rrtype::kDS ||
                                  t == dns::rrtype::kRRSIG || t == dns::rrtype::kNSEC));
      if (!ok) {
        // At the file:line of the RRset's first record (records_ is sorted by owner, then type).
        size_t r = node_first_record[ni];
        while (r < records_.size() && records_[r].type != t) ++r;
        const std::string at = r < records_.size() ? where(records_[r]) + ": " : "";
        warnings.push_back(at + dns::toText(z.nodeName(node)) + " type " + typeText(t) +
                           " is below the delegation at " +
                           dns::toText(z.nodeName(z.nodes_[node.cut])) + " and is not served");
      }
    }
  }

  // Additional-section targets for NS, MX and SRV: in-zone names with addresses. Glue below a cut
  // is used for NS only (RFC 1034 §4.3.2); MX/SRV targets must be authoritative data.
  // added_by[node] = the RRset that last listed the node, so repeats are skipped in O(1).
  std::vector<uint32_t> added_by(z.nodes_.size(), kNone);
  for (uint32_t si = 0; si < z.rrsets_.size(); ++si) {
    RRset& rs = z.rrsets_[si];
    const int tpos = additionalTargetPos(rs.type);
    if (tpos < 0) continue;
    rs.additional_begin = static_cast<uint32_t>(z.additional_.size());
    for (uint32_t k = 0; k < rs.rr_count; ++k) {
      const RR& rr = z.rrs_[rs.first_rr + k];
      if (rr.length < 10 + tpos + 1) continue;
      const std::string target = lowerName(z.blob_.data() + rr.offset + 10 + tpos);
      const uint32_t found_node = index(target);
      if (found_node == kNone) continue;
      const Node& t = z.nodes_[found_node];
      if (rs.type != dns::rrtype::kNS && t.cut != kNone) continue;
      if (z.rrset(t, kA) == nullptr && z.rrset(t, kAAAA) == nullptr) continue;
      if (added_by[found_node] != si) {
        added_by[found_node] = si;
        z.additional_.push_back(found_node);
      }
    }
    rs.additional_count = static_cast<uint16_t>(z.additional_.size() - rs.additional_begin);
  }

  z.record_count_ = z.rrs_.size() - 1;

  // The negative-answer SOA (RFC 2308 §3: TTL is the minimum of the SOA's TTL and MINIMUM field).
  {
    const RR& rr = z.rrs_[soa->first_rr];
    const uint8_t* rdata = z.blob_.data() + rr.offset + 10;
    const size_t rdlen = rr.length - 10u;
    const size_t names_len =
        dns::wireLength(rdata) + dns::wireLength(rdata + dns::wireLength(rdata));
    if (rdlen != names_len + 20) return Error{"zone " + z.origin_ + ": malformed SOA RDATA"};
    z.serial_ = dns::readU32(rdata + names_len);
    const uint32_t minimum = dns::readU32(rdata + names_len + 16);
    // Copied: encode() appends to blob_, which holds the SOA read here (capacity is reserved).
    const std::string soa_rdata(reinterpret_cast<const char*>(rdata), rdlen);
    z.negative_soa_ = *soa;
    const uint32_t ttl = std::min(z.ttl(*soa), minimum);
    z.negative_soa_.first_rr = static_cast<uint32_t>(z.rrs_.size());
    z.negative_soa_.blob_offset = static_cast<uint32_t>(z.blob_.size());
    z.negative_soa_.rr_count = 1;
    encode(dns::rrtype::kSOA, ttl, soa_rdata);
  }
  captureNegativeSoa(z, z.negative_soa_record_);
  return std::shared_ptr<const Zone>(std::move(zone));
}

}  // namespace meridian::zones
