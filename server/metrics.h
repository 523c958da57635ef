// The query path's metrics beyond the basic counters: queries by qtype, transport and zone,
// steering decisions by service and region, and the UDP answer latency histogram.
//
// Written per worker thread: each QueryHandler owns a QueryBreakdown inside its cache-line-aligned
// Counters (server/pipeline.h) and is its only writer; a bump is a relaxed load and store (no
// read-modify-write, nothing shared between workers). The control side sums every handler's copy
// on read (Server::totals()); a relaxed 64-bit load is never torn, so a sum is at worst a few
// queries behind.
//
// Zones and steering keys are named on the control side only. MetricRegistry gives every zone
// origin, and every (service, region, decision), a slot number the first time a published snapshot
// holds it and keeps it for the life of the process; the snapshot carries the slots of its own
// zones and services (MetricSlots), so a worker indexes an array and never sees a name. A reload
// therefore neither loses counts (a zone keeps its slot and its counters) nor misattributes them
// (a slot is never given to another name). Beyond kZoneSlots - 1 zone names (or kSteeringSlots - 1
// steering keys) the rest share the last slot, shown as zone="(other)".
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "dns/wire.h"

namespace meridian::zones {
class Zone;
}
namespace meridian::georoute {
struct ServiceSet;
struct Service;
struct Decision;
}  // namespace meridian::georoute

