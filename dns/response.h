// DNS responses as a resolver or a health check receives them (RFC 1035 §4, RFC 6891): header,
// question, and the answer, authority and additional records as views into the caller's packet
// (owner offset, TYPE, CLASS, TTL, RDATA offset and length), with the OPT record decoded and a TSIG
// noted. Nothing is copied and nothing allocated: the caller gives the storage for the record
// views (a span of RecordView; kMaxRecords slots hold any message) and keeps the packet alive as
// long as it uses the Response.
//
// The parse checks every length and every name, including the names inside the RDATA of the types
// whose names may be compressed (rdataHasNames()), so that whatever parses can be expanded into the
// uncompressed form a cache stores (expandRdata()) without further checks. What it refuses comes
// back as a ResponseError naming the fault: the resolver treats any of them as FORMERR from that
// server, the health checks print responseErrorText().
//
// Called on the resolver's worker threads and on the health checks' control loop; reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dns/message.h"
#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::dns {

namespace edns_option {
inline constexpr uint16_t kExtendedError = 15;  // RFC 8914 (with the others of wire.h)
}

enum class ResponseError : uint8_t {
  kOk,
  kTruncatedHeader,     // fewer than 12 octets
  kBadQuestionCount,    // QDCOUNT above 1
  kCountExceedsPacket,  // the header counts more questions or records than the message holds
  kTruncatedName,       // a name runs past the end of the message (or of its RDATA)
  kBadPointer,          // a compression pointer that does not point backwards (loops, past the end)
  kBadLabel,            // a label type other than 0 or 3 (RFC 6891 §5), i.e. longer than 63 octets
  kNameTooLong,         // more than 255 octets (so more than 127 labels) once decompressed
  kTruncatedQuestion,   // QTYPE/QCLASS cut off
  kTruncatedRecord,     // TYPE..RDLENGTH cut off
  kTruncatedRdata,      // RDLENGTH runs past the end of the message
  kBadRdata,            // the RDATA of a type with names does not hold its names and fields exactly
  kTrailingData,        // octets after the last record
  kDuplicateOpt,        // RFC 6891 §6.1.1: more than one OPT
  kOptNotInAdditional,  // RFC 6891 §6.1.1: OPT in the answer or authority section
  kOptOwnerNotRoot,     // RFC 6891 §6.1.2: the OPT owner must be the root
  kBadOptOptions,       // an EDNS option runs past the OPT RDATA
  kTsigNotLast,         // RFC 8945 §5.1: TSIG is the last record of the additional section
  kTooManyRecords,      // more records than the caller's storage holds
};

// A few words for logs and health-check reasons ("compression pointer does not point backwards").
[[nodiscard]] std::string_view responseErrorText(ResponseError e);

enum class Section : uint8_t { kAnswer, kAuthority, kAdditional };

// One resource record of a parsed message. Offsets are into the packet (a message is at most 64
// KiB).
struct RecordView {
  uint16_t owner = 0;  // the owner name as it appears (possibly compressed)
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint16_t rdata = 0;  // first RDATA octet
  uint16_t rdlength = 0;
  uint32_t ttl = 0;  // as sent (RFC 2181 §8's "MSB set means 0" is the cache's business)
};

// The fewest octets a record can take: the root as owner, then TYPE..RDLENGTH.
inline constexpr size_t kMinRecordSize = 1 + 10;
// Record views that any message of `size` octets can need; kMaxRecords covers every message.
[[nodiscard]] constexpr size_t maxRecordsFor(size_t size) {
  return size < kHeaderSize ? 0 : (size - kHeaderSize) / kMinRecordSize;
}
inline constexpr size_t kMaxRecords = maxRecordsFor(kMaxMessageSize);

// One EDNS option (RFC 6891 §6.1.2) inside the OPT RDATA.
struct EdnsOption {
  uint16_t code = 0;
  uint16_t length = 0;
  const uint8_t* data = nullptr;
};

