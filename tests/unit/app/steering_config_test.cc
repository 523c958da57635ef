// Unit tests for the steering configuration as an operator writes it: TOML through loadConfig
// (defaults, optional coordinates, --set on [[service]] entries) and compileSteering (health slots
// for endpoints without a check). GeoIP is left out (null database) unless a test needs it.
#include <arpa/inet.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "app/config.h"
#include "georoute/compile.h"
#include "georoute/policy.h"
#include "server/steering_zones.h"
#include "steering_fixture.h"
#include "zones/loader.h"

using namespace meridian;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "steering_config_test.XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
    std::ofstream(path / "example.com.zone")
        << "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
           "www A 192.0.2.99\napi A 192.0.2.98\n";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// The configuration file `toml` (after a [[zone]] for example.com), loaded with `sets`.
Result<app::Config> load(const TempDir& dir, const std::string& toml,
                         std::vector<std::string> sets = {}) {
  const fs::path file = dir.path / "meridian.toml";
  std::ofstream(file) << "[[zone]]\nname = \"example.com\"\nfile = \"example.com.zone\"\n\n"
                      << toml;
  app::CommandLine cmd;
  cmd.config_file = file.string();
  cmd.sets = std::move(sets);
  return app::loadConfig(cmd);
}

zones::ZoneSet exampleZones(const TempDir& dir) {
  auto z = zones::loadZoneFile("example.com.", (dir.path / "example.com.zone").string());
  REQUIRE(z.has_value());
  return zones::ZoneSet({z->zone});
}

std::string answer(const georoute::CompiledSteering& c, const healthcheck::StateTable& health,
                   const std::string& client = "192.0.2.200") {
  georoute::Client cl;
  REQUIRE(inet_pton(AF_INET, client.c_str(), cl.address) == 1);
  cl.source_prefix = 32;
  const georoute::Service& s = c.services->services.at(0);
  const georoute::Decision d = georoute::decide(*c.services, s, 1, cl, health);
  std::string out;
  for (uint16_t i = 0; i < d.count; ++i) out += (out.empty() ? "" : ",") + d.chosen[i]->label;
  return out;
}

// www.example.com under the default policy (which has `nearest`: both regions have coordinates).
const std::string kTwoRegions =
    test::twoRegionSteering({.service = "www.example.com",
                             .eu_position = "latitude = 50.11\nlongitude = 8.68\n",
                             .us_position = "latitude = 39.04\nlongitude = -77.49\n"});

}  // namespace

TEST_CASE("default policy answers the region's whole address set", "[config]") {
  TempDir dir;
  auto cfg = load(dir, kTwoRegions);
  REQUIRE(cfg.has_value());
  const auto& policy = cfg->steering.services.at(0).policy;
  CHECK(policy == std::vector<std::string>{"up", "geo", "nearest"});
  auto c =
      georoute::compileSteering(cfg->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c.has_value());
  healthcheck::StateTable health;
  CHECK(answer(*c, health) == "eu/198.51.100.1,eu/198.51.100.2");
  // first_n trims only when the policy lists it.
  auto trimmed =
      load(dir, kTwoRegions, {"service[www.example.com].policy=[\"up\", \"geo\", \"first_n\"]"});
  REQUIRE(trimmed.has_value());
  auto c2 =
      georoute::compileSteering(trimmed->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c2.has_value());
  CHECK(answer(*c2, health) == "eu/198.51.100.1");
}

