// DNS messages: parsing an incoming query in place (RFC 1035 §4.1, RFC 6891 EDNS0, RFC 7871 ECS,
// RFC 8945 TSIG framing) and building a response into a caller-owned buffer with name compression.
//
// Both run on data-plane worker threads for every query: no allocation, no exceptions. The parser
// checks every length before reading; anything malformed yields kFormErr (or kDrop when no reply
// may be sent), never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::dns {

// RFC 7871 §6: the EDNS Client Subnet option.
struct ClientSubnet {
  bool present = false;
  uint16_t family = 0;  // 1 = IPv4, 2 = IPv6
  uint8_t source_prefix = 0;
  uint8_t scope_prefix = 0;
  uint8_t address[16] = {};
};

// The parts of a TSIG RR (RFC 8945 §4.2) needed to answer it.
struct TsigInfo {
  bool present = false;
  NameBuf key_name;
  NameBuf algorithm;
  uint8_t time_signed[6] = {};
  uint16_t fudge = 0;
  uint16_t original_id = 0;
};

struct Query {
  uint16_t id = 0;
  uint16_t flags = 0;  // the second header word as received
  uint8_t opcode = 0;
  bool has_question = false;
  NameBuf qname;        // as sent, letter case preserved (echoed in the question)
  NameBuf qname_lower;  // lowercased copy used for lookups
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  size_t question_end = 0;  // offset just past the question in the packet

  bool has_edns = false;
  uint8_t edns_version = 0;
  uint16_t udp_payload = 0;  // requester's payload size as sent
  bool dnssec_ok = false;
  bool nsid_requested = false;
  // RFC 7873 COOKIE: 8 octets of client cookie, then 0 or 8..32 of server cookie.
  uint8_t cookie_len = 0;
  uint8_t cookie[40] = {};
  ClientSubnet ecs;
  TsigInfo tsig;
};

enum class ParseStatus {
  kOk,
  kDrop,     // no response may be sent (too short for a header, or a response, QR=1)
  kFormErr,  // RFC 1035 §4.1.1: the name server was unable to interpret the query
  kNotImp,   // an opcode this server does not implement
};

// RFC 7871 §6 checks of an ECS option's payload (FAMILY, prefixes, ADDRESS length, zero padding
// bits); in a query SCOPE PREFIX-LENGTH must be 0, in a response it is at most the family's bits.
// False means FORMERR (queries) or a malformed option (responses).
[[nodiscard]] bool parseClientSubnet(const uint8_t* p, size_t len, bool query, ClientSubnet& ecs);

[[nodiscard]] ParseStatus parseQuery(const uint8_t* packet, size_t size, Query& query);

// A record as the general path (ResponseWriter::writeName's compression) wrote it right after a
// question for `base` (a zone apex), kept to be written again after the question of any name at
// or below `base` as one copy: its compression pointers lead into the question's `base` suffix or
// into the record itself, and both move by the same distance, the question name's length minus
// base's. Made at load time by ResponseWriter::capture(), written per query by replay().
struct ReplayRecord {
  // The largest SOA: owner pointer, TYPE..RDLENGTH, MNAME and RNAME uncompressed, five numbers.
  static constexpr size_t kMaxLength = 2 + 10 + 2 * kMaxNameLength + 20;
  static constexpr size_t kMaxPointers = 3;  // one per name (owner, MNAME, RNAME)
  static constexpr size_t kMaxEntries = 8;   // dictionary entries for the names' literal labels
  uint16_t length = 0;                       // 0: nothing captured, replay() declines
  uint8_t base_length = 0;
  uint8_t base_labels = 0;
  uint8_t pointer_count = 0;
  uint8_t entry_count = 0;
  uint8_t guard_count = 0;
  uint16_t pointer_at[kMaxPointers] = {};  // offsets in bytes of the 16-bit pointers to move
  uint16_t entry_at[kMaxEntries] = {};     // offsets in bytes, and label counts, of the entries
  uint8_t entry_labels[kMaxEntries] = {};
  // For each name of the record below `base`: its label just above `base` (lowercase, with its
  // length octet). A question name with that label there shares a longer suffix with the name,
  // which the general path would point at instead, so replay() leaves such questions to it.
  uint8_t guard[kMaxPointers][1 + kMaxLabelLength] = {};
  uint8_t base[kMaxNameLength] = {};  // lowercase
  uint8_t bytes[kMaxLength] = {};
};

// Builds a response in a fixed buffer. Sections are written in order (answer, authority,
// additional); an RRset either fits whole or is rolled back (RFC 2181 §9: never a partial RRset).
// The small writers are defined here, inline: every answer calls them a dozen times from
// zones/lookup.cc and server/pipeline.cc.
class ResponseWriter {
 public:
  // `limit` is the largest message the client accepts; `reserve` bytes at the end are kept free for
  // the OPT and TSIG records written last.
  void reset(uint8_t* buffer, size_t limit, size_t reserve) {
    buf_ = buffer;
    limit_ = limit;
    end_ = limit > reserve ? limit - reserve : 0;
    size_ = 0;
    counts_[0] = counts_[1] = counts_[2] = 0;
    entry_count_ = 0;
    has_question_ = false;
  }

