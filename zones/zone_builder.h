// Builds an immutable Zone from records (from the zone-file loader, later from zone transfers):
// groups RRsets, runs the load-time checks (SOA and NS at the apex, CNAME beside other data,
// out-of-zone data, data below a DNAME, records and RRsets that cannot fit a DNS message), finds
// delegation cuts, wildcards and additional-section targets, pre-encodes every record and computes
// the zone's content digest. Runs on the control thread; errors name the file and line of the
// offending record, and every error is reported, not only the first.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "dns/name.h"
#include "zones/zone.h"

namespace meridian::zones {

class ZoneBuilder {
 public:
  // `source` (a file name) prefixes the zone-level messages that have no line ("no SOA").
  explicit ZoneBuilder(const dns::NameBuf& apex, std::string source = {});

  // `owner` is an uncompressed wire name; `rdata` an uncompressed RDATA; `file` and `line` say
  // where the record is (messages read "file:line", or "file" for line 0). The builder keeps one
  // copy of each file name and packs owners and RDATA into one buffer: no allocation per record.
  void add(const uint8_t* owner, uint16_t type, uint16_t klass, uint32_t ttl, const uint8_t* rdata,
           size_t rdlen, std::string_view file, uint32_t line);

  // An error found by the record's source (a zone-file syntax error): the zone will be refused.
  // Zone-level checks that such an error may have caused (no SOA, no NS) are then skipped.
  void addError(std::string message);

  // Warnings (dropped out-of-zone records, TTL mismatches, duplicates, DNSSEC records served
  // unsigned) are appended to `warnings`. The error, if any, lists every problem, one per line
  // (at most kMaxErrors of them, then a count of the rest).
  [[nodiscard]] Result<std::shared_ptr<const Zone>> build(std::vector<std::string>& warnings);

  // A file with more errors than this is broken as a whole; listing them all helps nobody.
  static constexpr size_t kMaxErrors = 1000;

 private:
  struct Record {
    size_t owner;  // lowercase wire name, at data_[owner], owner_length octets
    size_t rdata;  // at data_[rdata], rdlen octets
    uint32_t ttl;
    uint32_t seq;   // position in the input, for messages in file order
    uint32_t file;  // index in files_
    uint32_t line;
    uint16_t type;
    uint16_t rdlen;
    uint8_t owner_length;
  };
  [[nodiscard]] std::string_view ownerOf(const Record& r) const {
    return {reinterpret_cast<const char*>(data_.data() + r.owner), r.owner_length};
  }
  [[nodiscard]] std::string_view rdataOf(const Record& r) const {
    return {reinterpret_cast<const char*>(data_.data() + r.rdata), r.rdlen};
  }
  // "file:line" of a record, for messages.
  [[nodiscard]] std::string where(const Record& r) const;

  dns::NameBuf apex_;
  std::string source_;
  std::vector<Record> records_;
  std::vector<uint8_t> data_;       // owners and RDATA of records_
  std::vector<std::string> files_;  // file names records_ refer to
  uint32_t last_file_ = 0;
  std::vector<std::string> early_warnings_;
  std::vector<std::string> errors_;
  size_t source_errors_ = 0;
};

// The largest RDATA a record owned by a name of `owner_length` octets may have and still fit in a
// DNS message: header (12), the question naming it (owner + 4), and the record itself with its
// owner compressed to a pointer (2 + 10 + RDATA) within 65535 octets (RFC 1035 §4.2.2).
[[nodiscard]] constexpr size_t maxRdataLength(size_t owner_length) {
  return dns::kMaxMessageSize - dns::kHeaderSize - (owner_length + 4) - 2 - 10;
}

// Positions of the names inside an RDATA of `type` that are compressible (RFC 3597 §4). Returns how
// many (0..2). Assumes well-formed RDATA.
size_t compressibleNames(uint16_t type, const uint8_t* rdata, size_t rdlen, uint16_t pos[2]);

// Types that exist only in queries and transfers, never in a zone (OPT, TSIG, TKEY, IXFR, AXFR,
// MAILB, MAILA, ANY).
[[nodiscard]] bool isMetaType(uint16_t type);

// Position of the name whose addresses go in the additional section (NS, MX, SRV targets), or -1.
int additionalTargetPos(uint16_t type);

}  // namespace meridian::zones