namespace meridian::server {

struct ServingState;
struct CounterTotals;

using Counter = std::atomic<uint64_t>;
// Single writer: a relaxed load and store, not an atomic read-modify-write.
inline void bump(Counter& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// The query types counted on their own; everything else is "other" (the last slot).
inline constexpr std::array<uint16_t, 16> kCountedQtypes = {
    dns::rrtype::kA,   dns::rrtype::kNS,    dns::rrtype::kCNAME, dns::rrtype::kSOA,
    dns::rrtype::kPTR, dns::rrtype::kMX,    dns::rrtype::kTXT,   dns::rrtype::kAAAA,
    dns::rrtype::kSRV, dns::rrtype::kNAPTR, dns::rrtype::kDS,    dns::rrtype::kDNSKEY,
    64 /* SVCB */,     65 /* HTTPS */,      257 /* CAA */,       dns::rrtype::kANY};
inline constexpr size_t kQtypeSlots = kCountedQtypes.size() + 1;

// A table for the types below 256 (one load on the query path; a switch costs a dozen compares).
inline constexpr std::array<uint8_t, 256> kQtypeSlotTable = [] {
  std::array<uint8_t, 256> t{};
  for (auto& slot : t) slot = static_cast<uint8_t>(kQtypeSlots - 1);
  for (size_t i = 0; i < kCountedQtypes.size(); ++i) {
    if (kCountedQtypes[i] < 256) t[kCountedQtypes[i]] = static_cast<uint8_t>(i);
  }
  return t;
}();
inline constexpr size_t kCaaSlot = 14;
static_assert(kCountedQtypes[kCaaSlot] == 257);

[[nodiscard]] inline size_t qtypeSlot(uint16_t qtype) {
  if (qtype < 256) return kQtypeSlotTable[qtype];
  return qtype == 257 ? kCaaSlot : kQtypeSlots - 1;
}

// 511 zones and 511 steering keys counted apart (8 octets each per handler: 4 KiB apiece); the
// last slot collects the rest.
inline constexpr size_t kZoneSlots = 512;
inline constexpr size_t kSteeringSlots = 512;

// Upper bounds of the latency buckets in nanoseconds: 10 µs to 100 ms, roughly 1-2.5-5 per decade
// (an answer from memory takes a few µs; a batch of 32 under load some tens).
inline constexpr std::array<uint64_t, 13> kLatencyBoundsNs = {
    10'000,    25'000,    50'000,     100'000,    250'000,    500'000,    1'000'000,
    2'500'000, 5'000'000, 10'000'000, 25'000'000, 50'000'000, 100'000'000};
inline constexpr size_t kLatencySlots = kLatencyBoundsNs.size() + 1;

struct QueryBreakdown {
  std::array<Counter, kQtypeSlots> qtypes{};
  std::array<Counter, 2> transports{};  // udp, tcp
  std::array<Counter, kZoneSlots> zones{};
  std::array<Counter, kSteeringSlots> steering{};
  std::array<Counter, kLatencySlots> latency{};  // answered UDP queries by bucket
  Counter latency_sum_ns{0};

  // `n` answers handed to the socket `ns` nanoseconds after their batch was received.
  void observeLatency(uint64_t ns, uint64_t n) {
    size_t i = 0;
    while (i < kLatencyBoundsNs.size() && ns > kLatencyBoundsNs[i]) ++i;
    bump(latency[i], n);
    bump(latency_sum_ns, ns * n);
  }
};

// The sums over every handler (control side).
struct BreakdownTotals {
  std::array<uint64_t, kQtypeSlots> qtypes{};
  std::array<uint64_t, 2> transports{};
  std::array<uint64_t, kZoneSlots> zones{};
  std::array<uint64_t, kSteeringSlots> steering{};
  std::array<uint64_t, kLatencySlots> latency{};
  uint64_t latency_sum_ns = 0;
  void add(const QueryBreakdown& b);
};

// What a snapshot's zones and services count into; filled by MetricRegistry::assign() before the
// snapshot is published. Empty (tests that build a ServingState by hand): everything counts into
// the last slots.
struct MetricSlots {
  // Unique per published snapshot (MetricRegistry counts them), 0 = never assigned: with the zone's
  // address it keys a handler's one-entry cache (ZoneSlotCache), which an address reused by a
  // later snapshot's zone therefore cannot hit.
  uint64_t generation = 0;
  std::vector<std::pair<const zones::Zone*, uint16_t>> zones;  // sorted by address
  // For service i of the snapshot's ServiceSet, its slots start at steering_offset[i]: one per
  // pool (an answer from that pool's region), then no data, SERVFAIL and fallback.
  std::vector<uint32_t> steering_offset;
  std::vector<uint16_t> steering;

  [[nodiscard]] size_t zoneSlot(const zones::Zone* zone) const {
    size_t lo = 0, hi = zones.size();
    while (lo < hi) {  // a handful of pointer comparisons; no names on the query path
      const size_t mid = (lo + hi) / 2;
      if (zones[mid].first < zone) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo < zones.size() && zones[lo].first == zone ? zones[lo].second : kZoneSlots - 1;
  }
  [[nodiscard]] size_t steeringSlot(const georoute::ServiceSet& set, const georoute::Service& svc,
                                    const georoute::Decision& d) const;
};

// A handler's last zone and its slot: consecutive queries for one zone (the common case, and
// every query where one zone is served) skip the search.
struct ZoneSlotCache {
  uint64_t generation = 0;
  const zones::Zone* zone = nullptr;
  size_t slot = 0;

  [[nodiscard]] size_t get(const MetricSlots& m, const zones::Zone* z) {
    // Generation 0 (slots never assigned) has only the "(other)" slot, so a hit is right there too.
    if (z != zone || m.generation != generation) {
      generation = m.generation;
      zone = z;
      slot = m.zoneSlot(z);
    }
    return slot;
  }
};

// Control thread: names the slots, and builds the families `meridianctl metrics` and /metrics show.
class MetricRegistry {
 public:
  // Fills state.metric_slots for state.zones and state.services, giving names seen for the first
  // time new slots.
  void assign(ServingState& state);

  // The query path's families from the workers' sums: queries by transport, qtype and zone,
  // responses by rcode, drops, truncation, TCP connections, RRL, cookies, steering decisions and
  // the UDP answer latency.
  void addFamilies(const CounterTotals& t, std::vector<core::MetricFamily>& out) const;

  [[nodiscard]] const std::vector<std::string>& zoneNames() const { return zone_names_; }

 private:
  uint16_t zoneSlot(const std::string& origin);
  uint16_t steeringSlot(const std::string& service, const std::string& region,
                        const std::string& decision);

  uint64_t generation_ = 0;
  std::map<std::string, uint16_t> zone_ids_;
  std::vector<std::string> zone_names_;  // by slot
  std::map<std::string, uint16_t> steering_ids_;
  struct SteeringKey {
    std::string service, region, decision;
  };
  std::vector<SteeringKey> steering_keys_;  // by slot
};

}  // namespace meridian::server