  // Header and question from the query (question echoed with the client's letter case).
  void begin(const Query& query, bool echo_question);
  // Low 4 bits into the header; higher bits go into OPT.
  void setRcode(uint16_t rcode) {
    buf_[3] = static_cast<uint8_t>((buf_[3] & 0xF0) | (rcode & 0x0F));
  }
  void setFlag(uint16_t bit, bool on) {
    uint16_t flags = readU16(buf_ + 2);
    flags = on ? static_cast<uint16_t>(flags | bit) : static_cast<uint16_t>(flags & ~bit);
    dns::writeU16(buf_ + 2, flags);
  }

  enum class Section { kAnswer, kAuthority, kAdditional };

  struct Mark {
    size_t size;
    uint16_t counts[3];
    uint16_t entries;
  };
  [[nodiscard]] Mark mark() const {
    return Mark{size_, {counts_[0], counts_[1], counts_[2]}, entry_count_};
  }
  void rollback(const Mark& m) {
    size_ = m.size;
    counts_[0] = m.counts[0];
    counts_[1] = m.counts[1];
    counts_[2] = m.counts[2];
    entry_count_ = m.entries;
  }

  // Appends a compressed name; false when it does not fit (the caller rolls back).
  [[nodiscard]] bool writeName(const uint8_t* name);
  // Appends a pointer to the question name (the common owner); false without a question.
  [[nodiscard]] bool writeQnamePointer() {
    if (!has_question_ || size_ + 2 > end_) return false;
    dns::writeU16(buf_ + size_, static_cast<uint16_t>(0xC000 | qname_offset_));
    size_ += 2;
    return true;
  }
  [[nodiscard]] bool writeBytes(const void* data, size_t len) {
    if (size_ + len > end_) return false;
    std::memcpy(buf_ + size_, data, len);
    size_ += len;
    return true;
  }
  [[nodiscard]] bool writeU16(uint16_t v) {
    if (size_ + 2 > end_) return false;
    dns::writeU16(buf_ + size_, v);
    size_ += 2;
    return true;
  }
  [[nodiscard]] bool writeU32(uint32_t v) {
    if (size_ + 4 > end_) return false;
    dns::writeU32(buf_ + size_, v);
    size_ += 4;
    return true;
  }
  [[nodiscard]] size_t size() const { return size_; }
  [[nodiscard]] uint8_t* data() { return buf_; }
  void countRecord(Section s) { ++counts_[static_cast<int>(s)]; }

  // Writes `r` into section `s` when the message holds only the question and the question name
  // (`qname_lower`, as parsed) is at or below r's base: the octets the general path writes, with
  // the dictionary entries it adds. False (nothing written) otherwise, or when it does not fit.
  [[nodiscard]] bool replay(const ReplayRecord& r, const NameBuf& qname_lower, Section s);
  // Fills `r` from the record written since `from`, which must be the mark right after the question
  // (the base); `names_at` are the offsets in the record of its names as written. False when the
  // record cannot be replayed exactly (too long, too many labels or entries).
  [[nodiscard]] bool capture(const Mark& from, const uint16_t* names_at, size_t names,
                             ReplayRecord& r) const;

  // Writes the final section counts into the header and releases the reserve for OPT/TSIG.
  void finishSections();
  // Appends OPT (RFC 6891 §6.1.2) after the sections; `rcode` carries the extended rcode bits.
  // `cookie` (client + server cookie, 24 octets) may be null.
  [[nodiscard]] bool writeOpt(uint16_t payload, uint16_t rcode, bool dnssec_ok, const uint8_t* nsid,
                              size_t nsid_len, const ClientSubnet* ecs,
                              const uint8_t* cookie = nullptr, size_t cookie_len = 0);
  // Appends an unsigned TSIG RR carrying `error` (RFC 8945 §5.2: BADKEY/BADSIG replies).
  [[nodiscard]] bool writeTsigError(const TsigInfo& tsig, uint16_t error);

  [[nodiscard]] size_t limit() const { return limit_; }

 private:
  [[nodiscard]] bool matchesAt(const uint8_t* suffix, size_t offset) const;
  void remember(size_t offset, uint8_t labels);

  // Compression dictionary: offsets of label sequences already in the message. 96 entries cover any
  // response that fits in 64 KiB in practice; beyond that names are written uncompressed.
  static constexpr size_t kMaxEntries = 96;
  struct Entry {
    uint16_t offset;
    uint8_t labels;
  };

  uint8_t* buf_ = nullptr;
  size_t limit_ = 0;
  size_t end_ = 0;  // limit_ - reserve while sections are written
  size_t size_ = 0;
  uint16_t counts_[3] = {0, 0, 0};
  Entry entries_[kMaxEntries];
  uint16_t entry_count_ = 0;
  bool has_question_ = false;
  size_t qname_offset_ = kHeaderSize;
};

}  // namespace meridian::dns
