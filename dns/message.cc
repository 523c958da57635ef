#include "dns/message.h"

#include <algorithm>
#include <cstring>

#include "dns/ecs.h"

namespace meridian::dns {

bool parseClientSubnet(const uint8_t* p, size_t len, bool query, ClientSubnet& ecs) {
  if (len < 4) return false;
  ecs.family = readU16(p);
  ecs.source_prefix = p[2];
  ecs.scope_prefix = p[3];
  size_t max_prefix = 0;
  if (ecs.family == 1) {
    max_prefix = 32;
  } else if (ecs.family == 2) {
    max_prefix = 128;
  } else {
    return false;  // §7.1.1: unknown FAMILY is FORMERR
  }
  if (ecs.source_prefix > max_prefix) return false;
  if (query ? ecs.scope_prefix != 0 : ecs.scope_prefix > max_prefix) {
    return false;  // §6: SCOPE PREFIX-LENGTH MUST be 0 in queries
  }
  const size_t addr_len = (ecs.source_prefix + 7u) / 8u;
  if (len - 4 != addr_len) return false;  // §6: ADDRESS is exactly ceil(SOURCE/8) octets
  std::memset(ecs.address, 0, sizeof ecs.address);
  std::memcpy(ecs.address, p + 4, addr_len);
  if (ecs.source_prefix % 8 != 0 && addr_len > 0) {
    const uint8_t mask = static_cast<uint8_t>(0xFF >> (ecs.source_prefix % 8));
    if ((ecs.address[addr_len - 1] & mask) != 0) return false;  // §6: bits past SOURCE MUST be 0
  }
  ecs.present = true;
  return true;
}

namespace {

bool parseOpt(const uint8_t* rdata, size_t rdlen, Query& q) {
  size_t pos = 0;
  while (pos < rdlen) {
    if (rdlen - pos < 4) return false;
    const uint16_t code = readU16(rdata + pos);
    const uint16_t len = readU16(rdata + pos + 2);
    pos += 4;
    if (rdlen - pos < len) return false;
    const uint8_t* data = rdata + pos;
    switch (code) {
      case edns_option::kNSID:
        q.nsid_requested = true;  // RFC 5001 §2.1: requesters send it empty; ignore any payload
        break;
      case edns_option::kClientSubnet:
        if (q.ecs.present) return false;
        if (!parseClientSubnet(data, len, /*query=*/true, q.ecs)) return false;
        break;
      case edns_option::kCookie:
        // RFC 7873 §5.2.2: a client cookie alone is 8 octets, with a server cookie 16 to 40.
        if (!(len == 8 || (len >= 16 && len <= 40))) return false;
        if (q.cookie_len != 0) return false;  // one COOKIE option per message
        std::memcpy(q.cookie, data, len);
        q.cookie_len = static_cast<uint8_t>(len);
        break;
      default:
        break;  // RFC 6891 §6.1.2: unknown options are ignored
    }
    pos += len;
  }
  return true;
}

bool parseTsig(const uint8_t* packet, size_t rdata_pos, size_t rdlen, TsigInfo& t) {
  const size_t end = rdata_pos + rdlen;
  size_t pos = 0;
  // RFC 8945 §4.2: the algorithm name is not compressed; parse within the RDATA bounds only.
  if (parseName(packet, end, rdata_pos, t.algorithm, &pos) != NameStatus::kOk) return false;
  if (end - pos < 6 + 2 + 2) return false;
  std::memcpy(t.time_signed, packet + pos, 6);
  t.fudge = readU16(packet + pos + 6);
  const uint16_t mac_size = readU16(packet + pos + 8);
  pos += 10;
  if (end - pos < mac_size) return false;
  pos += mac_size;
  if (end - pos < 6) return false;
  t.original_id = readU16(packet + pos);
  const uint16_t other_len = readU16(packet + pos + 4);
  pos += 6;
  if (end - pos != other_len) return false;
  t.present = true;
  return true;
}

}  // namespace

ParseStatus parseQuery(const uint8_t* p, size_t size, Query& q) {
  q.has_question = false;
  q.has_edns = false;
  q.nsid_requested = false;
  q.cookie_len = 0;
  q.dnssec_ok = false;
  q.edns_version = 0;
  q.udp_payload = 0;
  q.ecs.present = false;
  q.tsig.present = false;
  if (size < kHeaderSize) return ParseStatus::kDrop;
  q.id = readU16(p);
  q.flags = readU16(p + 2);
  if (q.flags & flag::kQR) return ParseStatus::kDrop;  // never answer a response
  q.opcode = static_cast<uint8_t>((q.flags >> 11) & 0x0F);
  const uint16_t qdcount = readU16(p + 4);
  const uint16_t ancount = readU16(p + 6);
  const uint16_t nscount = readU16(p + 8);
  const uint16_t arcount = readU16(p + 10);

  if (qdcount != 1) {
    return q.opcode == opcode::kQuery ? ParseStatus::kFormErr : ParseStatus::kNotImp;
  }
  size_t pos = kHeaderSize;
  if (parseName(p, size, pos, q.qname, &pos) != NameStatus::kOk) return ParseStatus::kFormErr;
  if (size - pos < 4) return ParseStatus::kFormErr;
  q.qtype = readU16(p + pos);
  q.qclass = readU16(p + pos + 2);
  pos += 4;
  q.question_end = pos;
  q.has_question = true;
  // Lowercase copy of just the used octets (a whole NameBuf is ~400 bytes).
  q.qname_lower.length = q.qname.length;
  q.qname_lower.label_count = q.qname.label_count;
  lowerCopy(q.qname_lower.data, q.qname.data, q.qname.length);
  std::memcpy(q.qname_lower.label_offset, q.qname.label_offset, q.qname.label_count);
  if (q.opcode != opcode::kQuery) return ParseStatus::kNotImp;

  const uint32_t records = static_cast<uint32_t>(ancount) + nscount + arcount;
  for (uint32_t i = 0; i < records; ++i) {
    const bool additional = i >= static_cast<uint32_t>(ancount) + nscount;
    NameBuf owner;
    if (parseName(p, size, pos, owner, &pos) != NameStatus::kOk) return ParseStatus::kFormErr;
    if (size - pos < 10) return ParseStatus::kFormErr;
    const uint16_t type = readU16(p + pos);
    const uint16_t klass = readU16(p + pos + 2);
    const uint32_t ttl = readU32(p + pos + 4);
    const uint16_t rdlen = readU16(p + pos + 8);
    pos += 10;
    if (size - pos < rdlen) return ParseStatus::kFormErr;
    if (additional && type == rrtype::kOPT) {
      // RFC 6891 §6.1.1: more than one OPT, or an OPT whose owner is not the root, is FORMERR.
      if (q.has_edns || owner.length != 1) return ParseStatus::kFormErr;
      q.has_edns = true;
      q.udp_payload = klass;
      q.edns_version = static_cast<uint8_t>(ttl >> 16);
      q.dnssec_ok = (ttl & 0x8000) != 0;
      if (!parseOpt(p + pos, rdlen, q)) return ParseStatus::kFormErr;
    } else if (type == rrtype::kOPT) {
      return ParseStatus::kFormErr;  // RFC 6891 §6.1.1: OPT only in the additional section
    } else if (type == rrtype::kTSIG) {
      // RFC 8945 §5.1: TSIG must be the last record of the additional section.
      if (!additional || i + 1 != records) return ParseStatus::kFormErr;
      q.tsig.key_name = owner;
      if (!parseTsig(p, pos, rdlen, q.tsig)) return ParseStatus::kFormErr;
    }
    pos += rdlen;
  }
  if (pos != size) return ParseStatus::kFormErr;  // trailing bytes after the last record
  return ParseStatus::kOk;
}

void ResponseWriter::begin(const Query& q, bool echo_question) {
  dns::writeU16(buf_, q.id);
  // RFC 1035 §4.1.1: RD is copied; RFC 4035 §3.1.6: so is CD. Everything else starts clear.
  const uint16_t flags = static_cast<uint16_t>(flag::kQR | (static_cast<uint16_t>(q.opcode) << 11) |
                                               (q.flags & (flag::kRD | flag::kCD)));
  dns::writeU16(buf_ + 2, flags);
  std::memset(buf_ + 4, 0, 8);
  size_ = kHeaderSize;
  if (echo_question && q.has_question && size_ + q.qname.length + 4 <= end_) {
    qname_offset_ = size_;
    std::memcpy(buf_ + size_, q.qname.data, q.qname.length);
    // The question's suffixes are the first dictionary entries (begin() starts it afresh), all
    // at offsets below 0x4000, so remember()'s checks come down to the entry limit.
    const uint8_t labels = q.qname.label_count;
    const uint8_t kept = static_cast<uint8_t>(std::min<size_t>(labels, kMaxEntries));
    for (uint8_t i = 0; i < kept; ++i) {
      entries_[i] = Entry{static_cast<uint16_t>(kHeaderSize + q.qname.label_offset[i]),
                          static_cast<uint8_t>(labels - i)};
    }
    entry_count_ = kept;
    size_ += q.qname.length;
    dns::writeU16(buf_ + size_, q.qtype);
    dns::writeU16(buf_ + size_ + 2, q.qclass);
    size_ += 4;
    dns::writeU16(buf_ + 4, 1);
    has_question_ = true;
  }
}

void ResponseWriter::remember(size_t offset, uint8_t labels) {
  if (entry_count_ < kMaxEntries && offset < 0x4000) {
    entries_[entry_count_++] = Entry{static_cast<uint16_t>(offset), labels};
  }
}

// Does the (uncompressed, trusted) `suffix` equal the name at `offset` in the message?
bool ResponseWriter::matchesAt(const uint8_t* suffix, size_t offset) const {
  size_t pos = offset;
  for (;;) {
    uint8_t len = buf_[pos];
    while ((len & 0xC0) == 0xC0) {
      pos = (static_cast<size_t>(len & 0x3F) << 8) | buf_[pos + 1];
      len = buf_[pos];
    }
    if (len != *suffix) return false;
    if (len == 0) return true;
    for (size_t i = 1; i <= len; ++i) {
      if (asciiLower(buf_[pos + i]) != asciiLower(suffix[i])) return false;
    }
    pos += 1 + len;
    suffix += 1 + len;
  }
}

bool ResponseWriter::writeName(const uint8_t* name) {
  // Walk the labels; at each, look for an earlier copy of the remaining suffix.
  uint8_t offsets[kMaxLabels];
  size_t labels = 0;
  for (size_t n = 0; name[n] != 0; n += 1 + name[n]) offsets[labels++] = static_cast<uint8_t>(n);
  for (size_t i = 0; i < labels; ++i) {
    const uint8_t remaining = static_cast<uint8_t>(labels - i);
    for (size_t e = 0; e < entry_count_; ++e) {
      if (entries_[e].labels != remaining) continue;
      if (!matchesAt(name + offsets[i], entries_[e].offset)) continue;
      // Labels before i go out literally, then a pointer to the match.
      const size_t literal = offsets[i];
      if (size_ + literal + 2 > end_) return false;
      std::memcpy(buf_ + size_, name, literal);
      for (size_t k = 0; k < i; ++k) {
        remember(size_ + offsets[k], static_cast<uint8_t>(labels - k));
      }
      size_ += literal;
      dns::writeU16(buf_ + size_, static_cast<uint16_t>(0xC000 | entries_[e].offset));
      size_ += 2;
      return true;
    }
  }
  const size_t len = (labels == 0 ? 0 : offsets[labels - 1] + 1 + name[offsets[labels - 1]]) + 1;
  if (size_ + len > end_) return false;
  std::memcpy(buf_ + size_, name, len);
  for (size_t k = 0; k < labels; ++k)
    remember(size_ + offsets[k], static_cast<uint8_t>(labels - k));
  size_ += len;
  return true;
}

bool ResponseWriter::replay(const ReplayRecord& r, const NameBuf& qname_lower, Section s) {
  const size_t qlen = qname_lower.length;
  const size_t labels = qname_lower.label_count;
  // Only the question precedes (no octet after it), and all of the question name's suffixes made
  // the dictionary (begin() keeps at most kMaxEntries), with room for r's entries: the general
  // path would see the table r was made with, plus the question's suffixes above the base.
  if (r.length == 0 || !has_question_ || size_ != qname_offset_ + qlen + 4 ||
      labels + r.entry_count >= kMaxEntries || labels < r.base_labels || size_ + r.length > end_) {
    return false;
  }
  const size_t delta = qlen - r.base_length;
  const size_t above = labels - r.base_labels;  // labels of the question name above the base
  if (qname_lower.label_offset[above] != delta ||
      std::memcmp(qname_lower.data + delta, r.base, r.base_length) != 0) {
    return false;
  }
  if (above > 0) {
    const uint8_t* label = qname_lower.data + qname_lower.label_offset[above - 1];
    for (uint8_t g = 0; g < r.guard_count; ++g) {
      // Most question labels differ from a guard in length or first octet already.
      const uint8_t* guard = r.guard[g];
      if (label[0] == guard[0] && label[1] == guard[1] &&
          std::memcmp(label + 2, guard + 2, guard[0] - 1u) == 0) {
        return false;
      }
    }
  }
  uint8_t* out = buf_ + size_;
  std::memcpy(out, r.bytes, r.length);
  // Offsets stay below 0x4000: a question ends by 12 + 255 + 4, a replayed record is shorter.
  for (uint8_t k = 0; k < r.pointer_count; ++k) {
    uint8_t* p = out + r.pointer_at[k];
    dns::writeU16(p, static_cast<uint16_t>(readU16(p) + delta));
  }
  for (uint8_t k = 0; k < r.entry_count; ++k) {
    entries_[entry_count_++] =
        Entry{static_cast<uint16_t>(size_ + r.entry_at[k]), r.entry_labels[k]};
  }
  size_ += r.length;
  countRecord(s);
  return true;
}

bool ResponseWriter::capture(const Mark& from, const uint16_t* names_at, size_t names,
                             ReplayRecord& r) const {
  r.length = 0;
  if (!has_question_ || names > ReplayRecord::kMaxPointers) return false;
  const uint8_t* base = buf_ + qname_offset_;
  const size_t base_length = wireLength(base);
  size_t base_labels = 0;
  for (size_t n = 0; base[n] != 0; n += 1u + base[n]) ++base_labels;
  const size_t length = size_ - from.size;
  const size_t entries = static_cast<size_t>(entry_count_ - from.entries);
  // From right after a question whose suffixes all made the table, to a table nothing fell out of.
  if (from.size != qname_offset_ + base_length + 4 || from.entries != base_labels ||
      entry_count_ >= kMaxEntries || entries > ReplayRecord::kMaxEntries || length == 0 ||
      length > ReplayRecord::kMaxLength) {
    return false;
  }
  r.base_length = static_cast<uint8_t>(base_length);
  r.base_labels = static_cast<uint8_t>(base_labels);
  lowerCopy(r.base, base, base_length);
  std::memcpy(r.bytes, buf_ + from.size, length);
  r.entry_count = static_cast<uint8_t>(entries);
  for (size_t k = 0; k < entries; ++k) {
    r.entry_at[k] = static_cast<uint16_t>(entries_[from.entries + k].offset - from.size);
    r.entry_labels[k] = entries_[from.entries + k].labels;
  }
  r.pointer_count = 0;
  r.guard_count = 0;
  for (size_t i = 0; i < names; ++i) {
    // The name's own octets end in its one pointer, if it has one; the labels it reaches through
    // pointers (in the question or earlier in the record) make up the rest.
    size_t pos = from.size + names_at[i];
    size_t label_at[kMaxLabels];
    size_t labels = 0;
    bool own = true;
    while (buf_[pos] != 0) {
      if ((buf_[pos] & 0xC0) == 0xC0) {
        if (own) r.pointer_at[r.pointer_count++] = static_cast<uint16_t>(pos - from.size);
        own = false;
        pos = (static_cast<size_t>(buf_[pos] & 0x3F) << 8) | buf_[pos + 1];
        continue;
      }
      label_at[labels++] = pos;
      pos += 1u + buf_[pos];
    }
    if (labels > base_labels && matchesAt(r.base, label_at[labels - base_labels])) {
      const uint8_t* label = buf_ + label_at[labels - base_labels - 1];
      lowerCopy(r.guard[r.guard_count++], label, 1u + label[0]);
    }
  }
  r.length = static_cast<uint16_t>(length);
  return true;
}

void ResponseWriter::finishSections() {
  dns::writeU16(buf_ + 6, counts_[0]);
  dns::writeU16(buf_ + 8, counts_[1]);
  dns::writeU16(buf_ + 10, counts_[2]);
  end_ = limit_;
}

bool ResponseWriter::writeOpt(uint16_t payload, uint16_t rcode, bool dnssec_ok, const uint8_t* nsid,
                              size_t nsid_len, const ClientSubnet* ecs, const uint8_t* cookie,
                              size_t cookie_len) {
  size_t rdlen = 0;
  if (nsid != nullptr) rdlen += 4 + nsid_len;
  size_t ecs_addr = 0;
  if (ecs != nullptr) {
    ecs_addr = (ecs->source_prefix + 7u) / 8u;
    rdlen += 4 + 4 + ecs_addr;
  }
  if (cookie != nullptr) rdlen += 4 + cookie_len;
  const size_t need = 11 + rdlen;
  if (size_ + need > end_) return false;
  uint8_t* w = buf_ + size_;
  w[0] = 0;  // root owner
  dns::writeU16(w + 1, rrtype::kOPT);
  dns::writeU16(w + 3, payload);
  // RFC 6891 §6.1.3: EXTENDED-RCODE holds the upper 8 bits; version 0; DO echoed (RFC 3225 §3).
  const uint32_t ttl =
      (static_cast<uint32_t>((rcode >> 4) & 0xFF) << 24) | (dnssec_ok ? 0x8000u : 0u);
  dns::writeU32(w + 5, ttl);
  dns::writeU16(w + 9, static_cast<uint16_t>(rdlen));
  size_t pos = 11;
  if (nsid != nullptr) {
    dns::writeU16(w + pos, edns_option::kNSID);
    dns::writeU16(w + pos + 2, static_cast<uint16_t>(nsid_len));
    std::memcpy(w + pos + 4, nsid, nsid_len);
    pos += 4 + nsid_len;
  }
  if (ecs != nullptr) {
    dns::writeU16(w + pos, edns_option::kClientSubnet);
    dns::writeU16(w + pos + 2, static_cast<uint16_t>(4 + ecs_addr));
    dns::writeU16(w + pos + 4, ecs->family);
    w[pos + 6] = ecs->source_prefix;
    w[pos + 7] = ecs->scope_prefix;
    std::memcpy(w + pos + 8, ecs->address, ecs_addr);
    pos += 8 + ecs_addr;
  }
  if (cookie != nullptr) {
    dns::writeU16(w + pos, edns_option::kCookie);
    dns::writeU16(w + pos + 2, static_cast<uint16_t>(cookie_len));
    std::memcpy(w + pos + 4, cookie, cookie_len);
    pos += 4 + cookie_len;
  }
  size_ += pos;
  dns::writeU16(buf_ + 10, static_cast<uint16_t>(readU16(buf_ + 10) + 1));
  return true;
}

bool ResponseWriter::writeTsigError(const TsigInfo& t, uint16_t error) {
  const size_t rdlen = t.algorithm.length + 6 + 2 + 2 + 2 + 2 + 2;
  const size_t need = t.key_name.length + 10 + rdlen;
  if (size_ + need > end_) return false;
  uint8_t* w = buf_ + size_;
  std::memcpy(w, t.key_name.data, t.key_name.length);
  w += t.key_name.length;
  dns::writeU16(w, rrtype::kTSIG);
  dns::writeU16(w + 2, rrclass::kANY);
  dns::writeU32(w + 4, 0);
  dns::writeU16(w + 8, static_cast<uint16_t>(rdlen));
  w += 10;
  std::memcpy(w, t.algorithm.data, t.algorithm.length);
  w += t.algorithm.length;
  std::memcpy(w, t.time_signed, 6);
  dns::writeU16(w + 6, t.fudge);
  dns::writeU16(w + 8, 0);  // MAC size 0: an unknown key cannot sign (RFC 8945 §5.2.1)
  dns::writeU16(w + 10, t.original_id);
  dns::writeU16(w + 12, error);
  dns::writeU16(w + 14, 0);
  size_ += need;
  dns::writeU16(buf_ + 10, static_cast<uint16_t>(readU16(buf_ + 10) + 1));
  return true;
}

}  // namespace meridian::dns
