// The policy chain (NS1-style filters) run per query on a fixed array of candidates.
#include "georoute/policy.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "dns/wire.h"
#include "georoute/service.h"

namespace meridian::georoute {

using dns::readU32;

const char* filterName(FilterKind k) {
  switch (k) {
    case FilterKind::kUp:
      return "up";
    case FilterKind::kGeo:
      return "geo";
    case FilterKind::kNearest:
      return "nearest";
    case FilterKind::kLatency:
      return "latency";
    case FilterKind::kWeighted:
      return "weighted";
    case FilterKind::kFirstN:
      return "first_n";
  }
  return "?";
}

const char* decisionName(Decision::Kind k) {
  switch (k) {
    case Decision::Kind::kAnswer:
      return "answer";
    case Decision::Kind::kNoData:
      return "nodata";
    case Decision::Kind::kServFail:
      return "servfail";
    case Decision::Kind::kFallback:
      return "fallback";
  }
  return "answer";
}

double distanceKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kEarthRadiusKm = 6371.0;
  constexpr double kRad = M_PI / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double a =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusKm * std::asin(std::min(1.0, std::sqrt(a)));
}

bool CidrEntry::contains(const uint8_t* addr, bool v6) const {
  if (v6 != ipv6) return false;
  const unsigned full = prefix / 8u;
  if (std::memcmp(addr, address, full) != 0) return false;
  if (prefix % 8 == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - prefix % 8));
  return (addr[full] & mask) == (address[full] & mask);
}

const Service* ServiceSet::find(const uint8_t* name, size_t len) const {
  auto it = std::lower_bound(services.begin(), services.end(), 0, [&](const Service& s, int) {
    return dns::compareNames(s.owner.data, s.owner.length, name, len) < 0;
  });
  if (it != services.end() && dns::compareNames(it->owner.data, it->owner.length, name, len) == 0) {
    return &*it;
  }
  return nullptr;
}

namespace {

struct Candidate {
  const Endpoint* ep;
  uint32_t region;
  double score;
};

template <typename K>
uint32_t findList(const std::vector<std::pair<K, uint32_t>>& v, K key) {
  auto it =
      std::lower_bound(v.begin(), v.end(), key, [](const auto& e, K k) { return e.first < k; });
  return (it != v.end() && it->first == key) ? it->second : kNoId;
}

// Number of leading bits two addresses share (up to `max`).
unsigned commonPrefix(const uint8_t* a, const uint8_t* b, unsigned max) {
  unsigned bits = 0;
  for (unsigned i = 0; i < 16 && bits < max; ++i) {
    const uint8_t x = a[i] ^ b[i];
    if (x == 0) {
      bits += 8;
      continue;
    }
    bits += static_cast<unsigned>(__builtin_clz(static_cast<unsigned>(x)) - 24);
    break;
  }
  return std::min(bits, max);
}

// The shortest scope of at least `scope` bits whose block around the client holds no CIDR entry
// that does not hold the client. A block of length L leaves an entry out exactly when the client
// and the entry's address differ within the first L bits, so one pass over the entries is enough:
// each entry that shares `shared` >= `scope` bits with the client (and does not contain it) needs
// L = shared + 1.
uint8_t excludeOtherCidrs(const std::vector<CidrEntry>& cidrs, const Client& client,
                          uint8_t scope) {
  const unsigned full_len = client.ipv6 ? 128 : 32;
  unsigned out = scope;
  for (const CidrEntry& c : cidrs) {
    if (c.ipv6 != client.ipv6 || c.prefix <= scope) continue;  // other family, or left out
    const unsigned shared = commonPrefix(client.address, c.address, full_len);
    if (shared >= c.prefix || shared < scope) continue;  // client inside c, or c outside the block
    out = std::max(out, shared + 1);
  }
  return static_cast<uint8_t>(out);
}

// splitmix64: a fast, well-mixed integer hash for the weighted filter.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The scope block of `s` that holds the client: its prefix (at least 1: RFC 7871 §7.2.1 wants a
// scope above 0 for an answer that depends on the client) and its class; prefix 0 when the
// service has no blocks for the client's family.
struct ScopeHit {
  uint8_t prefix = 0;
  uint32_t cls = kNoId;
};
ScopeHit findScopeBlock(const Service& s, const Client& client) {
  ScopeHit hit;
  const uint32_t h = (static_cast<uint32_t>(client.address[0]) << 8) | client.address[1];
  if (!client.ipv6 && !s.scope_v4_start.empty()) {
    const uint32_t a = readU32(client.address);
    const auto begin = s.scope_v4_start.begin();
    const auto first = begin + s.scope_index_v4[h];
    const auto last =
        begin + std::min<size_t>(s.scope_index_v4[h + 1] + 1, s.scope_v4_start.size());
    auto it = std::upper_bound(first, last, a);
    if (it != begin) {
      --it;
      const uint32_t word = s.scope_v4_class[static_cast<size_t>(it - begin)];
      const auto bp = static_cast<uint8_t>(word & 0xFF);
      const uint32_t mask = bp == 0 ? 0u : ~0u << (32 - bp);
      if ((a & mask) == (*it & mask)) {
        hit.prefix = std::max<uint8_t>(bp, 1);
        hit.cls = word >> 8;
      }
    }
  } else if (client.ipv6 && !s.scope_blocks_v6.empty()) {
    const auto& blocks = s.scope_blocks_v6;
    const auto first = blocks.begin() + s.scope_index_v6[h];
    const auto last = blocks.begin() + std::min<size_t>(s.scope_index_v6[h + 1] + 1, blocks.size());
    auto it = std::upper_bound(
        first, last, client.address,
        [](const uint8_t* x, const ScopeBlock6& b) { return std::memcmp(x, b.address, 16) < 0; });
    if (it != blocks.begin()) {
      --it;
      const auto bp = static_cast<uint8_t>(it->class_prefix & 0xFF);
      if (commonPrefix(client.address, it->address, 128) >= bp) {
        hit.prefix = std::max<uint8_t>(bp, 1);
        hit.cls = it->class_prefix >> 8;
      }
    }
  }
  return hit;
}

std::string names(const Candidate* c, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (!out.empty()) out += ", ";
    out += c[i].ep->label;
  }
  return out.empty() ? "(none)" : out;
}

}  // namespace