TEST_CASE("coordinates are needed only by a nearest filter", "[config]") {
  TempDir dir;
  const std::string no_coords =
      test::twoRegionSteering({.service = "www.example.com",
                               .policy = R"(["up", "geo"])",
                               .us_position = "latitude = 39.04\nlongitude = -77.49\n",
                               .eu_endpoints = R"(["198.51.100.1"])"});
  auto cfg = load(dir, no_coords);
  REQUIRE(cfg.has_value());
  CHECK_FALSE(cfg->steering.regions.at(0).has_coordinates);
  CHECK(cfg->steering.regions.at(1).has_coordinates);
  auto ok =
      georoute::compileSteering(cfg->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(ok.has_value());
  CHECK(answer(*ok, healthcheck::StateTable{}) == "eu/198.51.100.1");

  // The same regions under a `nearest` filter: refused, naming the region's file:line.
  const std::string file = (dir.path / "meridian.toml").string();
  // An explicit `nearest`, and the default policy (which has one): refused, naming the region's
  // file:line ([[zone]] takes lines 1-3, a blank line, then no_coords, which opens with a newline).
  for (const bool explicit_policy : {true, false}) {
    auto near = load(dir, no_coords);
    REQUIRE(near.has_value());
    near->steering.services[0].policy = explicit_policy ? std::vector<std::string>{"up", "nearest"}
                                                        : georoute::ServiceConfig{}.policy;
    auto bad =
        georoute::compileSteering(near->steering, server::zoneLocator(exampleZones(dir)), nullptr);
    REQUIRE_FALSE(bad.has_value());
    INFO(bad.error().message);
    CHECK_THAT(bad.error().message, Catch::StartsWith(file + ":6: region 'eu'"));
    CHECK_THAT(bad.error().message, Catch::Contains("nearest"));
    CHECK_THAT(bad.error().message, Catch::Contains("www.example.com"));
    if (!explicit_policy) CHECK_THAT(bad.error().message, Catch::Contains("default policy"));
  }

  // Half-given coordinates are a mistake.
  auto half = load(dir, "[[region]]\nname = \"eu\"\nlatitude = 50.1\n");
  REQUIRE_FALSE(half.has_value());
  CHECK_THAT(half.error().message, Catch::Contains("both latitude and longitude"));
  CHECK_THAT(half.error().message, Catch::Contains(file + ":5"));
}

TEST_CASE("--set reaches [[service]], [[region]] and pool entries by name", "[config]") {
  TempDir dir;
  const std::string two_services = std::string(kTwoRegions) + R"(
[[service]]
name = "api.example.com"
ttl = 60

[[service.pool]]
region = "us"
endpoints = ["198.51.100.9"]
)";
  auto cfg = load(dir, two_services,
                  {"service[www.example.com].ttl=5", "service[API.Example.COM.].first_n=2",
                   "service[www.example.com].pool[us].check=none", "region[eu].bias_km=-300",
                   "service[www.example.com].geo.country.GB=[\"us\"]", "server.nsid=ns1"});
  REQUIRE(cfg.has_value());
  const auto& svcs = cfg->steering.services;
  REQUIRE(svcs.size() == 2);
  CHECK(svcs[0].ttl == 5);
  CHECK(svcs[1].ttl == 60);
  CHECK(svcs[1].first_n == 2);
  CHECK(svcs[0].pools[1].check == "none");
  CHECK(svcs[0].pools[0].check.empty());
  CHECK(cfg->steering.regions[0].bias_km == -300);
  CHECK(svcs[0].geo.country.at("GB") == std::vector<std::string>{"us"});
  CHECK(cfg->protocol.nsid == "ns1");

  struct Bad {
    std::string set, expect;
  };
  for (const Bad& b :
       {Bad{"service.ttl=5", "service[NAME]"}, Bad{"service.ttl=5", "array of tables"},
        Bad{"service[nope.example.com].ttl=5", "no [[service]] named 'nope.example.com'"},
        Bad{"service[nope.example.com].ttl=5", "www.example.com"},
        Bad{"service[www.example.com].pool.check=web", "pool[NAME]"},
        Bad{"service=1", "array of tables"}, Bad{"service[www.example.com]=1", "set its keys"},
        Bad{"server[x].nsid=a", "not an array of tables"},
        Bad{"service[www.example.com.ttl=5", "closing ']'"}}) {
    auto r = load(dir, two_services, {b.set});
    INFO(b.set);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::Contains(b.expect));
  }
}

TEST_CASE("every endpoint has a health slot; unchecked ones per region and address", "[config]") {
  TempDir dir;
  auto cfg = load(dir, std::string(kTwoRegions) + R"(
[[service]]
name = "api.example.com"
check = "web"

[[service.pool]]
region = "eu"
endpoints = ["198.51.100.1", { cname = "eu.cdn.example.net.", check = "none" }]

[[check]]
name = "web"
type = "tcp"
)");
  REQUIRE(cfg.has_value());
  auto c =
      georoute::compileSteering(cfg->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c.has_value());
  std::vector<std::string> labels;
  for (const auto& t : c->targets) labels.push_back(t.label + (t.checked ? " checked" : ""));
  CHECK(labels == std::vector<std::string>{"eu/198.51.100.1", "eu/198.51.100.2", "us/198.51.100.3",
                                           "198.51.100.1 (web) checked", "eu/eu.cdn.example.net."});
  for (const auto& s : c->services->services) {
    for (const auto& p : s.pools) {
      for (const auto& e : p.endpoints) CHECK(e.health_id != georoute::kNoId);
    }
  }
  // An override on an unchecked slot takes its endpoint out of the answers.
  healthcheck::StateTable health;
  health.targets.resize(c->targets.size());
  const auto& www = c->services->services.at(1);  // sorted by name: api, www
  REQUIRE(www.name == "www.example.com.");
  auto ask = [&] {
    georoute::Client cl;
    cl.source_prefix = 32;
    const auto d = georoute::decide(*c->services, www, 1, cl, health);
    std::string out;
    for (uint16_t i = 0; i < d.count; ++i) out += (out.empty() ? "" : ",") + d.chosen[i]->label;
    return out;
  };
  CHECK(ask() == "eu/198.51.100.1,eu/198.51.100.2");
  health.targets[0].override = healthcheck::Override::kForceDown;
  health.targets[1].override = healthcheck::Override::kDrain;
  CHECK(ask() == "us/198.51.100.3");
  health.targets[0].override = healthcheck::Override::kNone;
  CHECK(ask() == "eu/198.51.100.1");
}

