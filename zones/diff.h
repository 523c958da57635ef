// A change to a zone: the RRsets removed and the RRsets added, with the SOA serial before and
// after. Every change becomes one: an API request (the RRsets it replaces or deletes), a zone file
// edited by hand and reloaded (diff of the old and new content), later an IXFR (RFC 1995) received
// from a primary. The journal keeps them in serial order, IXFR is answered from them, the audit log
// records them.
//
// An RRset that changed appears whole in both lists (the old one removed, the new one added): a
// diff works at RRset granularity, as the PowerDNS API does; record-level IXFR deltas are derived
// from it. The SOA is an RRset like any other, so a serial change shows as SOA removed and added.
// Control thread only.
#pragma once

#include <cstdint>

#include "core/result.h"
#include "zones/content.h"

namespace meridian::zones {

struct ZoneDiff {
  uint32_t old_serial = 0;
  uint32_t new_serial = 0;
  ZoneContent removed;  // RRsets of the old content that the new one does not have as they were
  ZoneContent added;    // RRsets of the new content that the old one did not have as they are

  [[nodiscard]] bool empty() const { return removed.empty() && added.empty(); }
};

// The diff that turns `a` into `b` (same apex): RRsets compared exactly (owner spelling, TTL,
// RDATA and its order). Serials are the apex SOAs' (0 when a content has none).
[[nodiscard]] ZoneDiff diff(const ZoneContent& a, const ZoneContent& b);

// Applies `d` to `content`: apply(a, diff(a, b)) makes a equal to b. Refused with a message, and
// `content` unchanged, when the diff was not made from this content: its old serial is not the
// content's serial, a removed RRset is not present exactly as recorded, or an added RRset exists
// already and is not removed by the diff.
[[nodiscard]] Result<void> apply(ZoneContent& content, const ZoneDiff& d);

}  // namespace meridian::zones
