#include "georoute/compile.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string_view>

#include "georoute/policy.h"
#include "healthcheck/prober.h"

namespace meridian::georoute {

Result<CidrEntry> parseCidr(const std::string& text) {
  CidrEntry e;
  const size_t slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  e.ipv6 = addr.find(':') != std::string::npos;
  if (inet_pton(e.ipv6 ? AF_INET6 : AF_INET, addr.c_str(), e.address) != 1) {
    return Error{"'" + text + "' is not an IP network"};
  }
  const unsigned max = e.ipv6 ? 128 : 32;
  unsigned prefix = max;
  if (slash != std::string::npos) {
    char* end = nullptr;
    prefix = static_cast<unsigned>(std::strtoul(text.c_str() + slash + 1, &end, 10));
    if (*end != '\0' || slash + 1 == text.size() || prefix > max)
      return Error{"'" + text + "': bad prefix length"};
  }
  e.prefix = static_cast<uint8_t>(prefix);
  // Clear host bits so comparisons are exact.
  for (unsigned bit = prefix; bit < max; ++bit)
    e.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return e;
}

std::string canonicalAddress(const std::string& text) {
  uint8_t bytes[16];
  char out[INET6_ADDRSTRLEN];
  const int family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, text.c_str(), bytes) != 1) return text;
  if (inet_ntop(family, bytes, out, sizeof out) == nullptr) return text;
  return out;
}

