// The response parser of dns/response.h: one pass over the message that checks every name and
// length and records views of the records; the RDATA layouts of the types with embedded names;
// RRset grouping over the views.
#include "dns/response.h"

#include <algorithm>
#include <cstring>

#include "dns/ecs.h"

namespace meridian::dns {
namespace {

// RFC 1183 RT and RFC 2163 PX: name-bearing types that wire.h has no constant for.
constexpr uint16_t kTypeRT = 21;
constexpr uint16_t kTypePX = 26;

// An RDATA layout: fixed fields (a positive octet count), names and character-strings, in order;
// the RDATA must end exactly after the last field.
constexpr int8_t kName = -1;
constexpr int8_t kCharString = -2;
constexpr int8_t kEnd = 0;

const int8_t* rdataLayout(uint16_t type) {
  static constexpr int8_t kOneName[] = {kName, kEnd};
  static constexpr int8_t kTwoNames[] = {kName, kName, kEnd};
  static constexpr int8_t kSoa[] = {kName, kName, 20, kEnd};  // MNAME RNAME SERIAL..MINIMUM
  static constexpr int8_t kPreference[] = {2, kName, kEnd};   // MX, AFSDB, RT
  static constexpr int8_t kPx[] = {2, kName, kName, kEnd};
  static constexpr int8_t kSrv[] = {6, kName, kEnd};  // priority, weight, port, target
  static constexpr int8_t kNaptr[] = {4, kCharString, kCharString, kCharString, kName, kEnd};
  switch (type) {
    case rrtype::kNS:
    case rrtype::kMD:
    case rrtype::kMF:
    case rrtype::kCNAME:
    case rrtype::kMB:
    case rrtype::kMG:
    case rrtype::kMR:
    case rrtype::kPTR:
    case rrtype::kDNAME:
      return kOneName;
    case rrtype::kSOA:
      return kSoa;
    case rrtype::kMINFO:
    case rrtype::kRP:
      return kTwoNames;
    case rrtype::kMX:
    case rrtype::kAFSDB:
    case kTypeRT:
      return kPreference;
    case kTypePX:
      return kPx;
    case rrtype::kSRV:
      return kSrv;
    case rrtype::kNAPTR:
      return kNaptr;
    default:
      return nullptr;
  }
}

ResponseError nameError(NameStatus s) {
  switch (s) {
    case NameStatus::kOk:
      return ResponseError::kOk;
    case NameStatus::kTruncated:
      return ResponseError::kTruncatedName;
    case NameStatus::kBadLabel:
      return ResponseError::kBadLabel;
    case NameStatus::kTooLong:
      return ResponseError::kNameTooLong;
    case NameStatus::kPointerLoop:
      return ResponseError::kBadPointer;
  }
  return ResponseError::kBadPointer;
}

// Walks the RDATA of `layout` at packet[rdata, rdata + rdlength). With `out` null it only checks;
// otherwise it writes the uncompressed form into out[0, capacity) (*written octets). Names are
// parsed with the RDATA end as the message end: a name must not run out of its record, and its
// pointers lead backwards into the message (parseName's rule).
enum class Walk { kOk, kNoRoom };
ResponseError walkRdata(const uint8_t* packet, size_t rdata, size_t rdlength, const int8_t* layout,
                        uint8_t* out, size_t capacity, size_t* written, bool lower, Walk* walk) {
  const size_t end = rdata + rdlength;
  size_t pos = rdata;
  size_t w = 0;
  *walk = Walk::kOk;
  for (const int8_t* f = layout; *f != kEnd; ++f) {
    const uint8_t* from = nullptr;
    size_t len = 0;
    NameBuf name;
    if (*f == kName) {
      const NameStatus st = parseName(packet, end, pos, name, &pos);
      if (st == NameStatus::kTruncated) return ResponseError::kBadRdata;
      if (st != NameStatus::kOk) return nameError(st);
      if (lower && out != nullptr) lowercase(name);
      from = name.data;
      len = name.length;
    } else {
      len = *f == kCharString ? (pos < end ? 1u + packet[pos] : 1u) : static_cast<size_t>(*f);
      if (end - pos < len) return ResponseError::kBadRdata;
      from = packet + pos;
      pos += len;
    }
    if (out != nullptr) {
      if (capacity - w < len) {
        *walk = Walk::kNoRoom;
        return ResponseError::kOk;
      }
      std::memcpy(out + w, from, len);
      w += len;
    }
  }
  if (pos != end) return ResponseError::kBadRdata;
  if (written != nullptr) *written = w;
  return ResponseError::kOk;
}

// Total order on two trusted (already parsed) names at offsets a and b of the packet, compressed
// or not, without copying them: label by label from the left, lengths then lowercased octets.
int compareAt(const uint8_t* p, size_t a, size_t b) {
  for (;;) {
    while ((p[a] & 0xC0) == 0xC0) a = (static_cast<size_t>(p[a] & 0x3F) << 8) | p[a + 1];
    while ((p[b] & 0xC0) == 0xC0) b = (static_cast<size_t>(p[b] & 0x3F) << 8) | p[b + 1];
    if (a == b) return 0;  // the same octets from here on
    const uint8_t la = p[a];
    const uint8_t lb = p[b];
    if (la != lb) return la < lb ? -1 : 1;
    if (la == 0) return 0;
    for (size_t i = 1; i <= la; ++i) {
      const uint8_t ca = asciiLower(p[a + i]);
      const uint8_t cb = asciiLower(p[b + i]);
      if (ca != cb) return ca < cb ? -1 : 1;
    }
    a += 1u + la;
    b += 1u + lb;
  }
}

bool optionsFramed(const uint8_t* p, size_t len) {
  size_t pos = 0;
  while (pos < len) {
    if (len - pos < 4) return false;
    const size_t olen = readU16(p + pos + 2);
    if (len - pos - 4 < olen) return false;
    pos += 4 + olen;
  }
  return true;
}

}  // namespace

std::string_view responseErrorText(ResponseError e) {
  switch (e) {
    case ResponseError::kOk:
      return "ok";
    case ResponseError::kTruncatedHeader:
      return "shorter than a header";
    case ResponseError::kBadQuestionCount:
      return "more than one question";
    case ResponseError::kCountExceedsPacket:
      return "section counts exceed the message";
    case ResponseError::kTruncatedName:
      return "name runs past the end";
    case ResponseError::kBadPointer:
      return "compression pointer does not point backwards";
    case ResponseError::kBadLabel:
      return "label longer than 63 octets";
    case ResponseError::kNameTooLong:
      return "name longer than 255 octets";
    case ResponseError::kTruncatedQuestion:
      return "question cut short";
    case ResponseError::kTruncatedRecord:
      return "record cut short";
    case ResponseError::kTruncatedRdata:
      return "RDATA runs past the end";
    case ResponseError::kBadRdata:
      return "RDATA does not match its type";
    case ResponseError::kTrailingData:
      return "octets after the last record";
    case ResponseError::kDuplicateOpt:
      return "more than one OPT";
    case ResponseError::kOptNotInAdditional:
      return "OPT outside the additional section";
    case ResponseError::kOptOwnerNotRoot:
      return "OPT owner is not the root";
    case ResponseError::kBadOptOptions:
      return "EDNS option runs past the OPT";
    case ResponseError::kTsigNotLast:
      return "TSIG is not the last record";
    case ResponseError::kTooManyRecords:
      return "more records than the parser's storage";
  }
  return "?";
}

void Edns::Iterator::load() {
  if (end_ - at_ < 4 || static_cast<size_t>(end_ - at_ - 4) < readU16(at_ + 2)) {
    at_ = end_;  // the parse checked the framing; a hand-made Edns just ends here
    return;
  }
  current_ = EdnsOption{readU16(at_), readU16(at_ + 2), at_ + 4};
}

bool Edns::find(uint16_t code, EdnsOption& out) const {
  for (const EdnsOption& o : *this) {
    if (o.code == code) {
      out = o;
      return true;
    }
  }
  return false;
}

bool decodeExtendedError(const EdnsOption& o, ExtendedError& out) {
  // RFC 8914 §2: INFO-CODE (16 bits), then EXTRA-TEXT to the end of the option.
  if (o.code != edns_option::kExtendedError || o.length < 2) return false;
  out.info_code = readU16(o.data);
  out.text = std::string_view(reinterpret_cast<const char*>(o.data + 2), o.length - 2u);
  return true;
}

OptionStatus extendedError(const Edns& e, ExtendedError& out) {
  EdnsOption o;
  if (!e.find(edns_option::kExtendedError, o)) return OptionStatus::kAbsent;
  return decodeExtendedError(o, out) ? OptionStatus::kOk : OptionStatus::kMalformed;
}

OptionStatus clientSubnet(const Edns& e, ClientSubnet& out) {
  EdnsOption o;
  out.present = false;
  if (!e.find(edns_option::kClientSubnet, o)) return OptionStatus::kAbsent;
  return parseClientSubnet(o.data, o.length, /*query=*/false, out) ? OptionStatus::kOk
                                                                   : OptionStatus::kMalformed;
}

OptionStatus cookie(const Edns& e, CookieView& out) {
  EdnsOption o;
  if (!e.find(edns_option::kCookie, o)) return OptionStatus::kAbsent;
  if (o.length < 16 || o.length > 40) return OptionStatus::kMalformed;
  out.client = o.data;
  out.server = o.data + 8;
  out.server_length = static_cast<uint8_t>(o.length - 8);
  return OptionStatus::kOk;
}

std::span<const RecordView> Response::section(Section s) const {
  switch (s) {
    case Section::kAnswer:
      return records.subspan(0, answer_count);
    case Section::kAuthority:
      return records.subspan(answer_count, authority_count);
    case Section::kAdditional:
      return records.subspan(answer_count + authority_count, additional_count);
  }
  return {};
}

bool rdataHasNames(uint16_t type) {
  return rdataLayout(type) != nullptr;
}

ResponseError parseResponse(const uint8_t* p, size_t size, std::span<RecordView> storage,
                            Response& out) {
  out = Response{};
  out.packet = p;
  out.size = size;
  if (size < kHeaderSize) return ResponseError::kTruncatedHeader;
  out.id = readU16(p);
  out.flags = readU16(p + 2);
  out.opcode = static_cast<uint8_t>((out.flags >> 11) & 0x0F);
  out.qdcount = readU16(p + 4);
  out.ancount = readU16(p + 6);
  out.nscount = readU16(p + 8);
  out.arcount = readU16(p + 10);
  auto fail = [&](ResponseError e, size_t at) {
    out.error_offset = at;
    out.answer_count = out.authority_count = out.additional_count = 0;  // records stays empty
    return e;
  };
  // Offsets in RecordView are 16 bits; no DNS transport carries more (RFC 1035 §4.2.2).
  if (size > kMaxMessageSize) return fail(ResponseError::kTrailingData, kMaxMessageSize);
  if (out.qdcount > 1) return fail(ResponseError::kBadQuestionCount, 4);
  const size_t records = size_t{out.ancount} + out.nscount + out.arcount;
  // Cheap refusal of counts no message this size can hold (a question takes 5 octets at least).
  if (out.qdcount * 5u + records * kMinRecordSize > size - kHeaderSize) {
    return fail(ResponseError::kCountExceedsPacket, 4);
  }

  size_t pos = kHeaderSize;
  if (out.qdcount == 1) {
    const NameStatus st = parseName(p, size, pos, out.qname, &pos);
    if (st != NameStatus::kOk) return fail(nameError(st), kHeaderSize);
    if (size - pos < 4) return fail(ResponseError::kTruncatedQuestion, pos);
    out.qtype = readU16(p + pos);
    out.qclass = readU16(p + pos + 2);
    pos += 4;
    out.has_question = true;
  }

  size_t kept = 0;
  uint16_t* counts[3] = {&out.answer_count, &out.authority_count, &out.additional_count};
  for (size_t i = 0; i < records; ++i) {
    const size_t start = pos;
    const Section section = i < out.ancount                 ? Section::kAnswer
                            : i < out.ancount + out.nscount ? Section::kAuthority
                                                            : Section::kAdditional;
    if (pos == size) return fail(ResponseError::kCountExceedsPacket, pos);
    const NameStatus st = skipName(p, size, pos, &pos);
    if (st != NameStatus::kOk) return fail(nameError(st), start);
    if (size - pos < 10) return fail(ResponseError::kTruncatedRecord, start);
    RecordView r;
    r.owner = static_cast<uint16_t>(start);
    r.type = readU16(p + pos);
    r.rclass = readU16(p + pos + 2);
    r.ttl = readU32(p + pos + 4);
    r.rdlength = readU16(p + pos + 8);
    pos += 10;
    r.rdata = static_cast<uint16_t>(pos);
    if (size - pos < r.rdlength) return fail(ResponseError::kTruncatedRdata, start);
    pos += r.rdlength;

    if (r.type == rrtype::kOPT) {
      // RFC 6891 §6.1.1: one OPT at most, in the additional section, owned by the root.
      if (section != Section::kAdditional) return fail(ResponseError::kOptNotInAdditional, start);
      if (out.edns.present) return fail(ResponseError::kDuplicateOpt, start);
      if (p[start] != 0) {  // not the root written out; maybe a pointer to one
        NameBuf owner;
        size_t ignored;
        if (parseName(p, size, start, owner, &ignored) != NameStatus::kOk || owner.length != 1) {
          return fail(ResponseError::kOptOwnerNotRoot, start);
        }
      }
      if (!optionsFramed(p + r.rdata, r.rdlength))
        return fail(ResponseError::kBadOptOptions, start);
      Edns& e = out.edns;
      e.present = true;
      e.udp_size = r.rclass;
      e.extended_rcode = static_cast<uint8_t>(r.ttl >> 24);
      e.version = static_cast<uint8_t>(r.ttl >> 16);
      e.flags = static_cast<uint16_t>(r.ttl);
      e.dnssec_ok = (e.flags & 0x8000) != 0;
      e.options = p + r.rdata;
      e.options_length = r.rdlength;
      continue;
    }
    if (r.type == rrtype::kTSIG) {
      if (section != Section::kAdditional || i + 1 != records) {
        return fail(ResponseError::kTsigNotLast, start);
      }
      out.has_tsig = true;
      out.tsig = r;
      continue;
    }
    if (const int8_t* layout = rdataLayout(r.type)) {
      Walk walk;
      const ResponseError e =
          walkRdata(p, r.rdata, r.rdlength, layout, nullptr, 0, nullptr, false, &walk);
      if (e != ResponseError::kOk) return fail(e, start);
    }
    if (kept == storage.size()) return fail(ResponseError::kTooManyRecords, start);
    storage[kept++] = r;
    ++*counts[static_cast<int>(section)];
  }
  if (pos != size) return fail(ResponseError::kTrailingData, pos);
  out.records = std::span<const RecordView>(storage.data(), kept);
  return ResponseError::kOk;
}

void ownerName(const Response& msg, const RecordView& r, NameBuf& out) {
  size_t ignored;
  (void)parseName(msg.packet, msg.size, r.owner, out, &ignored);  // checked by the parse
}

bool expandRdata(const Response& msg, const RecordView& r, uint8_t* out, size_t capacity,
                 size_t* length, bool lowercase) {
  const int8_t* layout = rdataLayout(r.type);
  if (layout == nullptr) {
    if (capacity < r.rdlength) return false;
    std::memcpy(out, msg.packet + r.rdata, r.rdlength);
    *length = r.rdlength;
    return true;
  }
  Walk walk;
  const ResponseError e =
      walkRdata(msg.packet, r.rdata, r.rdlength, layout, out, capacity, length, lowercase, &walk);
  return e == ResponseError::kOk && walk == Walk::kOk;
}

bool groupRrsets(const Response& msg, Section s, std::span<uint16_t> order,
                 std::span<RrsetView> sets, size_t* count) {
  const std::span<const RecordView> rs = msg.section(s);
  *count = 0;
  if (order.size() < rs.size() || sets.size() < rs.size()) return false;
  for (size_t i = 0; i < rs.size(); ++i) order[i] = static_cast<uint16_t>(i);
  auto cmp = [&](uint16_t a, uint16_t b) -> int {
    if (rs[a].type != rs[b].type) return rs[a].type < rs[b].type ? -1 : 1;
    if (rs[a].rclass != rs[b].rclass) return rs[a].rclass < rs[b].rclass ? -1 : 1;
    return compareAt(msg.packet, rs[a].owner, rs[b].owner);
  };
  // By RRset, then message order within one (the index breaks ties).
  std::sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(rs.size()),
            [&](uint16_t a, uint16_t b) {
              const int c = cmp(a, b);
              return c != 0 ? c < 0 : a < b;
            });
  size_t n = 0;
  for (size_t i = 0; i < rs.size(); ++i) {
    const RecordView& r = rs[order[i]];
    if (n > 0 && cmp(order[sets[n - 1].first], order[i]) == 0) {
      ++sets[n - 1].count;
      sets[n - 1].ttl = std::min(sets[n - 1].ttl, r.ttl);
      continue;
    }
    sets[n++] = RrsetView{static_cast<uint16_t>(i), 1, r.type, r.rclass, r.owner, r.ttl};
  }
  // RRsets in the order their first records appear (a CNAME chain stays in its order).
  std::sort(
      sets.begin(), sets.begin() + static_cast<ptrdiff_t>(n),
      [&](const RrsetView& a, const RrsetView& b) { return order[a.first] < order[b.first]; });
  *count = n;
  return true;
}

QuestionMatch matchQuestion(const Response& msg, uint16_t id, const uint8_t* qname, uint16_t qtype,
                            uint16_t qclass) {
  if (!msg.isResponse()) return QuestionMatch::kNotResponse;
  if (msg.id != id) return QuestionMatch::kOtherId;
  if (!msg.has_question) return QuestionMatch::kNoQuestion;
  if (!equalNames(msg.qname.data, qname) || msg.qtype != qtype || msg.qclass != qclass) {
    return QuestionMatch::kOtherQuestion;
  }
  return QuestionMatch::kMatch;
}

bool isAtOrBelow(const NameBuf& name, const NameBuf& zone) {
  if (name.label_count < zone.label_count) return false;
  if (zone.label_count == 0) return true;  // everything is below the root
  return equalNames(name.suffix(name.label_count - zone.label_count), zone.data);
}

}  // namespace meridian::dns