uint32_t mapList(const GeoMap& m, const Location* l, uint32_t asn, MapLevel* level,
                 uint32_t* subdivision) {
  *level = MapLevel::kNone;
  uint32_t list = kNoId;
  if (asn != 0 && (list = findList(m.asns, asn)) != kNoId) {
    *level = MapLevel::kAsn;
    return list;
  }
  if (l != nullptr) {
    const uint16_t country = mapCountry(m, *l);
    if (country != 0 && !m.subdivisions.empty()) {
      // The deepest level first: GB-WBK before GB-ENG, falling back level by level.
      for (uint8_t i = l->subdivision_count; i-- > 0;) {
        const uint64_t key = (static_cast<uint64_t>(country) << 24) | l->subdivisions[i];
        if ((list = findList(m.subdivisions, key)) != kNoId) {
          *level = MapLevel::kSubdivision;
          if (subdivision != nullptr) *subdivision = l->subdivisions[i];
          return list;
        }
      }
    }
    if (country != 0 && (list = findList(m.countries, country)) != kNoId) {
      *level = MapLevel::kCountry;
      return list;
    }
    if (l->continent != 0 && (list = findList(m.continents, l->continent)) != kNoId) {
      *level = MapLevel::kContinent;
      return list;
    }
  }
  if (m.default_list != kNoId) *level = MapLevel::kDefault;
  return m.default_list;
}

