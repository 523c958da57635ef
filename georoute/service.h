// Steered services, compiled: regions, pools of endpoints and an ordered policy chain, with every
// name resolved to an integer id when the configuration is loaded. DNS workers read a ServiceSet
// snapshot (immutable) and run decide() (policy.h) per query on fixed-size arrays: no allocation,
// no locks, no string hashing. `explain` runs the same code with a Trace that records each step.
// What this header declares besides the types (CidrEntry::contains, mapList, buildScopeBlocks,
// ServiceSet::find) is defined in policy.cc for now.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/name.h"
#include "georoute/geoip.h"

namespace meridian::georoute {

inline constexpr uint32_t kNoId = 0xFFFFFFFFu;

struct Region {
  std::string name;
  double latitude = 0;
  double longitude = 0;
  double bias_km = 0;  // added to the great-circle distance by `nearest` (negative attracts)
  bool has_coordinates = true;  // false: no latitude/longitude given; `nearest` cannot use it
  std::string where;            // "file:line: region", for errors found when services compile
};

struct Endpoint {
  uint16_t type = 0;            // A, AAAA or CNAME
  uint8_t address[16] = {};     // A/AAAA
  std::string target;           // CNAME target, presentation form (for explain)
  std::vector<uint8_t> record;  // pre-encoded TYPE CLASS TTL RDLENGTH RDATA (owner excluded)
  uint32_t weight = 1;
  uint32_t uid = 0;            // unique within the ServiceSet; seeds the weighted hash
  uint32_t health_id = kNoId;  // index in the health Verdicts (and StateTable), kNoId = not checked
  std::string label;           // "region/address" for explain and logs
};

struct Pool {
  uint32_t region = 0;
  std::vector<Endpoint> endpoints;
};

// A region list of a geo map: an ordered preference. Lists are deduplicated when the map is
// compiled, so two entries with the same regions in the same order share one index (and the ECS
// scope blocks treat them as one answer).
struct GeoList {
  std::vector<uint32_t> regions;  // ordered preference
};

struct CidrEntry {
  bool ipv6 = false;
  uint8_t address[16] = {};
  uint8_t prefix = 0;
  uint32_t list = 0;  // index into GeoMap::lists

