#include "zones/lookup.h"

#include <cstring>

namespace meridian::zones {
namespace {

using dns::ResponseWriter;
using Section = dns::ResponseWriter::Section;

enum class Found { kExact, kWildcard, kNxDomain, kReferral, kDname };

struct Location {
  Found found;
  uint32_t node;  // the answering node, or the cut for kReferral
};

// RFC 1034 §4.3.2 step 3 on one zone: exact match, delegation above the name, wildcard at the
// closest encloser, or no such name.
Location locate(const Zone& z, const uint8_t* name, size_t len, uint16_t qtype) {
  uint32_t n = z.find(name, len);
  if (n != kNone) {
    const Node& node = z.node(n);
    // DS is answered by the parent side of the cut (RFC 4035 §3.1.4.1).
    if (node.cut != kNone && !(node.cut == n && qtype == dns::rrtype::kDS)) {
      return {Found::kReferral, node.cut};
    }
    return {Found::kExact, n};
  }
  // Closest encloser: strip labels until a node exists; the apex always does. The name is at or
  // below the apex (the zone was chosen for it), so the suffix of the apex's length is the apex
  // and needs no search (for NXDOMAIN right below the apex, the common case, none at all).
  const uint8_t* p = name;
  size_t rest = len;
  n = kNone;
  while (n == kNone && rest > z.apexLength()) {
    const size_t step = 1u + p[0];
    p += step;
    rest -= step;
    if (rest > z.apexLength()) n = z.find(p, rest);
  }
  if (n == kNone) n = z.apexNode();
  const Node& ce = z.node(n);
  if (ce.cut != kNone) return {Found::kReferral, ce.cut};
  if (ce.flags & Node::kDname) return {Found::kDname, n};
  if (ce.wildcard != kNone) return {Found::kWildcard, ce.wildcard};
  return {Found::kNxDomain, n};
}

// Small fixed lists of RRsets whose targets feed the additional section.
struct AdditionalSources {
  static constexpr int kMax = 8;
  const RRset* items[kMax];
  int count = 0;
  void add(const RRset* rs) {
    if (rs->additional_count > 0 && count < kMax) items[count++] = rs;
  }
};

bool putAddresses(const Zone& z, uint32_t node, ResponseWriter& w) {
  const Node& t = z.node(node);
  for (uint16_t type : {dns::rrtype::kA, dns::rrtype::kAAAA}) {
    const RRset* a = z.rrset(t, type);
    if (a != nullptr && !putRRset(z, *a, z.nodeName(t), w, Section::kAdditional)) return false;
  }
  return true;
}

// A referral's glue (RFC 9471 §3): addresses of name servers at or below the cut ("in-domain")
// are required, so they go first and the answer is truncated when they do not all fit; addresses
// of other name servers in this zone (sibling glue, authoritative data) are added as room allows.
bool putReferralGlue(const Zone& z, const RRset& ns, uint32_t cut, ResponseWriter& w) {
  const Node& c = z.node(cut);
  const uint8_t* cut_name = z.nodeName(c);
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t k = 0; k < ns.additional_count; ++k) {
      const uint32_t node = z.additionalNode(ns.additional_begin + k);
      const Node& t = z.node(node);
      const bool in_domain =
          dns::isSubdomain(z.nodeName(t), t.name_length, cut_name, c.name_length);
      if (in_domain != (pass == 0)) continue;
      if (!putAddresses(z, node, w)) return pass != 0;
    }
  }
  return true;
}

bool putAdditional(const Zone& z, const AdditionalSources& sources, ResponseWriter& w) {
  for (int i = 0; i < sources.count; ++i) {
    const RRset* rs = sources.items[i];
    for (uint32_t k = 0; k < rs->additional_count; ++k) {
      const Node& t = z.node(z.additionalNode(rs->additional_begin + k));
      for (uint16_t type : {dns::rrtype::kA, dns::rrtype::kAAAA}) {
        const RRset* a = z.rrset(t, type);
        if (a == nullptr) continue;
        // Additional data is optional: stop quietly when it no longer fits (RFC 2181 §9).
        if (!putRRset(z, *a, z.nodeName(t), w, Section::kAdditional)) return false;
      }
    }
  }
  return true;
}

// A CNAME made up at query time (RFC 6672 §3.2), TTL that of the DNAME.
bool putSynthesizedCname(const uint8_t* owner, const uint8_t* target, uint32_t ttl,
                         ResponseWriter& w) {
  const ResponseWriter::Mark start = w.mark();
  bool ok = owner == nullptr ? w.writeQnamePointer() : w.writeName(owner);
  ok = ok && w.writeU16(dns::rrtype::kCNAME) && w.writeU16(dns::rrclass::kIN) && w.writeU32(ttl);
  const size_t rdlen_at = w.size();
  ok = ok && w.writeU16(0) && w.writeName(target);
  if (!ok) {
    w.rollback(start);
    return false;
  }
  dns::writeU16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
  w.countRecord(Section::kAnswer);
  return true;
}

}  // namespace