void buildScopeBlocks(const ServiceSet& set, Service& s) {
  s.scope_v4_start.clear();
  s.scope_v4_class.clear();
  s.scope_blocks_v6.clear();
  s.scope_classes.clear();
  s.scope_ranks.clear();
  if (!set.geo) return;
  const bool geo = std::find(s.policy.begin(), s.policy.end(), FilterKind::kGeo) != s.policy.end();
  const bool nearest =
      std::find(s.policy.begin(), s.policy.end(), FilterKind::kNearest) != s.policy.end();
  // A separate ASN database splits the space along other lines: keep the lookup's own prefix.
  if ((!geo && !nearest) || (geo && set.asn && !s.geo.asns.empty())) return;
  // Everything the location decides, before health: the database's own region, the map's list
  // (lists are deduplicated by content, so equal ids mean equal lists), and the rank of each
  // region by distance (equal distances share a rank, so that `nearest` keeps the first of the
  // closest candidates, as it does from coordinates). Equal classes give equal answers under any
  // health state; each distinct one is a LocationClass, which the blocks it aggregated carry.
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, uint32_t> classes;
  std::map<std::vector<uint16_t>, uint32_t> orders;  // ranks -> their offset in scope_ranks
  std::vector<uint32_t> by_location(set.geo->locations().size() + 1);
  std::vector<std::pair<double, uint32_t>> d;
  std::vector<uint16_t> rank(set.regions.size());
  for (size_t i = 0; i <= set.geo->locations().size(); ++i) {
    const Location* l = i == 0 ? nullptr : &set.geo->locations()[i - 1];
    LocationClass c;
    if (geo) {
      // The database's own region decides only where the service has a pool in it.
      if (l != nullptr && l->region_name != kNoName && l->region_name < set.region_of_name.size()) {
        const uint32_t own = set.region_of_name[l->region_name];
        if (std::any_of(s.pools.begin(), s.pools.end(),
                        [&](const Pool& p) { return p.region == own; })) {
          c.own_region = own;
        }
      }
      MapLevel level;
      c.list = mapList(s.geo, l, l != nullptr ? l->asn : 0, &level);
    }
    if (nearest && l != nullptr && l->has_coords) {
      d.clear();
      for (uint32_t r = 0; r < set.regions.size(); ++r) {
        const Region& region = set.regions[r];
        d.emplace_back(distanceKm(l->latitude, l->longitude, region.latitude, region.longitude) +
                           region.bias_km,
                       r);
      }
      std::sort(d.begin(), d.end());
      uint16_t next = 0;  // more than 65 535 regions: no classes (see `keep` below)
      for (size_t k = 0; k < d.size(); ++k) {
        if (k > 0 && d[k].first != d[k - 1].first) ++next;
        rank[d[k].second] = next;
      }
      const auto [it, inserted] =
          orders.try_emplace(rank, static_cast<uint32_t>(s.scope_ranks.size()));
      if (inserted) s.scope_ranks.insert(s.scope_ranks.end(), rank.begin(), rank.end());
      c.ranks = it->second;
    }
    const auto [it, inserted] = classes.try_emplace({c.own_region, c.list, c.ranks},
                                                    static_cast<uint32_t>(s.scope_classes.size()));
    if (inserted) s.scope_classes.push_back(c);
    by_location[i] = it->second;
  }
  auto leaf = [&](int32_t i) { return by_location[static_cast<size_t>(i + 1)]; };
  const std::vector<Block> v4 = set.geo->aggregate(false, leaf);
  const std::vector<Block> v6 = set.geo->aggregate(true, leaf);
  // A class shares its word with a prefix; past kMaxLocationClasses (one class per database
  // record at most: never seen) the blocks keep their prefixes and queries walk the database.
  const bool keep = s.scope_classes.size() <= kMaxLocationClasses && set.regions.size() <= 0xFFFF;
  auto word = [&](const Block& b) { return (keep ? b.leaf_class << 8 : 0u) | b.prefix; };
  s.scope_v4_start.reserve(v4.size());
  s.scope_v4_class.reserve(v4.size());
  for (const Block& b : v4) {
    s.scope_v4_start.push_back(readU32(b.address));
    s.scope_v4_class.push_back(word(b));
  }
  s.scope_blocks_v6.resize(v6.size());
  for (size_t i = 0; i < v6.size(); ++i) {
    std::memcpy(s.scope_blocks_v6[i].address, v6[i].address, 16);
    s.scope_blocks_v6[i].class_prefix = word(v6[i]);
  }
  if (!keep) s.scope_classes.clear();
  auto index = [](const std::vector<Block>& blocks, std::vector<uint32_t>& idx) {
    idx.clear();
    if (blocks.empty()) return;
    idx.resize(65537);
    for (uint32_t h = 0; h < 65536; ++h) {
      uint8_t start[16] = {static_cast<uint8_t>(h >> 8), static_cast<uint8_t>(h & 0xFF)};
      auto it = std::upper_bound(
          blocks.begin(), blocks.end(), start,
          [](const uint8_t* a, const Block& b) { return std::memcmp(a, b.address, 16) < 0; });
      idx[h] = it == blocks.begin() ? 0u : static_cast<uint32_t>(it - blocks.begin() - 1);
    }
    idx[65536] = static_cast<uint32_t>(blocks.size());
  };
  index(v4, s.scope_index_v4);
  index(v6, s.scope_index_v6);
}

