// Steering configuration as the operator writes it ([geoip], [lists], [[region]], [[check]],
// [[service]]): plain structs, names and values as written, each entry with the source position
// (`where`, "file:line: key") that compile errors name. app/config.cc fills them from TOML;
// compile.h turns them into a ServiceSet and the health-check targets.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "georoute/service.h"

namespace meridian::georoute {

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
  std::vector<Region> regions;
  std::vector<CheckConfig> checks;
  std::vector<ServiceConfig> services;
  [[nodiscard]] bool empty() const { return services.empty() && regions.empty(); }
};

}  // namespace meridian::georoute