// The OPT record of a response, decoded (RFC 6891 §6.1.3). Its options were checked to be framed
// correctly by the parse; their contents are read by the accessors below.
struct Edns {
  bool present = false;
  uint16_t udp_size = 0;       // the responder's payload size (OPT CLASS)
  uint8_t extended_rcode = 0;  // the upper 8 bits of the 12-bit RCODE
  uint8_t version = 0;
  bool dnssec_ok = false;            // DO (RFC 3225)
  uint16_t flags = 0;                // all 16 flag bits: DO and the Z bits
  const uint8_t* options = nullptr;  // OPT RDATA
  uint16_t options_length = 0;

  // Iterates the options in order (for (const EdnsOption& o : edns) ...).
  class Iterator {
   public:
    Iterator(const uint8_t* at, const uint8_t* end) : at_(at), end_(end) { load(); }
    const EdnsOption& operator*() const { return current_; }
    const EdnsOption* operator->() const { return &current_; }
    Iterator& operator++() {
      at_ += 4 + current_.length;
      load();
      return *this;
    }
    bool operator==(const Iterator& o) const { return at_ == o.at_; }

   private:
    void load();
    const uint8_t* at_;
    const uint8_t* end_;
    EdnsOption current_;
  };
  [[nodiscard]] Iterator begin() const { return {options, options + options_length}; }
  [[nodiscard]] Iterator end() const {
    return {options + options_length, options + options_length};
  }
  // The first option with `code`; false when there is none.
  [[nodiscard]] bool find(uint16_t code, EdnsOption& out) const;
};

// RFC 8914 Extended DNS Error: INFO-CODE and EXTRA-TEXT (UTF-8, not NUL-terminated, may be empty;
// a view into the packet).
struct ExtendedError {
  uint16_t info_code = 0;
  std::string_view text;
};
// RFC 7873 COOKIE in a response: the client cookie echoed and the server cookie (8 to 32 octets).
struct CookieView {
  const uint8_t* client = nullptr;  // 8 octets
  const uint8_t* server = nullptr;
  uint8_t server_length = 0;
};

enum class OptionStatus { kAbsent, kOk, kMalformed };

// Typed accessors of the options a resolver reads. A malformed option is reported, not fatal to the
// parse: RFC 6891 §6.1.2 leaves unknown and bad options to the consumer.
[[nodiscard]] bool decodeExtendedError(const EdnsOption& o, ExtendedError& out);
// The first EDE option; a response may carry several (iterate and decodeExtendedError() each).
[[nodiscard]] OptionStatus extendedError(const Edns& e, ExtendedError& out);
// RFC 7871 §7.3: in a response SCOPE PREFIX-LENGTH may be set; the address is as in the query.
[[nodiscard]] OptionStatus clientSubnet(const Edns& e, ClientSubnet& out);
// RFC 7873 §5.3: a response's COOKIE holds a client and a server cookie (16 to 40 octets).
[[nodiscard]] OptionStatus cookie(const Edns& e, CookieView& out);

struct Response {
  const uint8_t* packet = nullptr;
  size_t size = 0;

  uint16_t id = 0;
  uint16_t flags = 0;  // the second header word
  uint8_t opcode = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;  // as in the header

  bool has_question = false;
  NameBuf qname;  // letter case as received
  uint16_t qtype = 0;
  uint16_t qclass = 0;

  // answer, authority, additional (without OPT and TSIG) in message order, in the caller's storage.
  std::span<const RecordView> records;
  uint16_t answer_count = 0;
  uint16_t authority_count = 0;
  uint16_t additional_count = 0;

  Edns edns;
  bool has_tsig = false;
  RecordView tsig;  // the TSIG record, when has_tsig (the last of the additional section)

  // Where the parse stopped on an error (an octet offset into the packet), for messages.
  size_t error_offset = 0;

