// Unit tests for the policy filters and the ECS scope they report, on hand-built ServiceSets and
// the MaxMind test database.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>

#include "../testutil.h"
#include "georoute/compile.h"
#include "georoute/policy.h"
#include "server/steering_zones.h"
#include "steering_fixture.h"
#include "zones/loader.h"

using namespace meridian;
using georoute::Decision;

namespace {

const std::string kGeo = std::string(MERIDIAN_SHARED_DIR) + "/geoip/";

struct World {
  zones::ZoneSet zones;
  georoute::CompiledSteering compiled;
  healthcheck::StateTable health;

  explicit World(georoute::SteeringConfig cfg, bool with_geo = true) {
    auto z = zones::loadZoneText("example.com",
                                 "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS "
                                 "ns\nns A 192.0.2.1\nwww A 192.0.2.99\n");
    REQUIRE_OK(z);
    zones = zones::ZoneSet({z->zone});
    std::shared_ptr<const georoute::GeoDatabase> geo;
    if (with_geo) {
      auto db = georoute::GeoDatabase::open(kGeo + "GeoIP2-City-Test.mmdb");
      REQUIRE_OK(db);
      geo = *db;
    }
    auto c = georoute::compileSteering(cfg, server::zoneLocator(zones), geo);
    REQUIRE_OK(c);
    compiled = *c;
    health.targets.resize(compiled.targets.size());
  }
  const georoute::Service& service() const { return compiled.services->services.at(0); }

  Decision ask(const std::string& client, uint16_t qtype = 1,
               georoute::Trace* trace = nullptr) const {
    auto cidr = georoute::parseCidr(client);
    REQUIRE_OK(cidr);
    georoute::Client c;
    c.ipv6 = cidr->ipv6;
    std::memcpy(c.address, cidr->address, 16);
    c.source_prefix = cidr->prefix;
    c.from_ecs = true;
    return georoute::decide(*compiled.services, service(), qtype, c, health, trace);
  }
  std::string answer(const std::string& client, uint16_t qtype = 1) const {
    const Decision d = ask(client, qtype);
    std::string out;
    for (uint16_t i = 0; i < d.count; ++i) out += (out.empty() ? "" : ",") + d.chosen[i]->label;
    return out;
  }
};

georoute::SteeringConfig baseConfig() {
  georoute::SteeringConfig cfg;
  cfg.regions = {{"eu", 50.1, 8.7, 0}, {"us", 39.0, -77.5, 0}, {"ap", 35.7, 139.7, 0}};
  georoute::ServiceConfig s;
  s.name = "www.example.com";
  s.where = "test";
  s.policy = {"up", "geo", "first_n"};
  s.geo.default_list = {"us"};
  s.geo.continent = {{"EU", {"eu", "us"}}, {"AS", {"ap"}}};
  s.geo.country = {{"CN", {"eu"}}};
  for (const auto& [region, addr] :
       std::vector<std::pair<std::string, std::string>>{{"eu", "198.51.100.1"},
                                                        {"us", "198.51.100.2"},
                                                        {"ap", "198.51.100.3"},
                                                        {"eu", "2001:db8::1"}}) {
    s.pools.push_back(test::pool(region, addr));
  }
  cfg.services.push_back(s);
  return cfg;
}

}  // namespace

TEST_CASE("geo: continent, country over continent, default; scope from the database's networks",
          "[policy]") {
  World w(baseConfig());
  CHECK(w.answer("81.2.69.142/32") == "eu/198.51.100.1");     // GB, EU
  CHECK(w.answer("216.160.83.56/32") == "us/198.51.100.2");   // US: no entry -> default
  CHECK(w.answer("175.16.199.0/24") == "eu/198.51.100.1");    // CN: the country entry beats AS
  CHECK(w.answer("2001:218::/32") == "ap/198.51.100.3");      // JP, AS
  CHECK(w.answer("81.2.69.142/32", 28) == "eu/2001:db8::1");  // AAAA from the same region
  // Scope: the database network the answer came from (::81.2.69.142/127 -> /31, whose neighbour
  // 81.2.69.140/31 is unmapped and answered differently), longer than SOURCE when the source block
  // holds several networks (RFC 7871 §7.2.1).
  CHECK(w.ask("81.2.69.142/32").scope == 31);
  CHECK(w.ask("175.16.199.0/24").scope == 24);
  const Decision unmapped = w.ask("10.1.0.0/16");
  CHECK(unmapped.scope > 0);    // never /0 for a location-dependent answer
  CHECK(unmapped.scope <= 16);  // 8.0.0.0/5 holds no network of the test database: one answer
}