TEST_CASE("a recompile keeps the health ids of unchanged slots", "[config]") {
  TempDir dir;
  auto before = load(dir, kTwoRegions);
  REQUIRE(before.has_value());
  auto c1 =
      georoute::compileSteering(before->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c1.has_value());
  // An endpoint inserted first, one removed: compiled in order, every slot after it would shift.
  auto after =
      load(dir, kTwoRegions,
           {"service[www.example.com].pool[eu].endpoints=[\"198.51.100.7\", \"198.51.100.8\", "
            "\"198.51.100.2\"]"});
  REQUIRE(after.has_value());
  auto c2 = georoute::compileSteering(after->steering, server::zoneLocator(exampleZones(dir)),
                                      nullptr, nullptr, &c1->targets);
  REQUIRE(c2.has_value());
  auto idOf = [](const georoute::CompiledSteering& c, const std::string& label) {
    for (size_t i = 0; i < c.targets.size(); ++i) {
      if (c.targets[i].label == label) return static_cast<long>(i);
    }
    return -1L;
  };
  CHECK(idOf(*c2, "eu/198.51.100.2") == idOf(*c1, "eu/198.51.100.2"));
  CHECK(idOf(*c2, "us/198.51.100.3") == idOf(*c1, "us/198.51.100.3"));
  CHECK(idOf(*c2, "eu/198.51.100.7") == idOf(*c1, "eu/198.51.100.1"));  // the freed id
  CHECK(idOf(*c2, "eu/198.51.100.8") == 3);                             // a new one
  CHECK(idOf(*c2, "eu/198.51.100.1") == -1);
  // Every endpoint points at the slot of its own label.
  size_t endpoints = 0;
  for (const auto& s : c2->services->services) {
    for (const auto& p : s.pools) {
      for (const auto& e : p.endpoints) {
        REQUIRE(e.health_id < c2->targets.size());
        CHECK(c2->targets[e.health_id].label == e.label);
        ++endpoints;
      }
    }
  }
  CHECK(endpoints == 4);
  // Without the previous targets: compiled order.
  auto c3 =
      georoute::compileSteering(after->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c3.has_value());
  CHECK(idOf(*c3, "eu/198.51.100.7") == 0);
  CHECK(idOf(*c3, "eu/198.51.100.2") == 2);
  CHECK(idOf(*c3, "us/198.51.100.3") == 3);
}

TEST_CASE("--set errors name --set, not the configuration file's lines", "[config]") {
  TempDir dir;
  for (const std::string& set :
       {std::string("server.threads=99999"), std::string("service[www.example.com].ttl=-1"),
        std::string("service[www.example.com].geo.country=5"),
        std::string("region[eu].latitude=\"north\"")}) {
    auto r = load(dir, kTwoRegions, {set});
    INFO(set);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::StartsWith("--set"));
    CHECK_THAT(r.error().message, !Catch::Contains("meridian.toml"));
  }
  // A mistake in the file itself still names the file and line.
  auto r = load(dir, std::string(kTwoRegions) + "[server]\nthreads = 99999\n");
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message, Catch::Contains("meridian.toml:"));
  // A named list that --set points at a list that does not exist: found when compiled.
  auto cfg = load(dir, kTwoRegions, {"service[www.example.com].geo.country.DE=\"nolist\""});
  REQUIRE(cfg.has_value());
  auto c =
      georoute::compileSteering(cfg->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE_FALSE(c.has_value());
  CHECK_THAT(c.error().message, Catch::StartsWith("--set"));
}