bool isOccluded(const Zone& z, const uint8_t* name, size_t len) {
  const Found f = locate(z, name, len, dns::rrtype::kA).found;
  return f == Found::kReferral || f == Found::kDname;
}

bool putRRset(const Zone& z, const RRset& rs, const uint8_t* owner, ResponseWriter& w, Section s) {
  const ResponseWriter::Mark start = w.mark();
  size_t owner_at = 0;
  const uint8_t* next = z.blob(rs.blob_offset);  // the records follow each other in the blob
  for (uint32_t i = 0; i < rs.rr_count; ++i) {
    const uint8_t* rec = next;
    const size_t length = 10u + dns::readU16(rec + 8);  // TYPE CLASS TTL RDLENGTH RDATA
    next = rec + length;
    bool ok;
    if (i == 0) {
      owner_at = w.size();
      ok = owner == nullptr ? w.writeQnamePointer() : w.writeName(owner);
    } else if (owner_at < 0x4000) {
      // Later records point at the first owner (or reuse its pointer).
      const uint8_t* first = w.data() + owner_at;
      ok = (first[0] & 0xC0) == 0xC0 ? w.writeBytes(first, 2)
                                     : w.writeU16(static_cast<uint16_t>(0xC000 | owner_at));
    } else {
      ok = owner == nullptr ? w.writeQnamePointer() : w.writeName(owner);
    }
    if (!ok) {
      w.rollback(start);
      return false;
    }
    const RR* rr = rs.plain ? nullptr : &z.rr(rs.first_rr + i);
    if (rr == nullptr || rr->name_count == 0) {
      ok = w.writeBytes(rec, length);
    } else {
      // Copy TYPE CLASS TTL, then RDATA with its names compressed, then fix RDLENGTH.
      ok = w.writeBytes(rec, 8);
      const size_t rdlen_at = w.size();
      ok = ok && w.writeU16(0);
      const uint8_t* rdata = rec + 10;
      const size_t rdlen = length - 10u;
      size_t done = 0;
      for (uint8_t k = 0; ok && k < rr->name_count; ++k) {
        const size_t pos = rr->name_pos[k];
        ok = w.writeBytes(rdata + done, pos - done) && w.writeName(rdata + pos);
        done = pos + dns::wireLength(rdata + pos);
      }
      ok = ok && w.writeBytes(rdata + done, rdlen - done);
      if (ok) dns::writeU16(w.data() + rdlen_at, static_cast<uint16_t>(w.size() - rdlen_at - 2));
    }
    if (!ok) {
      w.rollback(start);
      return false;
    }
    w.countRecord(s);
  }
  return true;
}

bool putNegativeSoa(const Zone& z, const dns::Query& q, ResponseWriter& w) {
  return w.replay(z.negativeSoaRecord(), q.qname_lower, Section::kAuthority) ||
         putRRset(z, z.negativeSoa(), z.apex(), w, Section::kAuthority);
}