  [[nodiscard]] bool isResponse() const { return (flags & flag::kQR) != 0; }
  [[nodiscard]] bool flag(uint16_t bit) const { return (flags & bit) != 0; }
  // The full RCODE: the header's 4 bits, and OPT's 8 upper bits when there is an OPT.
  [[nodiscard]] uint16_t rcode() const {
    return static_cast<uint16_t>((static_cast<uint16_t>(edns.extended_rcode) << 4) | (flags & 0xF));
  }
  [[nodiscard]] std::span<const RecordView> section(Section s) const;
  [[nodiscard]] const uint8_t* rdata(const RecordView& r) const { return packet + r.rdata; }
};

// Parses the message packet[0, size) into `out`, with the record views in `storage`. When the
// header could be read (anything but kTruncatedHeader) id, flags, opcode and the counts are set
// even on error, so a caller can tell a reply to its query before judging the rest.
[[nodiscard]] ResponseError parseResponse(const uint8_t* packet, size_t size,
                                          std::span<RecordView> storage, Response& out);

// The owner name of `r`, uncompressed, letter case as received.
void ownerName(const Response& msg, const RecordView& r, NameBuf& out);

// Types whose RDATA holds domain names that a sender may have compressed and a receiver must (or,
// RFC 3597 §4, should) decompress: the RFC 1035 types of hasCompressibleNames(), and RP, AFSDB,
// RT, PX, NAPTR, SRV and DNAME. Every other type is opaque octets.
[[nodiscard]] bool rdataHasNames(uint16_t type);

// A record's RDATA grows by at most this much when its names are uncompressed (two names, each
// from one octet to 255).
inline constexpr size_t kMaxRdataExpansion = 2 * (kMaxNameLength - 1);

// Writes the RDATA of `r` into out[0, capacity) with every embedded name uncompressed, which is
// what a cache stores; with `lowercase` the names are also lowercased (the canonical form of RFC
// 4034 §6.2 that DNSSEC validation needs). Opaque types are copied as they are. False when
// `capacity` is too small (r.rdlength + kMaxRdataExpansion always suffices).
[[nodiscard]] bool expandRdata(const Response& msg, const RecordView& r, uint8_t* out,
                               size_t capacity, size_t* length, bool lowercase = false);

// An RRset of one section: records with the same owner (case-insensitively), TYPE and CLASS.
struct RrsetView {
  uint16_t first = 0;  // its records are order[first, first + count) of groupRrsets()
  uint16_t count = 0;
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint16_t owner = 0;  // owner offset of its first record
  uint32_t ttl = 0;    // the smallest TTL of its records (RFC 2181 §5.2)
};

// Groups the records of section `s` into RRsets. `order` receives indices into msg.section(s),
// each RRset's records together and in message order; `sets` the RRsets in the order their first
// records appear. Both need msg.section(s).size() slots (false otherwise). O(n log n), no
// allocation. Returns the number of RRsets in *count.
[[nodiscard]] bool groupRrsets(const Response& msg, Section s, std::span<uint16_t> order,
                               std::span<RrsetView> sets, size_t* count);

// Is the response an answer to the question we sent? RFC 5452 §9.1: ID, and the question (QNAME
// case-insensitively, QTYPE, QCLASS) must be those of the query; QR must be set.
enum class QuestionMatch {
  kMatch,
  kNotResponse,  // QR clear
  kOtherId,
  kNoQuestion,  // QDCOUNT 0 (some servers answer FORMERR/NOTIMP so)
  kOtherQuestion,
};
[[nodiscard]] QuestionMatch matchQuestion(const Response& msg, uint16_t id, const uint8_t* qname,
                                          uint16_t qtype, uint16_t qclass);

// Is `name` equal to or below `zone`, letter case ignored? The bailiwick test on names as parsed
// from a response (parseName keeps the sender's case); label boundaries come from the NameBufs.
// (name.h's isSubdomain wants lowercase names and octet lengths.)
[[nodiscard]] bool isAtOrBelow(const NameBuf& name, const NameBuf& zone);

}  // namespace meridian::dns