namespace {

Result<uint32_t> regionId(const SteeringConfig& cfg, const std::string& name,
                          const std::string& where) {
  for (size_t i = 0; i < cfg.regions.size(); ++i) {
    if (cfg.regions[i].name == name) return static_cast<uint32_t>(i);
  }
  return Error{where + ": unknown region '" + name + "'"};
}

// A region list by content: an equal list already in the map is reused, so equal lists have
// equal ids (buildScopeBlocks relies on that to merge neighbours that get the same answer).
Result<uint32_t> addList(const SteeringConfig& cfg, georoute::GeoMap& m,
                         const std::vector<std::string>& names, const std::string& where) {
  georoute::GeoList list;
  for (const auto& n : names) {
    auto id = regionId(cfg, n, where);
    if (!id) return id.error();
    list.regions.push_back(*id);
  }
  for (size_t i = 0; i < m.lists.size(); ++i) {
    if (m.lists[i].regions == list.regions) return static_cast<uint32_t>(i);
  }
  m.lists.push_back(std::move(list));
  return static_cast<uint32_t>(m.lists.size() - 1);
}

// ISO 3166-1 alpha-2, plus XK (Kosovo, user-assigned, used by GeoIP2 data).
constexpr std::string_view kCountryCodes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR "
    "BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ "
    "EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW "
    "GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY "
    "KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV "
    "MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG "
    "TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM "
    "ZW XK";
// MaxMind's continent codes.
constexpr std::string_view kContinentCodes = "AF AN AS EU NA OC SA";

std::string upper(std::string s) {
  for (char& c : s) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  return s;
}

bool listed(std::string_view codes, const std::string& code) {
  if (code.size() != 2) return false;
  for (size_t i = 0; i + 2 <= codes.size(); i += 3) {
    if (codes.substr(i, 2) == code) return true;
  }
  return false;
}

// The service's geo map: region lists by content, codes upper-cased, named lists resolved.
Result<void> compileGeoMap(const SteeringConfig& cfg, const ServiceConfig& sc, georoute::GeoMap& m,
                           std::vector<std::string>& warnings) {
  const GeoMapConfig& g = sc.geo;
  m.use_registered_country = cfg.use_registered_country;
  auto at = [&](const std::string& key) {
    auto it = g.where.find(key);
    return it != g.where.end() ? it->second : sc.where + ": service.geo." + key;
  };
  // The list of one entry: its own regions, or those of the [lists] entry it names.
  auto list = [&](const std::string& key,
                  const std::vector<std::string>& names) -> Result<uint32_t> {
    auto named = g.named.find(key);
    if (named == g.named.end()) return addList(cfg, m, names, at(key));
    auto it = cfg.lists.find(named->second);
    if (it == cfg.lists.end()) {
      std::string hint;
      if (regionId(cfg, named->second, ""))
        hint = " (a list of regions is an array: [\"" + named->second + "\"])";
      return Error{at(key) + ": unknown list '" + named->second + "'" + hint};
    }
    return addList(cfg, m, it->second.regions, it->second.where);
  };
  // Two keys that differ only in case name the same place.
  std::map<uint64_t, std::string> seen;
  auto once = [&](uint64_t packed, const std::string& key) -> Result<void> {
    auto [it, fresh] = seen.try_emplace(packed, key);
    if (!fresh) {
      return Error{at(key) + ": the same place as service.geo." + it->second +
                   " (codes are case-insensitive)"};
    }
    return {};
  };

  if (!g.default_list.empty() || g.named.count("default")) {
    auto l = list("default", g.default_list);
    if (!l) return l.error();
    m.default_list = *l;
  }
  for (const auto& [code, names] : g.continent) {
    const std::string key = "continent." + code;
    auto l = list(key, names);
    if (!l) return l.error();
    const std::string c = upper(code);
    if (!listed(kContinentCodes, c)) {
      warnings.push_back(at(key) + ": '" + code +
                         "' is not a continent code (AF AN AS EU NA OC SA); the entry never "
                         "matches");
      continue;
    }
    const uint16_t packed = georoute::packCode(c.data(), 2);
    if (auto r = once(packed, key); !r) return r.error();
    m.continents.emplace_back(packed, *l);
  }
  for (const auto& [code, names] : g.country) {
    const std::string key = "country." + code;
    auto l = list(key, names);
    if (!l) return l.error();
    const std::string c = upper(code);
    if (!listed(kCountryCodes, c)) {
      // Kept when it has two letters: a database built with `meridian mmdb build` may use it.
      warnings.push_back(at(key) + ": '" + code +
                         "' is not an ISO 3166-1 alpha-2 country code, so GeoIP2 data never "
                         "matches it" +
                         (c == "UK" ? " (the United Kingdom is GB)" : ""));
      if (c.size() != 2) continue;
    }
    const uint16_t packed = georoute::packCode(c.data(), 2);
    if (auto r = once(uint64_t{1} << 40 | packed, key); !r) return r.error();
    m.countries.emplace_back(packed, *l);
  }
  for (const auto& [code, names] : g.subdivision) {
    const std::string key = "subdivision." + code;
    auto l = list(key, names);
    if (!l) return l.error();
    const std::string c = upper(code);
    const size_t dash = c.find('-');
    bool ok = dash == 2 && c.size() >= 4 && c.size() <= 6;
    for (size_t i = 3; ok && i < c.size(); ++i) ok = std::isalnum(static_cast<unsigned char>(c[i]));
    if (!ok) {
      warnings.push_back(at(key) + ": '" + code +
                         "' is not a subdivision key (country-subdivision as in ISO 3166-2: "
                         "US-CA, GB-ENG); the entry never matches");
      continue;
    }
    if (!listed(kCountryCodes, c.substr(0, 2))) {
      warnings.push_back(at(key) + ": '" + code.substr(0, 2) +
                         "' is not an ISO 3166-1 alpha-2 country code; the entry never matches");
    }
    const uint64_t packed = (static_cast<uint64_t>(georoute::packCode(c.data(), 2)) << 24) |
                            georoute::packSubdivision(c.data() + 3, c.size() - 3);
    if (auto r = once(uint64_t{2} << 40 | packed, key); !r) return r.error();
    m.subdivisions.emplace_back(packed, *l);
  }
  for (const auto& [net, names] : g.cidr) {
    const std::string key = "cidr." + net;
    auto c = parseCidr(net);
    if (!c) return Error{at(key) + ": " + c.error().message};
    auto l = list(key, names);
    if (!l) return l.error();
    c->list = *l;
    m.cidrs.push_back(*c);
  }
  for (const auto& [asn, names] : g.asn) {
    const std::string key = "asn." + asn;
    const std::string digits = upper(asn).rfind("AS", 0) == 0 ? asn.substr(2) : asn;
    char* end = nullptr;
    const unsigned long v = std::strtoul(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0' || v > 0xFFFFFFFFul)
      return Error{at(key) + ": '" + asn + "' is not an AS number"};
    auto l = list(key, names);
    if (!l) return l.error();
    m.asns.emplace_back(static_cast<uint32_t>(v), *l);
  }
  std::sort(m.continents.begin(), m.continents.end());
  std::sort(m.countries.begin(), m.countries.end());
  std::sort(m.subdivisions.begin(), m.subdivisions.end());
  std::sort(m.asns.begin(), m.asns.end());
  return {};
}

std::vector<uint8_t> encodeRecord(uint16_t type, uint32_t ttl, const uint8_t* rdata, size_t rdlen) {
  std::vector<uint8_t> r(10 + rdlen);
  dns::writeU16(r.data(), type);
  dns::writeU16(r.data() + 2, dns::rrclass::kIN);
  dns::writeU32(r.data() + 4, ttl);
  dns::writeU16(r.data() + 8, static_cast<uint16_t>(rdlen));
  std::copy(rdata, rdata + rdlen, r.begin() + 10);
  return r;
}

// Renumbers `targets` (and the endpoints' health ids) so that a slot also in `previous` keeps its
// id when that id is below targets.size(); the other slots fill the remaining ids in order.
void keepHealthIds(const std::vector<HealthTarget>& previous, std::vector<HealthTarget>& targets,
                   georoute::ServiceSet& set) {
  const size_t n = targets.size();
  std::map<std::pair<std::string, bool>, uint32_t> old_id;
  for (size_t i = 0; i < previous.size(); ++i)
    old_id.emplace(std::make_pair(previous[i].label, previous[i].checked), i);
  std::vector<uint32_t> id_of(n, georoute::kNoId);  // compiled order -> final id
  std::vector<bool> taken(n, false);
  for (size_t i = 0; i < n; ++i) {
    auto it = old_id.find(std::make_pair(targets[i].label, targets[i].checked));
    if (it != old_id.end() && it->second < n && !taken[it->second]) {
      id_of[i] = it->second;
      taken[it->second] = true;
    }
  }
  uint32_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    if (id_of[i] != georoute::kNoId) continue;
    while (taken[next]) ++next;
    id_of[i] = next;
    taken[next] = true;
  }
  std::vector<HealthTarget> renumbered(n);
  for (size_t i = 0; i < n; ++i) renumbered[id_of[i]] = std::move(targets[i]);
  targets = std::move(renumbered);
  for (auto& s : set.services) {
    for (auto& pool : s.pools) {
      for (auto& ep : pool.endpoints) {
        if (ep.health_id != georoute::kNoId) ep.health_id = id_of[ep.health_id];
      }
    }
  }
}

}  // namespace