TEST_CASE("--set reaches keys with dots when they are quoted", "[config]") {
  TempDir dir;
  auto cfg =
      load(dir, kTwoRegions,
           {"service[www.example.com].geo.cidr.\"10.0.0.0/8\"=[\"us\"]",
            "service[www.example.com].geo.cidr.\"2001:db8::/32\"=[\"eu\"]", "\"server\".nsid=ns1"});
  REQUIRE(cfg.has_value());
  const auto& cidr = cfg->steering.services.at(0).geo.cidr;
  CHECK(cidr.size() == 2);
  CHECK(cidr.at("10.0.0.0/8") == std::vector<std::string>{"us"});
  CHECK(cidr.at("2001:db8::/32") == std::vector<std::string>{"eu"});
  CHECK(cfg->protocol.nsid == "ns1");
  for (const std::string& bad : {std::string("service[www.example.com].geo.cidr.\"10.0.0.0/8=1"),
                                 std::string("service[www.example.com].geo.\"\".x=1"),
                                 std::string("service[www.example.com].geo.\"cidr\"x=1")}) {
    INFO(bad);
    auto r = load(dir, kTwoRegions, {bad});
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::StartsWith("--set"));
  }
}

TEST_CASE("meridian --help lists every configuration key", "[config]") {
  const std::string help = app::configKeysHelp();
  // Every key loadConfig accepts (app/config.cc), section by section.
  for (const char* key : {"server.listen",
                          "server.threads",
                          "server.udp_max_payload",
                          "server.nsid",
                          "server.cookie_secret",
                          "server.tcp_idle_timeout_ms",
                          "server.tcp_max_connections",
                          "control.socket",
                          "log.level",
                          "[[zone]] name, file",
                          "database",
                          "asn_database",
                          "ecs_trusted",
                          "use_registered_country",
                          "[lists]",
                          "[[region]] name, latitude, longitude, bias_km",
                          "check.type",
                          "port",
                          "path",
                          "host",
                          "expect_status",
                          "expect_body",
                          "verify_tls",
                          "qname",
                          "qtype",
                          "interval_ms",
                          "timeout_ms",
                          "rise",
                          "fall",
                          "[[service]] name",
                          "ttl",
                          "policy",
                          "first_n",
                          "when_all_down",
                          "service.weighted_prefix_v6",
                          "[service.geo] default, continent, country, subdivision, cidr, asn",
                          "[[service.pool]] region, check, endpoints",
                          "address",
                          "cname",
                          "weight"}) {
    INFO(key);
    CHECK_THAT(help, Catch::Contains(key));
  }
}

TEST_CASE("a listen address given twice is refused", "[config]") {
  TempDir dir;
  auto r =
      load(dir, "[server]\nlisten = [\"127.0.0.1:5300\", \"[::1]:5300\", \"127.0.0.1:5300\"]\n");
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message, Catch::Contains("127.0.0.1:5300 is listed twice"));
  app::CommandLine cmd;
  cmd.listen = {"[::1]:5300", "[0:0::1]:5300"};
  r = app::loadConfig(cmd);
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message, Catch::Contains("--listen"));
  // Port 0 twice: two ports the kernel picks; the same port on two addresses: fine.
  cmd.listen = {"127.0.0.1:0", "127.0.0.1:0", "127.0.0.2:5300", "127.0.0.1:5300"};
  CHECK(app::loadConfig(cmd).has_value());
}

TEST_CASE("health slots and labels use an address's canonical text", "[config]") {
  TempDir dir;
  auto cfg = load(dir, R"(
[[region]]
name = "eu"

[[check]]
name = "web"
type = "tcp"

[[service]]
name = "www.example.com"
policy = ["up"]

[[service.pool]]
region = "eu"
endpoints = [{ address = "2001:DB8:0:0::10", check = "web" }, { address = "2001:db8::10", check = "web" },
             "2001:0db8::20"]
)");
  REQUIRE(cfg.has_value());
  auto c =
      georoute::compileSteering(cfg->steering, server::zoneLocator(exampleZones(dir)), nullptr);
  REQUIRE(c.has_value());
  std::vector<std::string> labels, addresses;
  for (const auto& t : c->targets) {
    labels.push_back(t.label);
    addresses.push_back(t.address);
  }
  // Two spellings of one address and check share one probed slot.
  CHECK(labels == std::vector<std::string>{"2001:db8::10 (web)", "eu/2001:db8::20"});
  CHECK(addresses == std::vector<std::string>{"2001:db8::10", "2001:db8::20"});
  CHECK(georoute::canonicalAddress("2001:0DB8::0:1") == "2001:db8::1");
  CHECK(georoute::canonicalAddress("192.0.2.1") == "192.0.2.1");
  CHECK(georoute::canonicalAddress("eu/edge.example.net.") == "eu/edge.example.net.");
}
