// Builds an immutable Zone from records (from the zone-file loader, later from zone transfers):
// groups RRsets, runs the load-time checks (SOA and NS at the apex, CNAME beside other data,
// out-of-zone data), finds delegation cuts, wildcards and additional-section targets, and
// pre-encodes every record. Runs on the control thread; errors name the file and line of the
// offending record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "dns/name.h"
#include "zones/zone.h"

namespace meridian::zones {

class ZoneBuilder {
 public:
  explicit ZoneBuilder(const dns::NameBuf& apex);

  // `owner` is an uncompressed wire name; `rdata` an uncompressed RDATA; `where` is "file:line".
  void add(const uint8_t* owner, uint16_t type, uint16_t klass, uint32_t ttl, const uint8_t* rdata,
           size_t rdlen, const std::string& where);

  // Warnings (dropped out-of-zone records, TTL mismatches, duplicates) are appended to `warnings`.
  [[nodiscard]] Result<std::shared_ptr<const Zone>> build(std::vector<std::string>& warnings);

 private:
  struct Record {
    std::string owner;  // lowercase wire
    uint16_t type;
    uint32_t ttl;
    std::string rdata;
    std::string where;
  };
  dns::NameBuf apex_;
  std::vector<Record> records_;
  std::vector<std::string> early_warnings_;
  std::string first_error_;
};

// Positions of the names inside an RDATA of `type` that are compressible (RFC 3597 §4). Returns how
// many (0..2). Assumes well-formed RDATA.
size_t compressibleNames(uint16_t type, const uint8_t* rdata, size_t rdlen, uint16_t pos[2]);

// Position of the name whose addresses go in the additional section (NS, MX, SRV targets), or -1.
int additionalTargetPos(uint16_t type);

}  // namespace meridian::zones
