// The geo map as operators write it: the ECS scope never covers a geo.cidr entry the client is not
// in (one rule for every decision path), region lists compared by content, the continent ->
// country -> subdivision hierarchy with case-insensitive codes and warnings, registered_country
// only when asked, and named [lists]. Databases are the MaxMind City test data or built here with
// the mmdb writer.
// (mmdb_writer.h comes before catch.hpp: Catch 2 and <optional>'s operator<=> do not mix in C++20.)
#include "server/steering_zones.h"
#include "tools/mmdb_writer.h"
// clang-format off
#include <catch2/catch.hpp>
// clang-format on

#include <arpa/inet.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "../testutil.h"
#include "app/config.h"
#include "georoute/compile.h"
#include "georoute/policy.h"
#include "steering_fixture.h"
#include "zones/loader.h"

using namespace meridian;
using georoute::Decision;

namespace {

const std::string kGeo = std::string(MERIDIAN_SHARED_DIR) + "/geoip/";

std::filesystem::path tempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("meridian-geomap-" + name);
  std::filesystem::create_directories(dir);
  return dir;
}

zones::ZoneSet zoneSet() {
  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.1\n");
  REQUIRE_OK(z);
  return zones::ZoneSet({z->zone});
}

// One service www.example.com with one endpoint per region (198.51.100.1, .2, ... in order).
struct Setup {
  georoute::SteeringConfig cfg;
  georoute::ServiceConfig& service() { return cfg.services.at(0); }
  explicit Setup(const std::vector<std::string>& regions) {
    for (size_t i = 0; i < regions.size(); ++i)
      cfg.regions.push_back({regions[i], 10.0 * static_cast<double>(i), 0, 0});
    georoute::ServiceConfig s;
    s.name = "www.example.com";
    s.where = "test";
    s.policy = {"geo", "first_n"};
    for (size_t i = 0; i < regions.size(); ++i)
      s.pools.push_back(test::pool(regions[i], "198.51.100." + std::to_string(i + 1)));
    cfg.services.push_back(s);
  }
};

struct Compiled {
  zones::ZoneSet zones = zoneSet();
  georoute::CompiledSteering c;
  healthcheck::StateTable health;

  Compiled(const georoute::SteeringConfig& cfg, const std::string& db_path) {
    std::shared_ptr<const georoute::GeoDatabase> db;
    if (!db_path.empty()) {
      auto opened = georoute::GeoDatabase::open(db_path);
      REQUIRE_OK(opened);
      db = *opened;
    }
    auto r = georoute::compileSteering(cfg, server::zoneLocator(zones), db);
    REQUIRE_OK(r);
    c = *r;
    health.targets.resize(c.targets.size());
  }
  const georoute::Service& service() const { return c.services->services.at(0); }
  Decision ask(const std::string& client, georoute::Trace* trace = nullptr) const {
    auto cidr = georoute::parseCidr(client);
    REQUIRE_OK(cidr);
    georoute::Client cl;
    cl.ipv6 = cidr->ipv6;
    std::memcpy(cl.address, cidr->address, 16);
    cl.source_prefix = cidr->prefix;
    cl.from_ecs = true;
    return georoute::decide(*c.services, service(), 1, cl, health, trace);
  }
  std::string region(const std::string& client) const {
    const Decision d = ask(client);
    if (d.count == 0) return "(none)";
    const std::string& label = d.chosen[0]->label;
    return label.substr(0, label.find('/'));
  }
};

// Does the block (client address, scope) overlap the CIDR entry `net`? A cached answer for that
// block would reach the entry's clients.
bool covers(const std::string& client, unsigned scope, const std::string& net) {
  auto a = georoute::parseCidr(client);
  auto c = georoute::parseCidr(net);
  REQUIRE_OK(a);
  REQUIRE_OK(c);
  if (a->ipv6 != c->ipv6) return false;
  const unsigned bits = std::min<unsigned>(scope, c->prefix);
  for (unsigned i = 0; i < bits; ++i) {
    const int x = (a->address[i / 8] >> (7 - i % 8)) & 1;
    const int y = (c->address[i / 8] >> (7 - i % 8)) & 1;
    if (x != y) return false;
  }
  return true;
}

tools::MmdbNetwork net(const char* addr, unsigned prefix, tools::MmdbRecord rec) {
  tools::MmdbNetwork n;
  n.address = boost::asio::ip::make_address(addr);
  n.prefix = prefix;
  n.record = std::move(rec);
  return n;
}

}  // namespace