Decision decide(const ServiceSet& set, const Service& s, uint16_t qtype, const Client& client,
                const healthcheck::Verdicts& health, Trace* trace) {
  Decision d;
  Candidate cand[kMaxCandidates];
  size_t n = 0;
  for (const Pool& pool : s.pools) {
    for (const Endpoint& ep : pool.endpoints) {
      if ((ep.type == qtype || ep.type == dns::rrtype::kCNAME) && n < kMaxCandidates) {
        cand[n++] = Candidate{&ep, pool.region, 0};
      }
    }
  }
  if (trace)
    trace->lines.push_back("candidates for type " + std::to_string(qtype) + ": " + names(cand, n));
  if (n == 0) {
    // The service does not steer this type: the zone file's RRsets at the name answer it.
    d.kind = Decision::Kind::kFallback;
    if (trace) trace->lines.push_back("no endpoint of this type: the zone data answers");
    return d;
  }

  const unsigned full_len = client.ipv6 ? 128 : 32;
  uint8_t scope = 0;
  bool geo_ran = false;
  bool located = false;
  // The location, found once: the class of the client's compiled scope block (one search gives
  // it and the scope), or the database's answer (the tree walk) when the service has no classes,
  // and always for a trace, which names the location.
  const LocationClass* where = nullptr;
  uint8_t block_prefix = 0;  // the client's scope block's; 0: no block holds the client
  GeoResult geo;
  auto locate = [&]() {
    if (located) return;
    located = true;
    if (set.geo) {
      const ScopeHit hit = findScopeBlock(s, client);
      block_prefix = hit.prefix;
      if (trace == nullptr && hit.prefix > 0 && hit.cls < s.scope_classes.size()) {
        where = &s.scope_classes[hit.cls];
        return;
      }
      geo = set.geo->lookup(client.address, client.ipv6);
    }
    if (trace) {
      if (!set.geo) {
        trace->lines.push_back("location: no GeoIP database configured");
      } else if (geo.found) {
        trace->lines.push_back("location: " + set.geo->describe(*geo.location) + " (network /" +
                               std::to_string(geo.prefix) + ")");
      } else {
        trace->lines.push_back("location: not in the database (empty network /" +
                               std::to_string(geo.prefix) + ")");
      }
    }
  };
  // The answer depends on the wider block of networks that all get the same preferences, or on
  // the network the lookup landed in; with no usable prefix, be conservative.
  auto dependOnLocation = [&]() {
    const uint8_t p = block_prefix > 0              ? block_prefix
                      : (set.geo && geo.prefix > 0) ? geo.prefix
                                                    : client.source_prefix;
    scope = std::max(scope, p);
  };
  auto keepRegion = [&](uint32_t region) {
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      if (cand[i].region == region) cand[k++] = cand[i];
    }
    n = k;
  };
  auto regionHas = [&](uint32_t region) {
    for (size_t i = 0; i < n; ++i) {
      if (cand[i].region == region) return true;
    }
    return false;
  };

  for (FilterKind f : s.policy) {
    switch (f) {
      case FilterKind::kUp: {
        size_t k = 0;
        for (size_t i = 0; i < n; ++i) {
          if (cand[i].ep->health_id == kNoId || health.usable(cand[i].ep->health_id))
            cand[k++] = cand[i];
        }
        if (k == 0) {
          switch (s.when_all_down) {
            case AllDown::kFailOpen:
              if (trace) trace->lines.push_back("up: every endpoint is down; fail-open keeps all");
              continue;
            case AllDown::kNoData:
              if (trace) trace->lines.push_back("up: every endpoint is down; answering NODATA");
              d.kind = Decision::Kind::kNoData;
              return d;
            case AllDown::kServFail:
              if (trace) trace->lines.push_back("up: every endpoint is down; answering SERVFAIL");
              d.kind = Decision::Kind::kServFail;
              return d;
            case AllDown::kFallback:
              if (trace)
                trace->lines.push_back("up: every endpoint is down; serving the zone file's RRset");
              d.kind = Decision::Kind::kFallback;
              return d;
          }
        }
        if (trace)
          trace->lines.push_back("up: " + std::to_string(n - k) + " down, kept " + names(cand, k));
        n = k;
        break;
      }
      case FilterKind::kGeo: {
        geo_ran = true;
        const GeoMap& m = s.geo;
        uint32_t list = kNoId;
        std::string why;
        // Custom CIDR map first (longest prefix), then the database's own answers.
        const CidrEntry* best = nullptr;
        for (const CidrEntry& c : m.cidrs) {
          if (c.contains(client.address, client.ipv6) &&
              (best == nullptr || c.prefix > best->prefix)) {
            best = &c;
          }
        }
        if (best != nullptr) {
          list = best->list;
          scope = std::max(scope, best->prefix);
          if (trace) why = "CIDR /" + std::to_string(best->prefix);
        } else {
          locate();
          dependOnLocation();
          uint32_t own = kNoId;  // the database's own region
          if (where != nullptr) {
            own = where->own_region;
          } else if (geo.found) {
            const Location& l = *geo.location;
            if (l.region_name != kNoName && l.region_name < set.region_of_name.size())
              own = set.region_of_name[l.region_name];
          }
          if (own != kNoId && regionHas(own)) {
            keepRegion(own);
            if (trace) {
              trace->lines.push_back("geo: database region " + set.regions[cand[0].region].name +
                                     " kept: " + names(cand, n));
            }
            break;  // the scope still leaves out other CIDR entries: see the end of decide()
          }
          if (where != nullptr) {
            list = where->list;
          } else {
            uint32_t asn = geo.found ? geo.location->asn : 0;
            if (asn == 0 && set.asn && !m.asns.empty()) {
              const GeoResult a = set.asn->lookup(client.address, client.ipv6);
              if (a.prefix > 0) scope = std::max(scope, a.prefix);
              if (a.found) asn = a.location->asn;
            }
            MapLevel level = MapLevel::kNone;
            uint32_t subdivision = 0;
            list = mapList(m, geo.found ? geo.location : nullptr, asn, &level, &subdivision);
            if (trace) {
              const Location* l = geo.found ? geo.location : nullptr;
              switch (level) {
                case MapLevel::kAsn:
                  why = "AS" + std::to_string(asn);
                  break;
                case MapLevel::kSubdivision:
                  why = "subdivision " + unpackCode(mapCountry(m, *l)) + "-" +
                        unpackSubdivision(subdivision);
                  break;
                case MapLevel::kCountry:
                  why = (l->country == 0 ? "registered country " : "country ") +
                        unpackCode(mapCountry(m, *l));
                  break;
                case MapLevel::kContinent:
                  why = "continent " + unpackCode(l->continent);
                  break;
                case MapLevel::kDefault:
                  why = "default";
                  break;
                case MapLevel::kNone:
                  break;
              }
            }
          }
        }
        if (list == kNoId) {
          if (trace) trace->lines.push_back("geo: no map entry and no default; keeping all");
          break;
        }
        bool kept = false;
        for (uint32_t region : m.lists[list].regions) {
          if (regionHas(region)) {
            keepRegion(region);
            kept = true;
            if (trace) {
              trace->lines.push_back("geo: " + why + " -> region " + set.regions[region].name +
                                     ": " + names(cand, n));
            }
            break;
          }
        }
        if (!kept && trace)
          trace->lines.push_back("geo: " + why + " lists no region with candidates; keeping all");
        break;
      }
      case FilterKind::kNearest: {
        locate();
        dependOnLocation();
        if (where != nullptr) {
          if (where->ranks == kNoId) break;  // coordinates unknown: keep all
          // The first candidate of the closest region (equal distances share a rank).
          const uint16_t* rank = s.scope_ranks.data() + where->ranks;
          uint32_t best_rank = 0x10000;
          uint32_t best_region = kNoId;
          for (size_t i = 0; i < n; ++i) {
            if (rank[cand[i].region] < best_rank) {
              best_rank = rank[cand[i].region];
              best_region = cand[i].region;
            }
          }
          keepRegion(best_region);
          break;
        }
        if (!geo.found || !geo.location->has_coords) {
          if (trace) trace->lines.push_back("nearest: client coordinates unknown; keeping all");
          break;
        }
        double best = 1e18;
        uint32_t best_region = kNoId;
        for (size_t i = 0; i < n; ++i) {
          const Region& r = set.regions[cand[i].region];
          const double dkm =
              distanceKm(geo.location->latitude, geo.location->longitude, r.latitude, r.longitude) +
              r.bias_km;
          if (dkm < best) {
            best = dkm;
            best_region = cand[i].region;
          }
        }
        keepRegion(best_region);
        if (trace) {
          trace->lines.push_back("nearest: region " + set.regions[best_region].name + " at " +
                                 std::to_string(static_cast<long>(best)) +
                                 " km (bias included): " + names(cand, n));
        }
        break;
      }
      case FilterKind::kLatency: {
        uint32_t best_rtt = 0;
        uint32_t best_region = kNoId;
        for (size_t i = 0; i < n; ++i) {
          const uint32_t rtt =
              cand[i].ep->health_id == kNoId ? 0 : health.rttUs(cand[i].ep->health_id);
          if (rtt > 0 && (best_region == kNoId || rtt < best_rtt)) {
            best_rtt = rtt;
            best_region = cand[i].region;
          }
        }
        if (best_region == kNoId) {
          if (trace) trace->lines.push_back("latency: no RTT measured yet; keeping all");
          break;
        }
        keepRegion(best_region);
        if (trace) {
          trace->lines.push_back("latency: region " + set.regions[best_region].name + " (" +
                                 std::to_string(best_rtt) + " us): " + names(cand, n));
        }
        break;
      }
      case FilterKind::kWeighted: {
        // Weighted rendezvous hashing over the client's subnet: the same subnet gets the same
        // order, and each endpoint comes first for a share of subnets proportional to its weight.
        const uint8_t want = client.ipv6 ? s.weighted_prefix_v6 : s.weighted_prefix_v4;
        const uint8_t hp = std::min<uint8_t>(want, client.source_prefix);
        uint8_t masked[16] = {};
        std::memcpy(masked, client.address, hp / 8);
        if (hp % 8)
          masked[hp / 8] = static_cast<uint8_t>(client.address[hp / 8] & (0xFF << (8 - hp % 8)));
        uint64_t base = 0xCBF29CE484222325ull ^ hp;
        for (size_t i = 0; i < 16; ++i) base = mix(base ^ masked[i]);
        for (size_t i = 0; i < n; ++i) {
          const uint64_t seed = mix(base ^ (static_cast<uint64_t>(cand[i].ep->uid) << 1));
          const double u =
              (static_cast<double>(mix(seed) >> 11) + 0.5) / 9007199254740992.0;  // (0,1)
          cand[i].score = static_cast<double>(cand[i].ep->weight) / -std::log(u);
        }
        // Insertion sort: stable, in place (std::stable_sort would allocate), and n <= 64.
        for (size_t i = 1; i < n; ++i) {
          const Candidate c = cand[i];
          size_t j = i;
          for (; j > 0 && cand[j - 1].score < c.score; --j) cand[j] = cand[j - 1];
          cand[j] = c;
        }
        scope = std::max(scope, hp);
        if (trace) {
          trace->lines.push_back("weighted: client /" + std::to_string(hp) + " orders " +
                                 names(cand, n));
        }
        break;
      }
      case FilterKind::kFirstN: {
        n = std::min<size_t>(n, s.first_n);
        if (trace)
          trace->lines.push_back("first_n " + std::to_string(s.first_n) + ": " + names(cand, n));
        break;
      }
    }
  }
  // One CNAME at most, and never beside addresses (RFC 2181 §10.1).
  if (n > 0 && cand[0].ep->type == dns::rrtype::kCNAME) {
    n = 1;
  } else {
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      if (cand[i].ep->type != dns::rrtype::kCNAME) cand[k++] = cand[i];
    }
    n = k;
  }
  // RFC 7871 §7.2.1: once the geo map took part, the scope must not cover a geo.cidr entry the
  // client is not in, or a resolver would hand this answer to that entry's clients. One rule
  // for every path (CIDR, database region, ASN, subdivision, country, continent, default, and
  // the scopes `nearest` or `weighted` added), applied to the final scope.
  if (geo_ran) scope = excludeOtherCidrs(s.geo.cidrs, client, scope);
  for (size_t i = 0; i < n; ++i) d.chosen[i] = cand[i].ep;
  d.count = static_cast<uint16_t>(n);
  d.scope = std::min<uint8_t>(scope, static_cast<uint8_t>(full_len));
  if (trace) {
    trace->lines.push_back("answer: " + names(cand, n) + ", TTL " + std::to_string(s.ttl) +
                           ", ECS scope /" + std::to_string(d.scope));
  }
  return d;
}

}  // namespace meridian::georoute