AnswerResult answer(const Zone& z, const dns::Query& q, ResponseWriter& w,
                    const AnswerOptions& options, ChainHook* hook) {
  AnswerResult result;
  const ResponseWriter::Mark empty = w.mark();
  auto truncate = [&]() {
    // An RRset that does not fit is left out whole (putRRset and the hook roll their partial
    // writes back) and TC=1 tells the client to retry over TCP. What a chain already wrote stays,
    // as Knot and NSD answer: a CNAME whose target's RRset does not fit comes back alone with TC.
    result.truncated = true;
    return result;
  };

  AdditionalSources additional;
  const uint8_t* name = q.qname_lower.data;
  size_t len = q.qname_lower.length;
  const uint8_t* owner = nullptr;  // nullptr: the question name
  uint32_t visited[kMaxCnameChain + 1];
  // Names synthesized from DNAMEs; two buffers because the next owner is the previous target.
  uint8_t synth[2][dns::kMaxNameLength];
  int hops = 0;

  // The hook's verdict on a name the chain reached; true when the answer ends there.
  auto hooked = [&](const uint8_t* at, size_t at_len, bool* done) {
    if (hook == nullptr) return false;
    switch (hook->answerName(at, at_len, owner)) {
      case ChainHook::Outcome::kNotMine:
        return false;
      case ChainHook::Outcome::kAnswered:
        *done = true;
        return true;
      case ChainHook::Outcome::kServFail:
        w.rollback(empty);
        result.rcode = dns::rcode::kServFail;
        return true;
      case ChainHook::Outcome::kTruncated:
        truncate();
        return true;
    }
    return false;
  };

  for (;;) {
    bool hook_answered = false;
    if (hooked(name, len, &hook_answered)) {
      if (!hook_answered) return result;
      break;
    }
    const Location loc = locate(z, name, len, q.qtype);
    if (loc.found == Found::kWildcard) {
      // A name synthesized from a wildcard (RFC 4592) steers when the wildcard's owner is a
      // service, as gdnsd's wildcard DYNA does; the answer's owner stays the name asked for.
      const Node& wild = z.node(loc.node);
      if (hooked(z.nodeName(wild), wild.name_length, &hook_answered)) {
        if (!hook_answered) return result;
        break;
      }
    }
    if (loc.found == Found::kReferral) {
      // RFC 1034 §4.3.2 step 3b: a referral. Authoritative only if a CNAME led here.
      result.authoritative = hops > 0;
      const Node& cut = z.node(loc.node);
      if (hops == 0) result.matched = z.nodeName(cut);
      const RRset* ns = z.rrset(cut, dns::rrtype::kNS);
      if (!putRRset(z, *ns, z.nodeName(cut), w, Section::kAuthority)) return truncate();
      if (!putReferralGlue(z, *ns, loc.node, w)) result.truncated = true;  // RFC 9471 §3.1
      break;
    }
    if (loc.found == Found::kDname) {
      // RFC 6672 §3.2: the DNAME, then a CNAME from the current name to the rewritten name.
      const Node& dnode = z.node(loc.node);
      const RRset* dname = z.rrset(dnode, dns::rrtype::kDNAME);
      if (!putRRset(z, *dname, z.nodeName(dnode), w, Section::kAnswer)) return truncate();
      const uint8_t* target = z.pooledName(dname->target_offset);
      const size_t target_len = dns::wireLength(target);
      const size_t prefix_len = len - dnode.name_length;
      if (prefix_len + target_len > dns::kMaxNameLength) {
        result.rcode = dns::rcode::kYXDomain;  // §2.2: the rewritten name would be too long
        break;
      }
      uint8_t* next = synth[hops & 1];
      std::memcpy(next, name, prefix_len);
      std::memcpy(next + prefix_len, target, target_len);
      if (!putSynthesizedCname(owner, next, z.ttl(*dname), w)) return truncate();
      visited[hops] = kNone;  // the loop check below compares CNAME targets with visited nodes
      if (hops == kMaxCnameChain) break;
      if (!dns::isSubdomain(next, prefix_len + target_len, z.apex(), z.apexLength())) {
        owner = next;
        if (hooked(next, prefix_len + target_len, &hook_answered) && !hook_answered) {
          return result;
        }
        break;
      }
      ++hops;
      owner = next;
      name = next;
      len = prefix_len + target_len;
      continue;
    }
    if (loc.found == Found::kNxDomain) {
      result.rcode = dns::rcode::kNXDomain;  // RFC 6604: the rcode of the last name in the chain
      if (!putNegativeSoa(z, q, w)) return truncate();
      break;
    }
    visited[hops] = loc.node;
    const Node& node = z.node(loc.node);
    if (loc.found == Found::kWildcard && hops == 0) {
      result.matched = z.nodeName(node);
      result.wildcard = true;
    }
    // The flag spares a hit the scan of its node's RRsets for a CNAME it cannot have.
    const RRset* cname = node.flags & Node::kCname ? z.rrset(node, dns::rrtype::kCNAME) : nullptr;
    if (cname != nullptr && q.qtype != dns::rrtype::kCNAME) {
      if (!putRRset(z, *cname, owner, w, Section::kAnswer)) return truncate();
      const uint8_t* target = z.pooledName(cname->target_offset);
      const size_t target_len = dns::wireLength(target);
      // Follow the chain inside this zone only, as Knot does (a steered name in another zone is
      // the exception: the hook answers it); stop at loops and at the limit.
      if (hops == kMaxCnameChain) break;
      if (!dns::isSubdomain(target, target_len, z.apex(), z.apexLength())) {
        owner = target;
        if (hooked(target, target_len, &hook_answered) && !hook_answered) return result;
        break;
      }
      const uint32_t next = z.find(target, target_len);
      bool loop = false;
      for (int k = 0; k <= hops; ++k) loop = loop || (next != kNone && visited[k] == next);
      if (loop) break;
      ++hops;
      owner = z.pooledName(cname->target_offset);
      name = target;
      len = target_len;
      continue;
    }
    if (q.qtype == dns::rrtype::kANY) {
      // RFC 8482 §4.1: over UDP one RRset is enough; over TCP give them all.
      const RRset* sets = z.rrsetsBegin(node);
      const uint32_t count = options.tcp ? node.rrset_count : (node.rrset_count > 0 ? 1u : 0u);
      for (uint32_t k = 0; k < count; ++k) {
        if (!putRRset(z, sets[k], owner, w, Section::kAnswer)) return truncate();
        additional.add(&sets[k]);
      }
      if (count == 0 && !putNegativeSoa(z, q, w)) {
        return truncate();
      }
      break;
    }
    const RRset* rs = z.rrset(node, q.qtype);
    if (rs != nullptr) {
      if (!putRRset(z, *rs, owner, w, Section::kAnswer)) return truncate();
      additional.add(rs);
    } else if (!putNegativeSoa(z, q, w)) {
      return truncate();  // NODATA (RFC 2308 §2.2)
    }
    break;
  }
  (void)putAdditional(z, additional, w);
  return result;
}

}  // namespace meridian::zones
