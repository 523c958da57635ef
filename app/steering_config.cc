#include "app/steering_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>

namespace meridian::app {

using georoute::CidrEntry;

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

namespace {

Result<uint32_t> regionId(const SteeringConfig& cfg, const std::string& name,
                          const std::string& where) {
  for (size_t i = 0; i < cfg.regions.size(); ++i) {
    if (cfg.regions[i].name == name) return static_cast<uint32_t>(i);
  }
  return Error{where + ": unknown region '" + name + "'"};
}

Result<uint32_t> addList(const SteeringConfig& cfg, georoute::GeoMap& m,
                         const std::vector<std::string>& names, const std::string& where) {
  georoute::GeoList list;
  for (const auto& n : names) {
    auto id = regionId(cfg, n, where);
    if (!id) return id.error();
    list.regions.push_back(*id);
  }
  m.lists.push_back(std::move(list));
  return static_cast<uint32_t>(m.lists.size() - 1);
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

Result<CompiledSteering> compileSteering(const SteeringConfig& cfg, const zones::ZoneSet& zones,
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
    const zones::Zone* zone = zones.findZone(s.owner);
    if (zone == nullptr)
      return Error{sc.where + ": service " + s.name + " is not inside any served zone"};
    // The name and each ancestor down to the apex must be outside every delegation.
    for (size_t label = 0;
         label < s.owner.label_count && s.owner.suffixLength(label) > zone->apexLength(); ++label) {
      const uint32_t n = zone->find(s.owner.suffix(label), s.owner.suffixLength(label));
      if (n != zones::kNone && zone->node(n).cut != zones::kNone) {
        return Error{sc.where + ": service " + s.name + " is at or below a delegation in " +
                     zone->origin()};
      }
    }
    // The zone file's RRset at the name is the fallback and what secondaries serve; the name must
    // exist there so other types get NODATA rather than NXDOMAIN.
    if (zone->find(s.owner.data, s.owner.length) == zones::kNone) {
      return Error{sc.where + ": service " + s.name + " has no records in zone " + zone->origin() +
                   "; add its fallback RRset (e.g. an A record) to the zone file"};
    }
    s.zone = zone->origin();
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
    georoute::GeoMap& m = s.geo;
    if (!sc.geo.default_list.empty()) {
      auto l = addList(cfg, m, sc.geo.default_list, sc.where + ": geo.default");
      if (!l) return l.error();
      m.default_list = *l;
    }
    for (const auto& [code, names] : sc.geo.continent) {
      if (code.size() != 2)
        return Error{sc.where + ": geo.continent key '" + code + "' must be a 2-letter code"};
      auto l = addList(cfg, m, names, sc.where + ": geo.continent." + code);
      if (!l) return l.error();
      m.continents.emplace_back(georoute::packCode(code.data(), 2), *l);
    }
    for (const auto& [code, names] : sc.geo.country) {
      if (code.size() != 2)
        return Error{sc.where + ": geo.country key '" + code + "' must be an ISO 3166 code"};
      auto l = addList(cfg, m, names, sc.where + ": geo.country." + code);
      if (!l) return l.error();
      m.countries.emplace_back(georoute::packCode(code.data(), 2), *l);
    }
    for (const auto& [code, names] : sc.geo.subdivision) {
      const size_t dash = code.find('-');
      if (dash != 2 || code.size() < 4 || code.size() > 6) {
        return Error{sc.where + ": geo.subdivision key '" + code + "' must look like US-CA"};
      }
      auto l = addList(cfg, m, names, sc.where + ": geo.subdivision." + code);
      if (!l) return l.error();
      const uint64_t key = (static_cast<uint64_t>(georoute::packCode(code.data(), 2)) << 24) |
                           georoute::packSubdivision(code.data() + 3, code.size() - 3);
      m.subdivisions.emplace_back(key, *l);
    }
    for (const auto& [net, names] : sc.geo.cidr) {
      auto c = parseCidr(net);
      if (!c) return Error{sc.where + ": geo.cidr: " + c.error().message};
      auto l = addList(cfg, m, names, sc.where + ": geo.cidr." + net);
      if (!l) return l.error();
      c->list = *l;
      m.cidrs.push_back(*c);
    }
    for (const auto& [asn, names] : sc.geo.asn) {
      const std::string digits = asn.rfind("AS", 0) == 0 ? asn.substr(2) : asn;
      char* end = nullptr;
      const unsigned long v = std::strtoul(digits.c_str(), &end, 10);
      if (digits.empty() || *end != '\0' || v > 0xFFFFFFFFul)
        return Error{sc.where + ": geo.asn key '" + asn + "' is not an AS number"};
      auto l = addList(cfg, m, names, sc.where + ": geo.asn." + asn);
      if (!l) return l.error();
      m.asns.emplace_back(static_cast<uint32_t>(v), *l);
    }
    std::sort(m.continents.begin(), m.continents.end());
    std::sort(m.countries.begin(), m.countries.end());
    std::sort(m.subdivisions.begin(), m.subdivisions.end());
    std::sort(m.asns.begin(), m.asns.end());

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
          ep.label = cfg.regions[pool.region].name + "/" + ec.address;
        }
        const std::string check = !ec.check.empty()   ? ec.check
                                  : !pc.check.empty() ? pc.check
                                                      : sc.check;
        if (!check.empty() && check != "none") {
          auto it = checks.find(check);
          if (it == checks.end()) return Error{ec.where + ": unknown check '" + check + "'"};
          if (ep.type == dns::rrtype::kCNAME)
            return Error{ec.where + ": a CNAME endpoint cannot be health-checked"};
          auto key = std::make_pair(ec.address, check);
          auto [tid, inserted] =
              target_ids.try_emplace(key, static_cast<uint32_t>(out.targets.size()));
          if (inserted)
            out.targets.push_back(
                HealthTarget{ec.address + " (" + check + ")", ec.address, *it->second});
          ep.health_id = tid->second;
        } else {
          // Unchecked: a slot of its own (per region and address), so overrides can reach it.
          auto [tid, inserted] = target_ids.try_emplace(std::make_pair(ep.label, std::string()),
                                                        static_cast<uint32_t>(out.targets.size()));
          if (inserted) out.targets.push_back(HealthTarget{ep.label, ec.address, {}, false});
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

Result<CompiledSteering> loadSteering(const SteeringConfig& cfg, const zones::ZoneSet& zones) {
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

}  // namespace meridian::app