TEST_CASE("up: unhealthy endpoints are skipped; all down follows when_all_down", "[policy]") {
  auto cfg = baseConfig();
  cfg.checks.push_back(georoute::CheckConfig{"web"});
  cfg.services[0].check = "web";
  World w(cfg);
  REQUIRE(w.compiled.targets.size() == 4);
  auto id = [&](const std::string& addr) {
    for (size_t i = 0; i < w.compiled.targets.size(); ++i) {
      if (w.compiled.targets[i].address == addr) return i;
    }
    FAIL("no target " << addr);
    return size_t{0};
  };
  w.health.targets[id("198.51.100.1")].up = false;
  CHECK(w.answer("81.2.69.142/32") == "us/198.51.100.2");  // EU list: eu (down) then us
  w.health.targets[id("198.51.100.1")].up = true;
  w.health.targets[id("198.51.100.1")].override = healthcheck::Override::kForceDown;
  CHECK(w.answer("81.2.69.142/32") == "us/198.51.100.2");
  w.health.targets[id("198.51.100.1")].override = healthcheck::Override::kNone;
  for (auto& t : w.health.targets) t.up = false;
  CHECK(w.answer("81.2.69.142/32") == "eu/198.51.100.1");  // fail-open: as if all were up

  for (const auto& [mode, kind] : std::vector<std::pair<std::string, Decision::Kind>>{
           {"nodata", Decision::Kind::kNoData},
           {"servfail", Decision::Kind::kServFail},
           {"fallback", Decision::Kind::kFallback}}) {
    auto c2 = cfg;
    c2.services[0].when_all_down = mode;
    World w2(c2);
    for (auto& t : w2.health.targets) t.up = false;
    CHECK(w2.ask("81.2.69.142/32").kind == kind);
  }
}

TEST_CASE("nearest: great-circle distance with per-region bias", "[policy]") {
  auto cfg = baseConfig();
  cfg.services[0].policy = {"nearest", "first_n"};
  World w(cfg);
  CHECK(w.answer("81.2.69.142/32") == "eu/198.51.100.1");    // London is nearest to Frankfurt
  CHECK(w.answer("216.160.83.56/32") == "us/198.51.100.2");  // Milton, WA
  CHECK(w.answer("2001:218::/32") == "ap/198.51.100.3");     // Tokyo
  auto biased = cfg;
  biased.regions[1].bias_km = -10000;  // pull everyone to us
  World wb(biased);
  CHECK(wb.answer("81.2.69.142/32") == "us/198.51.100.2");
  CHECK(georoute::distanceKm(51.5, -0.12, 40.7, -74.0) ==
        Approx(5570).epsilon(0.01));  // London-NYC
}

TEST_CASE("latency: the region with the lowest measured RTT wins", "[policy]") {
  auto cfg = baseConfig();
  cfg.checks.push_back(georoute::CheckConfig{"tcp"});
  cfg.services[0].check = "tcp";
  cfg.services[0].policy = {"up", "latency", "first_n"};
  World w(cfg);
  for (size_t i = 0; i < w.compiled.targets.size(); ++i) w.health.targets[i].rtt_us = 50000;
  CHECK(w.answer("81.2.69.142/32") != "");
  for (size_t i = 0; i < w.compiled.targets.size(); ++i) {
    if (w.compiled.targets[i].address == "198.51.100.3") w.health.targets[i].rtt_us = 800;
  }
  CHECK(w.answer("81.2.69.142/32") == "ap/198.51.100.3");
  CHECK(w.answer("216.160.83.56/32") == "ap/198.51.100.3");
  CHECK(w.ask("81.2.69.142/32").scope == 0);  // latency does not depend on the client
}

TEST_CASE("weighted: sticky per subnet and split by weight", "[policy]") {
  georoute::SteeringConfig cfg;
  cfg.regions = {{"a", 0, 0, 0}, {"b", 0, 0, 0}};
  georoute::ServiceConfig s;
  s.name = "www.example.com";
  s.where = "test";
  s.policy = {"weighted", "first_n"};
  for (const auto& [region, addr, weight] :
       std::vector<std::tuple<std::string, std::string, uint32_t>>{{"a", "198.51.100.1", 3},
                                                                   {"b", "198.51.100.2", 1}}) {
    s.pools.push_back(test::pool(region, addr, weight));
  }
  cfg.services.push_back(s);
  World w(cfg, false);
  std::map<std::string, int> counts;
  const int kSubnets = 20000;
  for (int i = 0; i < kSubnets; ++i) {
    const std::string subnet = std::to_string(10 + (i >> 16) % 200) + "." +
                               std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) +
                               ".0/24";
    const std::string first = w.answer(subnet);
    ++counts[first];
    if (i % 1000 == 0) {
      CHECK(w.answer(subnet) == first);  // the same subnet always gets the same answer
      const std::string host = subnet.substr(0, subnet.size() - 4) + "77/32";
      CHECK(w.answer(host) == first);  // hosts of the subnet too
      CHECK(w.ask(subnet).scope == 24);
    }
  }
  // Weights 3:1 -> 75 % / 25 %; tolerance ±2 percentage points over 20 000 subnets.
  const double share = static_cast<double>(counts["a/198.51.100.1"]) / kSubnets;
  INFO("share of a: " << share);
  CHECK(share > 0.73);
  CHECK(share < 0.77);
}