Result<CompiledSteering> compileSteering(const SteeringConfig& cfg, const ZoneLocator& zones,
                                         std::shared_ptr<const georoute::GeoDatabase> geo,
                                         std::shared_ptr<const georoute::GeoDatabase> asn,
                                         const std::vector<HealthTarget>* previous) {
  CompiledSteering out;
  auto set = std::make_shared<georoute::ServiceSet>();
  set->regions = cfg.regions;
  set->geo = geo;
  set->asn = asn;
  if (geo) {
    // A database may name regions this configuration does not have: those map to kNoId.
    for (const auto& name : geo->regionNames()) {
      const auto id = regionId(cfg, name, "");
      set->region_of_name.push_back(id ? *id : georoute::kNoId);
    }
  }
  for (const auto& t : cfg.ecs_trusted) {
    auto c = parseCidr(t);
    if (!c) return Error{"geoip.ecs_trusted: " + c.error().message};
    set->ecs_trusted.push_back(*c);
  }
  // Named lists name known regions, used or not.
  for (const auto& [name, list] : cfg.lists) {
    for (const auto& r : list.regions) {
      if (auto id = regionId(cfg, r, list.where); !id) return id.error();
    }
  }
  std::map<std::string, const CheckConfig*> checks;
  for (const auto& c : cfg.checks) checks[c.name] = &c;
  // (address, check) -> id for checked slots, (endpoint label, "") for unchecked ones.
  std::map<std::pair<std::string, std::string>, uint32_t> target_ids;
  uint32_t uid = 0;
  std::set<std::string> seen;

  for (const auto& sc : cfg.services) {
    georoute::Service s;
    s.name = sc.name;
    if (!dns::fromText(sc.name.back() == '.' ? sc.name : sc.name + ".", s.owner)) {
      return Error{sc.where + ": service name '" + sc.name + "' is not a domain name"};
    }
    dns::lowercase(s.owner);
    s.name = dns::toText(s.owner.data);
    if (!seen.insert(s.name).second)
      return Error{sc.where + ": service " + s.name + " is declared twice"};
    const ZonePlacement place = zones(s.owner);
    switch (place.kind) {
      case ZonePlacement::Kind::kOutside:
        return Error{sc.where + ": service " + s.name + " is not inside any served zone"};
      case ZonePlacement::Kind::kDelegated:
        return Error{sc.where + ": service " + s.name + " is at or below a delegation in " +
                     place.origin};
      case ZonePlacement::Kind::kNoRecords:
        // The zone file's RRset at the name is the fallback and what secondaries serve; the name
        // must exist there so other types get NODATA rather than NXDOMAIN.
        return Error{sc.where + ": service " + s.name + " has no records in zone " + place.origin +
                     "; add its fallback RRset (e.g. an A record) to the zone file"};
      case ZonePlacement::Kind::kInZone:
        break;
    }
    s.zone = place.origin;
    s.ttl = sc.ttl;
    s.first_n = sc.first_n;
    if (sc.first_n == 0 || sc.first_n > georoute::kMaxCandidates) {
      return Error{sc.where + ": first_n must be 1.." + std::to_string(georoute::kMaxCandidates)};
    }
    for (const auto& p : sc.policy) {
      static const std::pair<const char*, georoute::FilterKind> kFilters[] = {
          {"up", georoute::FilterKind::kUp},
          {"geo", georoute::FilterKind::kGeo},
          {"nearest", georoute::FilterKind::kNearest},
          {"latency", georoute::FilterKind::kLatency},
          {"weighted", georoute::FilterKind::kWeighted},
          {"first_n", georoute::FilterKind::kFirstN}};
      bool ok = false;
      for (const auto& [name, kind] : kFilters) {
        if (p == name) {
          s.policy.push_back(kind);
          ok = true;
        }
      }
      if (!ok)
        return Error{sc.where + ": unknown policy filter '" + p +
                     "' (up, geo, nearest, latency, weighted, first_n)"};
    }
    // `nearest` measures from each region's coordinates, which [[region]] may leave out.
    if (std::find(s.policy.begin(), s.policy.end(), georoute::FilterKind::kNearest) !=
        s.policy.end()) {
      const bool default_policy = sc.policy == ServiceConfig{}.policy;
      for (const auto& pc : sc.pools) {
        auto rid = regionId(cfg, pc.region, pc.where);
        if (!rid) return rid.error();
        const georoute::Region& r = cfg.regions[*rid];
        if (r.has_coordinates) continue;
        return Error{(r.where.empty() ? "region" : r.where) + " '" + r.name +
                     "' has no latitude/longitude, which the `nearest` filter of service " +
                     s.name + " (" + sc.where + ") needs" +
                     (default_policy
                          ? "; the default policy is [\"up\", \"geo\", \"nearest\"]: "
                            "give the region coordinates or set policy = [\"up\", \"geo\"]"
                          : "")};
      }
    }
    if (sc.when_all_down == "fail-open") {
      s.when_all_down = georoute::AllDown::kFailOpen;
    } else if (sc.when_all_down == "nodata") {
      s.when_all_down = georoute::AllDown::kNoData;
    } else if (sc.when_all_down == "servfail") {
      s.when_all_down = georoute::AllDown::kServFail;
    } else if (sc.when_all_down == "fallback") {
      s.when_all_down = georoute::AllDown::kFallback;
    } else {
      return Error{sc.where + ": when_all_down must be fail-open, nodata, servfail or fallback"};
    }
    if (sc.weighted_prefix_v4 > 32 || sc.weighted_prefix_v6 > 128) {
      return Error{sc.where + ": weighted prefix out of range"};
    }
    s.weighted_prefix_v4 = static_cast<uint8_t>(sc.weighted_prefix_v4);
    s.weighted_prefix_v6 = static_cast<uint8_t>(sc.weighted_prefix_v6);

    // Geo map.
    if (auto r = compileGeoMap(cfg, sc, s.geo, out.warnings); !r) return r.error();

    // Pools and endpoints.
    size_t total = 0;
    for (const auto& pc : sc.pools) {
      georoute::Pool pool;
      auto rid = regionId(cfg, pc.region, pc.where);
      if (!rid) return rid.error();
      pool.region = *rid;
      for (const auto& ec : pc.endpoints) {
        georoute::Endpoint ep;
        ep.weight = ec.weight;
        ep.uid = uid++;
        if (ec.weight == 0) return Error{ec.where + ": weight must be at least 1"};
        if (!ec.cname.empty()) {
          dns::NameBuf target;
          if (!dns::fromText(ec.cname.back() == '.' ? ec.cname : ec.cname + ".", target)) {
            return Error{ec.where + ": bad cname '" + ec.cname + "'"};
          }
          ep.type = dns::rrtype::kCNAME;
          ep.target = dns::toText(target.data);
          ep.record = encodeRecord(ep.type, s.ttl, target.data, target.length);
          ep.label = cfg.regions[pool.region].name + "/" + ep.target;
        } else {
          const bool v6 = ec.address.find(':') != std::string::npos;
          if (inet_pton(v6 ? AF_INET6 : AF_INET, ec.address.c_str(), ep.address) != 1) {
            return Error{ec.where + ": '" + ec.address + "' is not an IP address"};
          }
          ep.type = v6 ? dns::rrtype::kAAAA : dns::rrtype::kA;
          ep.record = encodeRecord(ep.type, s.ttl, ep.address, v6 ? 16 : 4);
          ep.label = cfg.regions[pool.region].name + "/" + canonicalAddress(ec.address);
        }
        const std::string check = !ec.check.empty()   ? ec.check
                                  : !pc.check.empty() ? pc.check
                                                      : sc.check;
        if (!check.empty() && check != "none") {
          auto it = checks.find(check);
          if (it == checks.end()) return Error{ec.where + ": unknown check '" + check + "'"};
          if (ep.type == dns::rrtype::kCNAME)
            return Error{ec.where + ": a CNAME endpoint cannot be health-checked"};
          // One slot per address however it is written (2001:DB8::1 is 2001:db8::1).
          const std::string address = canonicalAddress(ec.address);
          auto key = std::make_pair(address, check);
          auto [tid, inserted] =
              target_ids.try_emplace(key, static_cast<uint32_t>(out.targets.size()));
          if (inserted)
            out.targets.push_back(HealthTarget{address + " (" + check + ")", address, *it->second});
          ep.health_id = tid->second;
        } else {
          // Unchecked: a slot of its own (per region and address), so overrides can reach it.
          auto [tid, inserted] = target_ids.try_emplace(std::make_pair(ep.label, std::string()),
                                                        static_cast<uint32_t>(out.targets.size()));
          if (inserted)
            out.targets.push_back(HealthTarget{ep.label, canonicalAddress(ec.address), {}, false});
          ep.health_id = tid->second;
        }
        pool.endpoints.push_back(std::move(ep));
        ++total;
      }
      s.pools.push_back(std::move(pool));
    }
    if (total == 0) return Error{sc.where + ": service " + s.name + " has no endpoints"};
    if (total > georoute::kMaxCandidates) {
      return Error{sc.where + ": service " + s.name + " has more than " +
                   std::to_string(georoute::kMaxCandidates) + " endpoints"};
    }
    buildScopeBlocks(*set, s);
    set->services.push_back(std::move(s));
  }
  std::sort(set->services.begin(), set->services.end(), [](const auto& a, const auto& b) {
    return dns::compareNames(a.owner.data, a.owner.length, b.owner.data, b.owner.length) < 0;
  });
  if (previous != nullptr) keepHealthIds(*previous, out.targets, *set);
  out.services = std::move(set);
  return out;
}