TEST_CASE("the ECS scope never covers a geo.cidr entry the client is not in, on every path",
          "[geomap]") {
  const auto dir = tempDir("paths");
  const std::string path = (dir / "paths.mmdb").string();
  tools::MmdbWriter w;
  tools::MmdbRecord r;
  r.region = "eu";  // database region
  REQUIRE_OK(w.add(net("10.0.0.0", 16, r)));
  r = {};
  r.asn = 64500;  // ASN (from the main database)
  r.country_iso = "US";
  r.continent_code = "NA";
  REQUIRE_OK(w.add(net("10.1.0.0", 16, r)));
  r = {};
  r.country_iso = "GB";  // subdivision
  r.continent_code = "EU";
  r.subdivisions = {"ENG"};
  REQUIRE_OK(w.add(net("10.2.0.0", 16, r)));
  r = {};
  r.country_iso = "FR";  // country
  r.continent_code = "EU";
  REQUIRE_OK(w.add(net("10.3.0.0", 16, r)));
  REQUIRE_OK(w.add(net("2001:db8::", 32, r)));
  r = {};
  r.country_iso = "DE";  // continent
  r.continent_code = "EU";
  r.latitude = 50.1;
  r.longitude = 8.7;
  REQUIRE_OK(w.add(net("10.4.0.0", 16, r)));
  // 10.5.0.0/16 and everything else: not in the database (default).
  REQUIRE_OK(w.write(path));

  Setup s({"eu", "us", "ap", "uk"});
  auto& g = s.service().geo;
  g.default_list = {"us"};
  g.asn = {{"AS64500", {"ap"}}};
  g.subdivision = {{"GB-ENG", {"uk"}}};
  g.country = {{"FR", {"us"}}};
  g.continent = {{"EU", {"eu"}}};
  // In each /16 a /32 that answers otherwise; 10.6.0.0/16 is a CIDR entry with a nested /24.
  const std::vector<std::string> foreign = {"10.0.200.1/32", "10.1.200.1/32",    "10.2.200.1/32",
                                            "10.3.200.1/32", "10.4.200.1/32",    "10.5.200.1/32",
                                            "10.6.7.0/24",   "2001:db8:0:1::/64"};
  for (const auto& f : foreign) g.cidr[f] = {"ap"};
  g.cidr["10.6.0.0/16"] = {"uk"};
  g.cidr["10.0.200.1/32"] = {"uk"};  // unlike the database region eu

  struct Case {
    const char* client;
    const char* path;
    const char* region;
  };
  const Case cases[] = {
      {"10.0.0.1/32", "database region", "eu"},
      {"10.0.0.0/24", "database region", "eu"},
      {"10.1.0.1/32", "ASN", "ap"},
      {"10.2.0.1/32", "subdivision", "uk"},
      {"10.3.0.1/32", "country", "us"},
      {"10.4.0.1/32", "continent", "eu"},
      {"10.5.0.1/32", "default", "us"},
      {"10.5.0.0/20", "default", "us"},
      {"10.6.0.1/32", "CIDR", "uk"},
      {"2001:db8::1/128", "country (IPv6)", "us"},
      {"2001:db8::/48", "country (IPv6)", "us"},
  };
  auto checkAll = [&](const Compiled& c, bool check_region) {
    for (const Case& k : cases) {
      const Decision d = c.ask(k.client);
      INFO(k.path << " " << k.client << ": scope /" << int(d.scope));
      if (check_region) CHECK(c.region(k.client) == k.region);
      CHECK(d.scope > 0);
      for (const auto& f : foreign) {
        INFO("entry " << f);
        CHECK_FALSE(covers(k.client, d.scope, f));
      }
    }
  };
  SECTION("geo") {
    Compiled c(s.cfg, path);
    checkAll(c, true);
    // Exact figures: the first bit where the client leaves the entry, plus one.
    CHECK(c.ask("10.0.0.1/32").scope == 17);    // 10.0.0.0/17 leaves 10.0.200.1 out
    CHECK(c.ask("10.6.0.1/32").scope == 22);    // 10.6.0.0/22 leaves 10.6.7.0/24 out
    CHECK(c.ask("2001:db8::/48").scope == 64);  // 2001:db8::/64 leaves 2001:db8:0:1::/64 out
  }
  SECTION("geo, then nearest") {
    s.service().policy = {"geo", "nearest", "first_n"};
    checkAll(Compiled(s.cfg, path), true);
  }
  SECTION("nearest, then geo") {
    s.service().policy = {"nearest", "geo", "first_n"};
    checkAll(Compiled(s.cfg, path), false);  // 10.4/16 has coordinates: nearest keeps uk
  }
  SECTION("geo, then weighted; weighted, then geo") {
    s.service().policy = {"geo", "weighted", "first_n"};
    s.service().weighted_prefix_v4 = 8;
    checkAll(Compiled(s.cfg, path), true);
    s.service().policy = {"weighted", "geo", "first_n"};
    checkAll(Compiled(s.cfg, path), true);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("the ECS scope leaves out CIDR entries also with a separate ASN database", "[geomap]") {
  Setup s({"eu", "us", "ap"});
  auto& g = s.service().geo;
  g.default_list = {"us"};
  g.asn = {{"1221", {"ap"}}};
  g.cidr = {{"1.128.0.200/32", {"eu"}}};
  auto city = georoute::GeoDatabase::open(kGeo + "GeoIP2-City-Test.mmdb");
  auto asn = georoute::GeoDatabase::open(kGeo + "GeoLite2-ASN-Test.mmdb");
  REQUIRE_OK(city);
  REQUIRE_OK(asn);
  auto zs = zoneSet();
  auto c = georoute::compileSteering(s.cfg, server::zoneLocator(zs), *city, *asn);
  REQUIRE_OK(c);
  healthcheck::StateTable health;
  georoute::Client cl;
  cl.source_prefix = 32;
  const uint8_t telstra[4] = {1, 128, 0, 1};  // AS1221 in GeoLite2-ASN-Test
  std::memcpy(cl.address, telstra, 4);
  const Decision d = georoute::decide(*c->services, c->services->services[0], 1, cl, health);
  REQUIRE(d.count == 1);
  CHECK(d.chosen[0]->label == "ap/198.51.100.3");
  CHECK_FALSE(covers("1.128.0.1/32", d.scope, "1.128.0.200/32"));
  CHECK(d.scope == 25);
}

TEST_CASE("equal region lists are one list: RU mapped like the default shares its scope",
          "[geomap]") {
  // default [global], EU [eu], RU [global]: RU answers like the unmapped space around it, so the
  // scope spans the whole block with that answer. Figures from gdnsd 3.8 (gdnsd_geoip_test with
  // map { default => [global], EU => { default => [eu], RU => [global] } }).
  Setup s({"global", "eu"});
  auto& g = s.service().geo;
  g.default_list = {"global"};
  g.continent = {{"EU", {"eu"}}};
  g.country = {{"RU", {"global"}}};
  Compiled c(s.cfg, kGeo + "GeoIP2-City-Test.mmdb");
  CHECK(c.region("2a02:d840::/29") == "global");
  CHECK(c.ask("2a02:d840::/29").scope == 26);  // was /29, the RU network itself
  CHECK(c.ask("2a02:d0c0::/29").scope == 25);
  CHECK(c.ask("2a02:de00::/29").scope == 24);
  CHECK(c.ask("2a02:e620::/30").scope == 27);
  CHECK(c.region("2a02:d800::/29") == "eu");  // RO next door
  CHECK(c.service().geo.lists.size() == 2);   // [global] once, [eu]
  CHECK(c.service().geo.countries.at(0).second == c.service().geo.default_list);
}

TEST_CASE(
    "the geo map is a hierarchy: subdivisions most specific first, then country, "
    "continent, default; codes in any case",
    "[geomap]") {
  Setup s({"eu", "us", "ap", "uk", "wbk"});
  auto& g = s.service().geo;
  g.default_list = {"us"};
  g.continent = {{"eu", {"eu"}}};                // lower case
  g.country = {{"Gb", {"uk"}}, {"us", {"us"}}};  // mixed case
  g.subdivision = {{"gb-eng", {"ap"}}, {"GB-wbk", {"wbk"}}, {"US-ca", {"ap"}}};
  Compiled c(s.cfg, kGeo + "GeoIP2-City-Test.mmdb");
  CHECK(c.c.warnings.empty());
  // 2.125.160.216/29: GB, subdivisions ENG then WBK -> the deeper WBK wins.
  CHECK(c.region("2.125.160.216/32") == "wbk");
  // 81.2.69.142: GB, ENG only -> GB-ENG.
  CHECK(c.region("81.2.69.142/32") == "ap");
  // 216.160.83.56: US-WA is not listed -> the US country entry.
  CHECK(c.region("216.160.83.56/32") == "us");
  // 214.78.120.1: US-CA.
  CHECK(c.region("214.78.120.1/32") == "ap");
  // 89.160.20.112: SE, unmapped country of EU -> the EU continent entry.
  CHECK(c.region("89.160.20.112/32") == "eu");
  // 2001:218::/32: JP, continent AS unmapped -> default.
  CHECK(c.region("2001:218::/32") == "us");
  georoute::Trace t;
  (void)c.ask("2.125.160.216/32", &t);
  CHECK(std::any_of(t.lines.begin(), t.lines.end(), [](const std::string& l) {
    return l.find("subdivision GB-ENG > GB-WBK") != std::string::npos;
  }));
  CHECK(std::any_of(t.lines.begin(), t.lines.end(), [](const std::string& l) {
    return l.find("geo: subdivision GB-WBK -> region wbk") == 0;
  }));
  // Without the WBK entry the ENG entry catches WBK's networks too.
  s.service().geo.subdivision.erase("GB-wbk");
  Compiled c2(s.cfg, kGeo + "GeoIP2-City-Test.mmdb");
  CHECK(c2.region("2.125.160.216/32") == "ap");
}

TEST_CASE("geo map keys: unknown codes and malformed keys are warned, case duplicates refused",
          "[geomap]") {
  Setup s({"eu", "us"});
  auto& g = s.service().geo;
  g.default_list = {"us"};
  g.continent = {{"EU", {"eu"}}, {"XY", {"eu"}}, {"Europe", {"eu"}}};
  g.country = {{"UK", {"eu"}}, {"DE", {"eu"}}};
  g.subdivision = {{"GBENG", {"eu"}}, {"US-", {"eu"}}, {"ZZ-AB", {"eu"}}, {"US-CA", {"eu"}}};
  Compiled c(s.cfg, kGeo + "GeoIP2-City-Test.mmdb");
  auto warned = [&](const std::string& what) {
    return std::any_of(c.c.warnings.begin(), c.c.warnings.end(),
                       [&](const std::string& w) { return w.find(what) != std::string::npos; });
  };
  INFO(c.c.warnings.size() << " warnings");
  CHECK(c.c.warnings.size() == 6);
  CHECK(warned("service.geo.continent.XY: 'XY' is not a continent code"));
  CHECK(warned("service.geo.continent.Europe: 'Europe' is not a continent code"));
  CHECK(warned("service.geo.country.UK: 'UK' is not an ISO 3166-1 alpha-2 country code"));
  CHECK(warned("service.geo.subdivision.GBENG: 'GBENG' is not a subdivision key"));
  CHECK(warned("service.geo.subdivision.US-: 'US-' is not a subdivision key"));
  CHECK(warned("service.geo.subdivision.ZZ-AB: 'ZZ' is not an ISO 3166-1"));
  CHECK(c.service().geo.continents.size() == 1);

  auto dup = s.cfg;
  dup.services[0].geo.country = {{"DE", {"eu"}}, {"de", {"us"}}};
  auto zs = zoneSet();
  auto r = georoute::compileSteering(dup, server::zoneLocator(zs), nullptr);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("same place as service.geo.country.DE") != std::string::npos);
}

TEST_CASE("registered_country maps a location only with [geoip] use_registered_country",
          "[geomap]") {
  const auto dir = tempDir("registered");
  const std::string path = (dir / "registered.mmdb").string();
  tools::MmdbWriter w;
  tools::MmdbRecord r;
  r.registered_country_iso = "JP";  // e.g. an anycast or satellite network: no `country`
  REQUIRE_OK(w.add(net("10.9.0.0", 16, r)));
  r = {};
  r.country_iso = "GB";
  r.registered_country_iso = "JP";  // `country` present: registered_country never matters
  r.continent_code = "EU";
  REQUIRE_OK(w.add(net("10.10.0.0", 16, r)));
  REQUIRE_OK(w.write(path));

  Setup s({"eu", "us", "ap"});
  auto& g = s.service().geo;
  g.default_list = {"us"};
  g.country = {{"JP", {"ap"}}, {"GB", {"eu"}}};
  {
    Compiled c(s.cfg, path);
    CHECK(c.region("10.9.0.1/32") == "us");  // default: registered_country is not `country`
    CHECK(c.region("10.10.0.1/32") == "eu");
  }
  s.cfg.use_registered_country = true;
  Compiled c(s.cfg, path);
  CHECK(c.region("10.9.0.1/32") == "ap");
  CHECK(c.region("10.10.0.1/32") == "eu");
  georoute::Trace t;
  (void)c.ask("10.9.0.1/32", &t);
  CHECK(std::any_of(t.lines.begin(), t.lines.end(), [](const std::string& l) {
    return l.find("geo: registered country JP -> region ap") == 0;
  }));
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "config file: [lists], string references, use_registered_country, warnings with "
    "file:line",
    "[geomap]") {
  const auto dir = tempDir("config");
  {
    std::ofstream zf(dir / "example.com.zone");
    zf << "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.1\n"
          "api A 192.0.2.2\n";
  }
  auto write = [&](const std::string& geo_extra) {
    std::ofstream f(dir / "m.toml");
    f << "[[zone]]\n"                     // 1
         "name = \"example.com\"\n"       // 2
         "file = \"example.com.zone\"\n"  // 3
         "[geoip]\n"                      // 4
         "database = \""
      << kGeo
      << "GeoIP2-City-Test.mmdb\"\n"                                    // 5
         "use_registered_country = true\n"                              // 6
         "[[region]]\nname = \"eu\"\nlatitude = 50\nlongitude = 8\n"    // 7-10
         "[[region]]\nname = \"us\"\nlatitude = 39\nlongitude = -77\n"  // 11-14
         "[[region]]\nname = \"ap\"\nlatitude = 35\nlongitude = 139\n"  // 15-18
         "[[service]]\n"                                                // 19
         "name = \"www.example.com\"\n"                                 // 20
         "policy = [\"geo\", \"first_n\"]\n"                            // 21
         "[service.geo]\n"                                              // 22
         "default = \"us-first\"\n"                                     // 23
         "continent = { EU = \"europe-first\", as = [\"ap\"] }\n"       // 24
         "country = { UK = \"europe-first\" }\n"                        // 25
      << geo_extra <<                                                   // 26
        "[[service.pool]]\nregion = \"eu\"\nendpoints = [\"198.51.100.1\"]\n"
        "[[service.pool]]\nregion = \"us\"\nendpoints = [\"198.51.100.2\"]\n"
        "[[service.pool]]\nregion = \"ap\"\nendpoints = [\"198.51.100.3\"]\n"
        "[[service]]\n"
        "name = \"api.example.com\"\n"
        "policy = [\"geo\", \"first_n\"]\n"
        "geo.default = \"europe-first\"\n"
        "[[service.pool]]\nregion = \"eu\"\nendpoints = [\"198.51.100.1\"]\n"
        "[lists]\n"
        "europe-first = [\"eu\", \"us\"]\n"
        "us-first = [\"us\", \"eu\"]\n";
  };
  app::CommandLine cmd;
  cmd.config_file = (dir / "m.toml").string();
  auto compile = [&]() -> Result<georoute::CompiledSteering> {
    auto cfg = app::loadConfig(cmd);
    if (!cfg) return cfg.error();
    std::vector<std::shared_ptr<const zones::Zone>> zs;
    for (const auto& z : cfg->zones) {
      auto loaded = zones::loadZoneFile(z.name, z.file);
      REQUIRE_OK(loaded);
      zs.push_back(loaded->zone);
    }
    return georoute::loadSteering(cfg->steering, server::zoneLocator(zones::ZoneSet(zs)));
  };
  write("");
  auto c = compile();
  REQUIRE_OK(c);
  const auto& set = *c->services;
  REQUIRE(set.services.size() == 2);
  const georoute::Service& www =
      set.services[1].name == "www.example.com." ? set.services[1] : set.services[0];
  // The default and EU name lists; AS is inline. Equal lists share ids across the entries.
  REQUIRE(www.geo.continents.size() == 2);
  CHECK(www.geo.lists.size() == 3);
  CHECK(www.geo.lists[www.geo.default_list].regions == std::vector<uint32_t>{1, 0});
  CHECK(www.geo.use_registered_country);
  // The unknown country code UK is warned at its line.
  REQUIRE(c->warnings.size() == 1);
  CHECK(c->warnings[0].find(cmd.config_file + ":25: service.geo.country.UK") == 0);

  write("subdivision = { \"GB-ENG\" = \"no-such-list\" }\n");
  auto bad = compile();
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message ==
        cmd.config_file + ":26: service.geo.subdivision.GB-ENG: unknown list 'no-such-list'");
  write("cidr = { \"10.0.0.0/8\" = \"eu\" }\n");
  bad = compile();
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find(":26: service.geo.cidr.10.0.0.0/8: unknown list 'eu' (a list "
                                 "of regions is an array: [\"eu\"])") != std::string::npos);
  write("asn = { \"64500\" = 7 }\n");
  bad = compile();
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find(":26: service.geo.asn.64500 must be an array of regions or the "
                                 "name of a [lists] entry") != std::string::npos);
  std::filesystem::remove_all(dir);
}
