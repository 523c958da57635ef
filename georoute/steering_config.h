// Steering configuration ([geoip], [[region]], [[check]], [[service]]) as parsed from TOML, and its
// compilation into a georoute::ServiceSet plus the list of health-check targets. Control side:
// the runtime compiles on its load pool (compileSteering reads only its arguments).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "georoute/service.h"
#include "zones/zone.h"

namespace meridian::app {

struct CheckConfig {
  std::string name;
  std::string type = "tcp";  // tcp, http, https, dns
  uint16_t port = 80;
  std::string path = "/";
  std::string host;  // HTTP Host header (default: the endpoint address)
  std::vector<int> expect_status = {200};
  bool verify_tls = false;  // https: verify the certificate chain and name
  std::string expect_body;  // substring the body must contain
  std::string dns_qname = ".";
  uint16_t dns_qtype = 6;
  uint32_t interval_ms = 5000;
  uint32_t timeout_ms = 2000;
  uint32_t rise = 2;
  uint32_t fall = 3;
  std::string where;
};

struct EndpointConfig {
  std::string address;  // IPv4 or IPv6 literal
  std::string cname;    // or a CNAME target
  uint32_t weight = 1;
  std::string check;  // overrides the pool's / service's check; "none" disables
  std::string where;
};

struct PoolConfig {
  std::string region;
  std::string check;
  std::vector<EndpointConfig> endpoints;
  std::string where;
};

// A service's geo map as written. Keys are kept as written (codes are matched case-insensitively
// when compiled). An entry whose value names a [lists] entry has an empty region list here and
// its name in `named`.
struct GeoMapConfig {
  std::vector<std::string> default_list;
  std::map<std::string, std::vector<std::string>> continent, country, subdivision, cidr, asn;
  // "country.DE" -> "europe-first" (and "default" for geo.default = "name").
  std::map<std::string, std::string> named;
  // Source position of each entry for messages: "country.DE" -> "file:10: service.geo.country.DE".
  std::map<std::string, std::string> where;
};

// [lists] name = ["eu", "uk"]: a region list written once and named by several map entries.
struct NamedListConfig {
  std::vector<std::string> regions;
  std::string where;
};

struct ServiceConfig {
  std::string name;
  uint32_t ttl = 30;
  // The default answers the chosen region's whole address set; `first_n` trims only when listed.
  std::vector<std::string> policy = {"up", "geo", "nearest"};
  uint32_t first_n = 1;
  std::string when_all_down = "fail-open";  // fail-open, nodata, servfail, fallback
  std::string check;
  std::vector<PoolConfig> pools;
  GeoMapConfig geo;
  uint32_t weighted_prefix_v4 = 24;
  uint32_t weighted_prefix_v6 = 56;
  std::string where;
};

struct SteeringConfig {
  std::string geoip;                     // path of a City/Country (or Meridian-built) .mmdb
  std::string asn_database;              // optional GeoLite2-ASN .mmdb for geo.asn maps
  std::vector<std::string> ecs_trusted;  // CIDRs of resolvers whose ECS is believed
  bool use_registered_country = false;   // map by registered_country when country is absent
  std::map<std::string, NamedListConfig> lists;
  std::vector<georoute::Region> regions;
  std::vector<CheckConfig> checks;
  std::vector<ServiceConfig> services;
  [[nodiscard]] bool empty() const { return services.empty() && regions.empty(); }
};

// One health-table slot; its index is the health id used by the ServiceSet. A checked slot is an
// (address, check) pair, shared by every endpoint with that address and check, labelled
// "ADDRESS (CHECK)". An unchecked slot is one endpoint without a check, labelled like the endpoint
// ("REGION/ADDRESS" or "REGION/CNAME-TARGET"), shared by the services that list it in that
// region: never probed, always up unless an operator override says otherwise.
struct HealthTarget {
  std::string label;
  std::string address;  // empty for a CNAME endpoint
  CheckConfig check;    // meaningful when checked
  bool checked = true;
};

struct CompiledSteering {
  std::shared_ptr<const georoute::ServiceSet> services;
  std::vector<HealthTarget> targets;
  // Things that load but are probably not what the operator meant (an unknown country code, a
  // subdivision key that can never match), each "file:line: ...". `meridian check` prints them,
  // the server logs them.
  std::vector<std::string> warnings;
};

// Resolves names to ids and validates: regions exist, services lie in served zones and not below a
// delegation, endpoints parse, checks exist, policies are known. `geo` may be null.
//
// `previous`: the targets of the steering this one replaces (a reload). A slot that both have
// (same label, checked or not) keeps its previous id where it fits in the new table, so that the
// services and the health table, which are published one after the other, agree on every
// unchanged slot in between.
[[nodiscard]] Result<CompiledSteering> compileSteering(
    const SteeringConfig& cfg, const zones::ZoneSet& zones,
    std::shared_ptr<const georoute::GeoDatabase> geo,
    std::shared_ptr<const georoute::GeoDatabase> asn = nullptr,
    const std::vector<HealthTarget>* previous = nullptr);

// Opens the configured GeoIP databases and compiles: for `meridian check` and `explain`, which have
// no previous state to fall back on (the server keeps its own, see app/runtime.h).
[[nodiscard]] Result<CompiledSteering> loadSteering(const SteeringConfig& cfg,
                                                    const zones::ZoneSet& zones);

// An IP address in its canonical text (RFC 5952 for IPv6: 2001:DB8:0::1 -> 2001:db8::1), as
// health labels show it and overrides match it; anything else is returned unchanged.
[[nodiscard]] std::string canonicalAddress(const std::string& text);

// "192.0.2.0/24" or "2001:db8::/32".
[[nodiscard]] Result<georoute::CidrEntry> parseCidr(const std::string& text);

}  // namespace meridian::app