Result<CompiledSteering> loadSteering(const SteeringConfig& cfg, const ZoneLocator& zones) {
  std::shared_ptr<const georoute::GeoDatabase> dbs[2];
  const std::string* paths[2] = {&cfg.geoip, &cfg.asn_database};
  for (int i = 0; i < 2; ++i) {
    if (paths[i]->empty()) continue;
    auto db = georoute::GeoDatabase::open(*paths[i]);
    if (!db) return db.error();
    dbs[i] = *db;
  }
  return compileSteering(cfg, zones, dbs[0], dbs[1]);
}

healthcheck::CheckSpec checkSpec(const CheckConfig& c) {
  healthcheck::CheckSpec spec;
  spec.name = c.name;
  spec.kind = healthcheck::parseKind(c.type).value_or(healthcheck::CheckSpec::Kind::kTcp);
  spec.port = c.port;
  spec.path = c.path;
  spec.host_header = c.host;
  spec.expect_status = c.expect_status;
  spec.expect_body = c.expect_body;
  spec.dns_qname = c.dns_qname;
  spec.dns_qtype = c.dns_qtype;
  spec.interval_ms = c.interval_ms;
  spec.timeout_ms = c.timeout_ms;
  spec.rise = c.rise;
  spec.fall = c.fall;
  spec.verify_tls = c.verify_tls;
  return spec;
}

}  // namespace meridian::georoute
