#include "zones/zone_builder.h"

#include <algorithm>
#include <map>
#include <set>

namespace meridian::zones {

using dns::rrtype::kA;
using dns::rrtype::kAAAA;

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

ZoneBuilder::ZoneBuilder(const dns::NameBuf& apex) : apex_(apex) {
  dns::lowercase(apex_);
}

void ZoneBuilder::add(const uint8_t* owner, uint16_t type, uint16_t klass, uint32_t ttl,
                      const uint8_t* rdata, size_t rdlen, const std::string& where) {
  dns::NameBuf name;
  size_t end = 0;
  const size_t owner_len = dns::wireLength(owner);
  if (dns::parseName(owner, owner_len, 0, name, &end) != dns::NameStatus::kOk) {
    if (first_error_.empty()) first_error_ = where + ": invalid owner name";
    return;
  }
  dns::lowercase(name);
  if (klass != dns::rrclass::kIN) {
    if (first_error_.empty()) first_error_ = where + ": only class IN is supported";
    return;
  }
  if (!dns::isSubdomain(name.data, name.length, apex_.data, apex_.length)) {
    early_warnings_.push_back(where + ": " + dns::toText(name.data) + " is outside zone " +
                              dns::toText(apex_.data) + ", ignored");
    return;
  }
  if (type == dns::rrtype::kOPT || type == dns::rrtype::kTSIG || type == dns::rrtype::kTKEY ||
      type == dns::rrtype::kANY || type == dns::rrtype::kAXFR || type == dns::rrtype::kIXFR) {
    if (first_error_.empty()) first_error_ = where + ": meta type cannot appear in a zone";
    return;
  }
  if (rdlen > 65535) {
    if (first_error_.empty()) first_error_ = where + ": RDATA too long";
    return;
  }
  records_.push_back(Record{std::string(reinterpret_cast<const char*>(name.data), name.length),
                            type, ttl, std::string(reinterpret_cast<const char*>(rdata), rdlen),
                            where});
}

namespace {
bool nameLess(const std::string& a, const std::string& b) {
  return compareNames(reinterpret_cast<const uint8_t*>(a.data()), a.size(),
                      reinterpret_cast<const uint8_t*>(b.data()), b.size()) < 0;
}
std::string text(const std::string& wire) {
  return dns::toText(reinterpret_cast<const uint8_t*>(wire.data()));
}
std::string parentOf(const std::string& wire) {
  return wire.substr(1 + static_cast<uint8_t>(wire[0]));
}
std::string lowerName(const uint8_t* p) {
  std::string s(reinterpret_cast<const char*>(p), dns::wireLength(p));
  for (auto& c : s) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  return s;
}
}  // namespace

Result<std::shared_ptr<const Zone>> ZoneBuilder::build(std::vector<std::string>& warnings) {
  warnings.insert(warnings.end(), early_warnings_.begin(), early_warnings_.end());
  if (!first_error_.empty()) return Error{first_error_};
  const std::string apex(reinterpret_cast<const char*>(apex_.data), apex_.length);

  // Group by owner, then type; keep file order inside an RRset, drop exact duplicates.
  std::stable_sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) {
    if (a.owner != b.owner) return nameLess(a.owner, b.owner);
    return a.type < b.type;
  });

  // Every owner and every ancestor down to the apex becomes a node (empty non-terminals included).
  std::set<std::string, decltype(&nameLess)> names(&nameLess);
  names.insert(apex);
  for (const auto& r : records_) {
    std::string n = r.owner;
    while (n != apex && names.insert(n).second) n = parentOf(n);
  }

  auto zone = std::make_shared<Zone>();
  Zone& z = *zone;
  z.origin_ = text(apex);
  z.rrs_.push_back(RR{});  // index 0 unused, so a zero first_rr never aliases a real record
  std::map<std::string, uint32_t, decltype(&nameLess)> index(&nameLess);
  for (const auto& n : names) {
    Node node;
    node.name_offset = static_cast<uint32_t>(z.names_.size());
    node.name_length = static_cast<uint8_t>(n.size());
    node.key = nameKey(reinterpret_cast<const uint8_t*>(n.data()), n.size());
    z.names_.insert(z.names_.end(), n.begin(), n.end());
    index[n] = static_cast<uint32_t>(z.nodes_.size());
    z.nodes_.push_back(node);
  }
  z.apex_node_ = index[apex];
  z.nodes_[z.apex_node_].flags |= Node::kApex;

  auto encode = [&z](uint16_t type, uint32_t ttl, const std::string& rdata) {
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

  // RRsets, in node order.
  size_t i = 0;
  for (uint32_t ni = 0; ni < z.nodes_.size(); ++ni) {
    Node& node = z.nodes_[ni];
    const std::string owner(reinterpret_cast<const char*>(z.names_.data() + node.name_offset),
                            node.name_length);
    node.rrset_begin = static_cast<uint32_t>(z.rrsets_.size());
    bool has_cname = false;
    bool has_other = false;
    std::string cname_where;
    std::string other_where;
    while (i < records_.size() && records_[i].owner == owner) {
      const uint16_t type = records_[i].type;
      RRset rs;
      rs.type = type;
      rs.ttl = records_[i].ttl;
      rs.first_rr = static_cast<uint32_t>(z.rrs_.size());
      std::vector<const std::string*> seen;
      const std::string first_where = records_[i].where;
      for (; i < records_.size() && records_[i].owner == owner && records_[i].type == type; ++i) {
        const Record& r = records_[i];
        if (std::any_of(seen.begin(), seen.end(),
                        [&](const std::string* s) { return *s == r.rdata; })) {
          warnings.push_back(r.where + ": duplicate record " + text(owner) + " ignored");
          continue;
        }
        if (r.ttl != rs.ttl) {
          // RFC 2181 §5.2: TTLs in an RRset must match; use the first one's, as BIND and Knot do.
          warnings.push_back(r.where + ": TTL " + std::to_string(r.ttl) +
                             " differs from the RRset's " + std::to_string(rs.ttl) + ", using " +
                             std::to_string(rs.ttl));
        }
        seen.push_back(&r.rdata);
        encode(type, rs.ttl, r.rdata);
      }
      rs.rr_count = static_cast<uint16_t>(seen.size());
      if (type == dns::rrtype::kCNAME) {
        has_cname = true;
        cname_where = first_where;
        if (rs.rr_count > 1) return Error{first_where + ": more than one CNAME at " + text(owner)};
        const RR& rr = z.rrs_[rs.first_rr];
        const std::string target = lowerName(z.blob_.data() + rr.offset + 10);
        rs.target_offset = static_cast<uint32_t>(z.names_.size());
        z.names_.insert(z.names_.end(), target.begin(), target.end());
      } else if (type != dns::rrtype::kRRSIG && type != dns::rrtype::kNSEC) {
        has_other = true;
        other_where = first_where;
      }
      if (type == dns::rrtype::kDNAME) {
        // RFC 6672 §2.4: one DNAME per owner; names below it are rewritten, not looked up.
        if (rs.rr_count > 1) return Error{first_where + ": more than one DNAME at " + text(owner)};
        node.flags |= Node::kDname;
        const std::string target = lowerName(z.blob_.data() + z.rrs_[rs.first_rr].offset + 10);
        rs.target_offset = static_cast<uint32_t>(z.names_.size());
        z.names_.insert(z.names_.end(), target.begin(), target.end());
      }
      if (type == dns::rrtype::kSOA && owner != apex) {
        return Error{first_where + ": SOA record at " + text(owner) + " is not at the zone apex " +
                     z.origin_};
      }
      if (type == dns::rrtype::kSOA && rs.rr_count > 1) {
        return Error{first_where + ": more than one SOA record at the apex"};
      }
      if (type == dns::rrtype::kNS && owner != apex) node.flags |= Node::kDelegation;
      z.rrsets_.push_back(rs);
    }
    node.rrset_count = static_cast<uint16_t>(z.rrsets_.size() - node.rrset_begin);
    if (has_cname && has_other) {
      // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME cannot coexist with other data.
      return Error{cname_where + ": CNAME at " + text(owner) + " beside other data (" +
                   other_where + ")"};
    }
  }

  const Node& apex_node = z.nodes_[z.apex_node_];
  const RRset* soa = z.rrset(apex_node, dns::rrtype::kSOA);
  if (soa == nullptr) return Error{"zone " + z.origin_ + " has no SOA record at its apex"};
  if (z.rrset(apex_node, dns::rrtype::kNS) == nullptr) {
    return Error{"zone " + z.origin_ + " has no NS records at its apex"};
  }

  // Parents, cuts (top-down: names sort by length first, so parents come before children) and
  // wildcards.
  for (uint32_t ni = 0; ni < z.nodes_.size(); ++ni) {
    Node& node = z.nodes_[ni];
    if (ni == z.apex_node_) continue;
    const std::string owner(reinterpret_cast<const char*>(z.names_.data() + node.name_offset),
                            node.name_length);
    const uint32_t parent = index[parentOf(owner)];
    const Node& p = z.nodes_[parent];
    if (p.cut != kNone) {
      node.cut = p.cut;
    } else if (node.flags & Node::kDelegation) {
      node.cut = ni;
    }
    if (owner.size() >= 2 && owner[0] == 1 && owner[1] == '*') z.nodes_[parent].wildcard = ni;
  }
  // Occluded data below a cut: only addresses (glue) are meaningful there.
  for (const auto& node : z.nodes_) {
    if (node.cut == kNone) continue;
    const bool at_cut = &node == &z.nodes_[node.cut];
    for (uint32_t k = 0; k < node.rrset_count; ++k) {
      const uint16_t t = z.rrsets_[node.rrset_begin + k].type;
      const bool ok = t == kA || t == kAAAA ||
                      (at_cut && (t == dns::rrtype::kNS || t == dns::rrtype::kDS ||
                                  t == dns::rrtype::kRRSIG || t == dns::rrtype::kNSEC));
      if (!ok) {
        warnings.push_back("zone " + z.origin_ + ": " + dns::toText(z.nodeName(node)) + " type " +
                           std::to_string(t) + " is below the delegation at " +
                           dns::toText(z.nodeName(z.nodes_[node.cut])) + " and is not served");
      }
    }
  }

  // Additional-section targets for NS, MX and SRV: in-zone names with addresses. Glue below a cut
  // is used for NS only (RFC 1034 §4.3.2); MX/SRV targets must be authoritative data.
  for (auto& rs : z.rrsets_) {
    const int tpos = additionalTargetPos(rs.type);
    if (tpos < 0) continue;
    rs.additional_begin = static_cast<uint32_t>(z.additional_.size());
    for (uint32_t k = 0; k < rs.rr_count; ++k) {
      const RR& rr = z.rrs_[rs.first_rr + k];
      if (rr.length < 10 + tpos + 1) continue;
      const std::string target = lowerName(z.blob_.data() + rr.offset + 10 + tpos);
      auto it = index.find(target);
      if (it == index.end()) continue;
      const Node& t = z.nodes_[it->second];
      if (rs.type != dns::rrtype::kNS && t.cut != kNone) continue;
      if (z.rrset(t, kA) == nullptr && z.rrset(t, kAAAA) == nullptr) continue;
      if (std::find(z.additional_.begin() + rs.additional_begin, z.additional_.end(), it->second) ==
          z.additional_.end()) {
        z.additional_.push_back(it->second);
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
    const std::string soa_rdata(reinterpret_cast<const char*>(rdata), rdlen);
    z.negative_soa_ = *soa;
    z.negative_soa_.ttl = std::min(soa->ttl, minimum);
    z.negative_soa_.first_rr = static_cast<uint32_t>(z.rrs_.size());
    z.negative_soa_.rr_count = 1;
    encode(dns::rrtype::kSOA, z.negative_soa_.ttl, soa_rdata);
  }
  return std::shared_ptr<const Zone>(std::move(zone));
}

}  // namespace meridian::zones