TEST_CASE("first_n and CIDR maps", "[policy]") {
  auto cfg = baseConfig();
  cfg.services[0].policy = {"geo", "first_n"};
  cfg.services[0].geo.cidr = {{"81.2.69.0/24", {"ap"}}, {"81.2.69.128/25", {"us"}}};
  World w(cfg);
  CHECK(w.answer("81.2.69.142/32") == "us/198.51.100.2");  // longest CIDR wins over the database
  CHECK(w.ask("81.2.69.142/32").scope == 25);
  CHECK(w.answer("81.2.69.10/32") == "ap/198.51.100.3");
  // The /24's answer must not be cached for the /25 inside it: the scope leaves the /25 out.
  CHECK(w.ask("81.2.69.10/32").scope == 25);
  CHECK(w.ask("81.2.69.0/24").scope == 25);
  // A database answer whose network holds a more specific CIDR entry gets a longer scope too.
  auto nested = baseConfig();
  nested.services[0].policy = {"geo", "first_n"};
  nested.services[0].geo.cidr = {{"81.2.69.143/32", {"ap"}}, {"10.1.0.0/16", {"ap"}}};
  World wn(nested);
  CHECK(wn.answer("81.2.69.142/32") == "eu/198.51.100.1");
  CHECK(wn.ask("81.2.69.142/32").scope == 32);  // the database's /31 would cover .143
  CHECK(wn.answer("81.2.69.143/32") == "ap/198.51.100.3");
  CHECK(wn.ask("10.2.0.0/24").scope >= 15);  // unmapped /8 network, but 10.1/16 is special
  auto multi = baseConfig();
  multi.services[0].policy = {"first_n"};
  multi.services[0].first_n = 2;
  World wm(multi);
  CHECK(wm.ask("81.2.69.142/32").count == 2);
}

TEST_CASE("explain records every step", "[policy]") {
  World w(baseConfig());
  georoute::Trace t;
  (void)w.ask("81.2.69.142/32", 1, &t);
  REQUIRE(t.lines.size() >= 4);
  CHECK(std::any_of(t.lines.begin(), t.lines.end(), [](const std::string& l) {
    return l.find("location: continent EU, country GB") == 0;
  }));
  CHECK(std::any_of(t.lines.begin(), t.lines.end(),
                    [](const std::string& l) { return l.rfind("up: 0 down", 0) == 0; }));
  CHECK(t.lines.back().find("ECS scope /31") != std::string::npos);
}

TEST_CASE("steering configuration errors are clear", "[policy]") {
  auto z =
      zones::loadZoneText("example.com",
                          "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A "
                          "192.0.2.1\nwww A 192.0.2.99\nghost-parent TXT x\nsub NS ns.other.\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  auto bad = [&](auto mutate, const std::string& expect) {
    auto cfg = baseConfig();
    mutate(cfg);
    auto r = georoute::compileSteering(cfg, server::zoneLocator(zs), nullptr);
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().message);
    CHECK(r.error().message.find(expect) != std::string::npos);
  };
  bad([](georoute::SteeringConfig& c) { c.services[0].name = "www.example.org"; },
      "not inside any served zone");
  bad([](georoute::SteeringConfig& c) { c.services[0].name = "x.sub.example.com"; },
      "below a delegation");
  bad([](georoute::SteeringConfig& c) { c.services[0].pools[0].region = "mars"; },
      "unknown region 'mars'");
  bad([](georoute::SteeringConfig& c) { c.services[0].policy = {"magic"}; },
      "unknown policy filter");
  bad(
      [](georoute::SteeringConfig& c) {
        c.services[0].pools[0].endpoints[0].address = "300.1.1.1";
      },
      "not an IP address");
  bad([](georoute::SteeringConfig& c) { c.services[0].check = "nope"; }, "unknown check 'nope'");
  bad([](georoute::SteeringConfig& c) { c.services[0].name = "ghost.example.com"; },
      "add its fallback RRset");
}

TEST_CASE("asn maps use a separate ASN database", "[policy]") {
  auto cfg = baseConfig();
  cfg.services[0].policy = {"geo", "first_n"};
  cfg.services[0].geo.asn = {{"AS1221", {"ap"}}};
  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.99\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  auto city = georoute::GeoDatabase::open(kGeo + "GeoIP2-City-Test.mmdb");
  auto asn = georoute::GeoDatabase::open(kGeo + "GeoLite2-ASN-Test.mmdb");
  REQUIRE_OK(city);
  REQUIRE_OK(asn);
  auto compiled = georoute::compileSteering(cfg, server::zoneLocator(zs), *city, *asn);
  REQUIRE_OK(compiled);
  healthcheck::StateTable health;
  georoute::Client c;
  c.source_prefix = 32;
  const uint8_t telstra[4] = {1, 128, 0, 1};  // AS1221 in GeoLite2-ASN-Test
  std::memcpy(c.address, telstra, 4);
  auto d = georoute::decide(*compiled->services, compiled->services->services[0], 1, c, health);
  REQUIRE(d.count == 1);
  CHECK(d.chosen[0]->label == "ap/198.51.100.3");
  const uint8_t other[4] = {192, 0, 2, 1};
  std::memcpy(c.address, other, 4);
  d = georoute::decide(*compiled->services, compiled->services->services[0], 1, c, health);
  REQUIRE(d.count == 1);
  CHECK(d.chosen[0]->label == "us/198.51.100.2");  // default
}