  // Is `addr` (4 or 16 octets, by `v6`) inside this network?
  [[nodiscard]] bool contains(const uint8_t* addr, bool v6) const;
};

// The map is a hierarchy, continent -> country -> subdivision(s): the most specific entry that
// matches the location wins, so a continent's entry is the default of its unmapped countries and
// a country's entry the default of its unlisted subdivisions; `default_list` is the top level's.
struct GeoMap {
  std::vector<GeoList> lists;
  std::vector<CidrEntry> cidrs;                             // longest prefix wins
  std::vector<std::pair<uint32_t, uint32_t>> asns;          // (asn, list), sorted
  std::vector<std::pair<uint64_t, uint32_t>> subdivisions;  // ((country<<24)|sub, list), sorted
  std::vector<std::pair<uint16_t, uint32_t>> countries;     // sorted
  std::vector<std::pair<uint16_t, uint32_t>> continents;    // sorted
  uint32_t default_list = kNoId;
  // [geoip] use_registered_country: a location without `country` is mapped by the country its
  // network is registered in. Off by default (that is often another continent).
  bool use_registered_country = false;
};

// The country a map uses for a location: `country`, else (when enabled) `registered_country`.
[[nodiscard]] inline uint16_t mapCountry(const GeoMap& m, const Location& l) {
  return l.country != 0 || !m.use_registered_country ? l.country : l.registered_country;
}

// Which level of a geo map gave a location its region list.
enum class MapLevel : uint8_t { kNone, kAsn, kSubdivision, kCountry, kContinent, kDefault };
// The map's list for a database location (null: unmapped) and AS number (0: unknown): ASN, then
// each of the location's subdivisions (most specific first), country, continent, default. kNoId
// when nothing applies. `subdivision` (optional) gets the matching subdivision code.
[[nodiscard]] uint32_t mapList(const GeoMap& m, const Location* l, uint32_t asn, MapLevel* level,
                               uint32_t* subdivision = nullptr);

// What a location decides for one service before health, compiled per class of scope blocks:
// the database's own region where the service has a pool in it, the geo map's list (ASN entries
// of the main database included), and for `nearest` the order of regions by distance (kNoId:
// the coordinates are unknown). Equal classes give equal answers under any health state.
struct LocationClass {
  uint32_t own_region = kNoId;
  uint32_t list = kNoId;
  uint32_t ranks = kNoId;  // offset into Service::scope_ranks
};
// Classes of one service's blocks: the class shares a 32-bit word with a block's prefix.
inline constexpr size_t kMaxLocationClasses = size_t{1} << 24;

// An IPv6 scope block as a query reads it: 20 octets (an IPv6 tree that aliases its IPv4 subtree
// at ::ffff:0:0/96 and 2002::/16, as MaxMind's do, has three blocks per IPv4 block).
struct ScopeBlock6 {
  uint8_t address[16] = {};
  uint32_t class_prefix = 0;  // (class << 8) | prefix
};

enum class FilterKind : uint8_t { kUp, kGeo, kNearest, kLatency, kWeighted, kFirstN };

enum class AllDown : uint8_t { kFailOpen, kNoData, kServFail, kFallback };

struct Service {
  std::string name;    // presentation form
  dns::NameBuf owner;  // lowercase wire
  std::string zone;    // origin of the zone it lives in
  uint32_t ttl = 30;
  std::vector<FilterKind> policy;
  uint32_t first_n = 1;
  AllDown when_all_down = AllDown::kFailOpen;
  GeoMap geo;
  std::vector<Pool> pools;
  // Client-subnet prefix hashed by `weighted` (so a client sticks; the ECS scope is at least this).
  uint8_t weighted_prefix_v4 = 24;
  uint8_t weighted_prefix_v6 = 56;
  // The widest networks over which the database gives this service the same preferences (see
  // buildScopeBlocks); empty: the ECS scope is the database network's own prefix.
  // IPv4 blocks as parallel arrays (start address; class << 8 | prefix) so a lookup touches few
  // cache lines; IPv6 blocks with the same word.
  std::vector<uint32_t> scope_v4_start;
  std::vector<uint32_t> scope_v4_class;
  std::vector<ScopeBlock6> scope_blocks_v6;
  // What each class of blocks decides (indexed by the blocks' class), so a query finds its
  // location with the one block search; empty: decide() walks the database (see buildScopeBlocks).
  std::vector<LocationClass> scope_classes;
  // `nearest`: per distinct order, the rank of every region (ServiceSet::regions index) by
  // distance and bias from the location, equal distances equal ranks; LocationClass::ranks is
  // the offset of a class's ranks.
  std::vector<uint16_t> scope_ranks;
  // By the address's first 16 bits: the first block that can hold it (65 537 entries, the last
  // one an end marker), so a lookup searches a handful of blocks instead of the whole list.
  std::vector<uint32_t> scope_index_v4, scope_index_v6;
};

struct ServiceSet;
// Fills the scope blocks and their classes for a service whose location-dependent filters read
// only the main database (a separate ASN database splits the space along other lines: no blocks).
// No classes (the blocks' prefixes only) when there are more than kMaxLocationClasses.
void buildScopeBlocks(const ServiceSet& set, Service& s);

struct ServiceSet {
  std::vector<Region> regions;
  std::vector<Service> services;           // sorted by owner (zones::compareNames order)
  std::shared_ptr<const GeoDatabase> geo;  // may be null: geo/nearest filters then see no location
  std::shared_ptr<const GeoDatabase> asn;  // optional ASN database (GeoLite2-ASN) for geo.asn
  std::vector<uint32_t> region_of_name;    // GeoDatabase::regionNames() index -> region id (kNoId)
  // ECS is used only from these resolver networks (empty = from anyone).
  std::vector<CidrEntry> ecs_trusted;

  // The service at a lowercase wire name, or nullptr.
  [[nodiscard]] const Service* find(const uint8_t* name, size_t len) const;
  [[nodiscard]] const Service* find(const dns::NameBuf& qname_lower) const {
    return find(qname_lower.data, qname_lower.length);
  }
};

}  // namespace meridian::georoute
