// ECS scope widening (RFC 7871 §7.2.1): neighbouring networks that get the same answer share one
// scope, computed over the database's tree. Uses a database built with the mmdb writer.
// (mmdb_writer.h comes before catch.hpp: Catch 2 and <optional>'s operator<=> do not mix in C++20.)
#include "server/steering_zones.h"
#include "tools/mmdb_writer.h"
// clang-format off
#include <catch2/catch.hpp>
// clang-format on

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <random>

#include "../testutil.h"
#include "dns/wire.h"
#include "georoute/compile.h"
#include "georoute/policy.h"
#include "steering_fixture.h"
#include "zones/loader.h"

using namespace meridian;

namespace {

tools::MmdbNetwork net(const char* addr, unsigned prefix, const char* country,
                       const char* continent) {
  tools::MmdbNetwork n;
  n.address = boost::asio::ip::make_address(addr);
  n.prefix = prefix;
  n.record.country_iso = country;
  n.record.continent_code = continent;
  return n;
}

}  // namespace

TEST_CASE("the scope covers neighbouring networks with the same answer, and no others", "[scope]") {
  const auto dir = std::filesystem::temp_directory_path() / "meridian-scope-test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "map.mmdb").string();
  tools::MmdbWriter writer;
  // 10.0.0.0/24 and 10.0.1.0/24: both GB (same answer) -> one /23.
  REQUIRE_OK(writer.add(net("10.0.0.0", 24, "GB", "EU")));
  REQUIRE_OK(writer.add(net("10.0.1.0", 24, "FR", "EU")));
  // 10.0.2.0/24 US, 10.0.3.0/24 unmapped (default is us too, but the map says so by default).
  REQUIRE_OK(writer.add(net("10.0.2.0", 24, "US", "NA")));
  // 10.0.4.0/24 JP: a different answer right next door.
  REQUIRE_OK(writer.add(net("10.0.4.0", 24, "JP", "AS")));
  REQUIRE_OK(writer.write(path));

  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nwww A 192.0.2.1\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  georoute::SteeringConfig cfg;
  cfg.geoip = path;
  cfg.regions = {{"eu", 50, 8, 0}, {"us", 39, -77, 0}, {"ap", 35, 139, 0}};
  georoute::ServiceConfig s;
  s.name = "www.example.com";
  s.policy = {"geo", "first_n"};
  s.geo.default_list = {"us"};
  s.geo.continent = {{"EU", {"eu"}}, {"AS", {"ap"}}};
  for (const auto& [region, addr] : std::vector<std::pair<std::string, std::string>>{
           {"eu", "198.51.100.1"}, {"us", "198.51.100.2"}, {"ap", "198.51.100.3"}}) {
    s.pools.push_back(test::pool(region, addr));
  }
  cfg.services.push_back(s);
  auto compiled = georoute::loadSteering(cfg, server::zoneLocator(zs));
  REQUIRE_OK(compiled);
  const auto& set = *compiled->services;
  healthcheck::StateTable health;
  auto ask = [&](const char* ip) {
    georoute::Client c;
    REQUIRE(inet_pton(AF_INET, ip, c.address) == 1);
    c.source_prefix = 32;
    return georoute::decide(set, set.services[0], 1, c, health);
  };
  // GB and FR both map to eu through the continent: the two /24s merge into 10.0.0.0/23.
  auto d = ask("10.0.0.7");
  CHECK(d.chosen[0]->label == "eu/198.51.100.1");
  CHECK(d.scope == 23);
  CHECK(ask("10.0.1.200").scope == 23);
  // US (default list) and the unmapped 10.0.3.0/24 (default list) give the same answer: /23.
  d = ask("10.0.2.1");
  CHECK(d.chosen[0]->label == "us/198.51.100.2");
  CHECK(d.scope == 23);
  d = ask("10.0.3.1");
  CHECK(d.chosen[0]->label == "us/198.51.100.2");
  CHECK(d.scope == 23);
  // JP next door is ap: its own /24, and its neighbour 10.0.5.0/24 (unmapped -> us) stays apart.
  d = ask("10.0.4.9");
  CHECK(d.chosen[0]->label == "ap/198.51.100.3");
  CHECK(d.scope == 24);
  // Far away, unmapped: a wide block, but never /0.
  d = ask("192.0.2.1");
  CHECK(d.chosen[0]->label == "us/198.51.100.2");
  CHECK(d.scope >= 1);
  CHECK(d.scope <= 8);
  std::filesystem::remove_all(dir);
}

namespace {

// A generated database for the equivalence test: nested random IPv4 networks in a few /8s and
// IPv6 networks in two /16s, with every field the steering reads (meridian_region, also one the
// configuration does not know, country with subdivisions, registered_country alone, continent,
// coordinates or none, ASN or none) drawn at random.
struct Generated {
  std::vector<tools::MmdbNetwork> networks;
};

Generated generate(std::mt19937_64& rng) {
  struct Country {
    const char* iso;
    const char* continent;
    double lat, lon;
    std::vector<std::vector<std::string>> subdivisions;  // choices, most general first
  };
  const std::vector<Country> countries = {
      {"GB", "EU", 54, -2, {{"ENG"}, {"ENG", "WBK"}, {"SCT"}, {}}},
      {"FR", "EU", 46.6, 2.2, {{}}},
      {"DE", "EU", 51.2, 10.4, {{"BY"}, {}}},
      {"US", "NA", 39.8, -98.6, {{"CA"}, {"NY"}, {}}},
      {"JP", "AS", 36.2, 138.3, {{}}},
      {"BR", "SA", -14.2, -51.9, {{}}},
      {"AU", "OC", -25.3, 133.8, {{}}},
  };
  const char* const regions[] = {"eu", "us", "ap", "sa", "edge", "mars", ""};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto chance = [&](unsigned percent) { return rng() % 100 < percent; };
  auto record = [&]() {
    tools::MmdbRecord r;
    r.region = regions[pick(std::size(regions))];
    if (!chance(85)) r.region.clear();
    const Country& c = countries[pick(countries.size())];
    if (chance(85)) {
      r.country_iso = c.iso;
      r.subdivisions = c.subdivisions[pick(c.subdivisions.size())];
    } else if (chance(50)) {
      r.registered_country_iso = c.iso;
    }
    if (chance(90)) r.continent_code = c.continent;
    if (chance(85)) {
      r.latitude = c.lat + static_cast<double>(pick(2000)) / 100.0 - 10;
      r.longitude = c.lon + static_cast<double>(pick(2000)) / 100.0 - 10;
    }
    if (chance(50)) r.asn = 64500 + static_cast<uint32_t>(pick(8));
    return r;
  };
  Generated g;
  // Shorter prefixes first: a later, longer network carves an exception out of an earlier one.
  const uint32_t slash8[] = {10, 81, 203};
  for (unsigned prefix = 12; prefix <= 32; ++prefix) {
    const size_t count = prefix < 16 ? 4 : prefix <= 24 ? 60 : 20;
    for (size_t i = 0; i < count; ++i) {
      uint32_t a = (slash8[pick(3)] << 24) | static_cast<uint32_t>(rng() & 0xFFFFFF);
      a &= prefix == 0 ? 0u : ~0u << (32 - prefix);
      tools::MmdbNetwork n;
      n.address = boost::asio::ip::make_address_v4(a);
      n.prefix = prefix;
      n.record = record();
      g.networks.push_back(std::move(n));
    }
  }
  const uint16_t slash16[] = {0x2001, 0x2a02};
  for (unsigned prefix = 20; prefix <= 64; prefix += 4) {
    for (size_t i = 0; i < 25; ++i) {
      boost::asio::ip::address_v6::bytes_type b{};
      const uint16_t top = slash16[pick(2)];
      b[0] = static_cast<uint8_t>(top >> 8);
      b[1] = static_cast<uint8_t>(top & 0xFF);
      for (size_t k = 2; k < 16; ++k) b[k] = static_cast<uint8_t>(rng());
      for (unsigned bit = prefix; bit < 128; ++bit)
        b[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
      tools::MmdbNetwork n;
      n.address = boost::asio::ip::make_address_v6(b);
      n.prefix = prefix;
      n.record = record();
      g.networks.push_back(std::move(n));
    }
  }
  return g;
}

// The services under test, each compiled from the same database: every filter that reads the
// location, every map level, CIDR entries, a region listed by the database that a service has no
// pool in, and two regions at the same place (`edge` and `eu`: equal distances, so `nearest`
// keeps whichever comes first among the candidates, also after `weighted` reordered them).
georoute::SteeringConfig equivalenceConfig(const std::string& db, bool registered_country) {
  georoute::SteeringConfig cfg;
  cfg.geoip = db;
  cfg.use_registered_country = registered_country;
  cfg.regions = {{"eu", 50.11, 8.68, 0},
                 {"us", 39.04, -77.49, 0},
                 {"ap", 1.35, 103.82, -800},
                 {"sa", -23.55, -46.63, 300},
                 {"edge", 50.11, 8.68, 0}};
  auto service = [&](const std::string& name, std::vector<std::string> policy,
                     const std::vector<std::string>& regions) {
    georoute::ServiceConfig s;
    s.name = name + ".example.com";
    s.where = "test";
    s.policy = std::move(policy);
    s.first_n = 2;
    for (size_t i = 0; i < regions.size(); ++i) {
      auto p = test::pool(regions[i], "198.51.100." + std::to_string(10 * (i + 1)));
      p.endpoints.push_back(p.endpoints[0]);
      p.endpoints.back().address = "198.51.100." + std::to_string(10 * (i + 1) + 1);
      p.endpoints.push_back(p.endpoints[0]);
      p.endpoints.back().address = "2001:db8::" + std::to_string(i + 1);
      s.pools.push_back(p);
    }
    return s;
  };
  const std::vector<std::string> all = {"eu", "us", "ap", "sa", "edge"};
  georoute::GeoMapConfig full;
  full.default_list = {"us"};
  full.continent = {{"EU", {"eu", "us"}}, {"AS", {"ap"}}, {"SA", {"sa", "us"}}};
  full.country = {{"GB", {"edge", "eu"}}, {"FR", {"eu"}}, {"JP", {"us"}}};
  full.subdivision = {{"GB-WBK", {"ap"}}, {"GB-ENG", {"eu"}}, {"US-CA", {"ap", "us"}}};
  full.asn = {{"64501", {"sa"}}, {"AS64502", {"us", "eu"}}};
  full.cidr = {{"10.1.0.0/16", {"sa"}}, {"81.7.0.0/24", {"eu"}}, {"2001:db8:1::/48", {"ap"}}};

  auto a = service("a", {"up", "geo", "nearest"}, all);
  a.geo = full;
  cfg.services.push_back(a);
  auto b = service("b", {"up", "geo", "weighted", "first_n"}, {"eu", "us", "ap"});
  b.geo.continent = {{"EU", {"eu"}}, {"NA", {"us"}}};  // no default: kNoId keeps all
  b.geo.country = {{"BR", {"sa", "ap"}}};              // sa: no pool in this service
  cfg.services.push_back(b);
  cfg.services.push_back(service("c", {"up", "nearest", "first_n"}, all));
  auto d = service("d", {"geo", "first_n"}, {"eu", "us", "sa"});
  d.geo.country = {{"US", {"us"}}, {"FR", {"sa"}}};
  d.geo.default_list = {"eu"};
  d.geo.cidr = {{"203.0.0.0/9", {"us"}}};
  d.pools[2].endpoints = {d.pools[2].endpoints[0]};
  d.pools[2].endpoints[0].address.clear();
  d.pools[2].endpoints[0].cname = "sa.cdn.example.net.";
  cfg.services.push_back(d);
  auto e = service("e", {"up", "weighted", "nearest"}, all);
  e.when_all_down = "nodata";
  cfg.services.push_back(e);
  auto f = service("f", {"up", "geo", "nearest", "first_n"}, {"eu", "edge", "ap"});
  f.geo = full;
  f.geo.cidr.clear();
  f.geo.asn.clear();
  f.geo.subdivision.clear();
  f.geo.country.clear();
  f.geo.continent = {{"EU", {"edge"}}};
  f.geo.default_list.clear();
  cfg.services.push_back(f);
  return cfg;
}

std::string show(const georoute::Decision& d) {
  std::string out = std::to_string(static_cast<int>(d.kind)) + " /" + std::to_string(d.scope);
  for (uint16_t i = 0; i < d.count; ++i) out += " " + d.chosen[i]->label;
  return out;
}

std::string showClient(const georoute::Client& c) {
  char text[64];
  inet_ntop(c.ipv6 ? AF_INET6 : AF_INET, c.address, text, sizeof text);
  return std::string(text) + "/" + std::to_string(c.source_prefix);
}

}  // namespace

TEST_CASE("compiled scope classes decide exactly as the database walk does", "[scope][compiled]") {
  const bool registered_country = GENERATE(false, true);
  const auto dir = std::filesystem::temp_directory_path() / "meridian-scope-compiled";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "gen.mmdb").string();
  std::mt19937_64 rng(20261201);
  const Generated gen = generate(rng);
  tools::MmdbWriter writer;
  for (const auto& n : gen.networks) REQUIRE_OK(writer.add(n));
  REQUIRE_OK(writer.write(path));

  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\na A 192.0.2.1\n"
      "b A 192.0.2.1\nc A 192.0.2.1\nd A 192.0.2.1\ne A 192.0.2.1\nf A 192.0.2.1\n");
  REQUIRE_OK(z);
  zones::ZoneSet zs({z->zone});
  auto compiled =
      georoute::loadSteering(equivalenceConfig(path, registered_country), server::zoneLocator(zs));
  REQUIRE_OK(compiled);
  const georoute::ServiceSet& set = *compiled->services;
  REQUIRE(set.services.size() == 6);
  for (const auto& s : set.services) {
    INFO(s.name);
    CHECK(!s.scope_classes.empty());
    CHECK(!s.scope_v4_start.empty());
    CHECK(!s.scope_blocks_v6.empty());
  }

  // The clients: every network's first and last address and the ones just outside, every block
  // boundary of every service (start - 1, start, start + 1), random addresses in and around the
  // mapped space and anywhere (IPv6 also in the IPv4-mapped and 6to4 aliases), each with a random
  // source prefix, and the address cut to it or not.
  std::vector<georoute::Client> clients;
  auto add = [&](const uint8_t* address, bool ipv6) {
    georoute::Client c;
    c.ipv6 = ipv6;
    std::memcpy(c.address, address, ipv6 ? 16 : 4);
    const unsigned full = ipv6 ? 128 : 32;
    c.source_prefix = static_cast<uint8_t>(rng() % (full + 1));
    c.from_ecs = true;
    if (rng() % 2) {
      for (unsigned bit = c.source_prefix; bit < full; ++bit)
        c.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
    }
    clients.push_back(c);
  };
  auto addV4 = [&](uint32_t a) {
    uint8_t b[4];
    dns::writeU32(b, a);
    add(b, false);
  };
  auto addV6 = [&](std::array<uint8_t, 16> b, int delta) {
    // b + delta (delta -1, 0 or +1), wrapping like an integer.
    for (int i = 15; delta != 0 && i >= 0; --i) {
      const int v = b[static_cast<size_t>(i)] + delta;
      b[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xFF);
      if (v >= 0 && v <= 0xFF) break;
    }
    add(b.data(), true);
  };
  for (const auto& n : gen.networks) {
    if (n.address.is_v4()) {
      const uint32_t first = n.address.to_v4().to_uint();
      const uint32_t last = first | (n.prefix == 32 ? 0u : ~0u >> n.prefix);
      for (uint32_t a : {first - 1, first, first + 1, last - 1, last, last + 1}) addV4(a);
    } else {
      std::array<uint8_t, 16> first = n.address.to_v6().to_bytes();
      std::array<uint8_t, 16> last = first;
      for (unsigned bit = n.prefix; bit < 128; ++bit)
        last[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
      for (int delta : {-1, 0, 1}) {
        addV6(first, delta);
        addV6(last, delta);
      }
    }
  }
  for (int i = 0; i < 2000; ++i) {
    const uint32_t r = static_cast<uint32_t>(rng());
    addV4(i % 2 ? r : (((i % 3 == 0 ? 10u : i % 3 == 1 ? 81u : 203u) << 24) | (r & 0xFFFFFF)));
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    switch (i % 5) {
      case 0:
        b[0] = 0x20;
        b[1] = 0x01;
        break;
      case 1:
        b[0] = 0x2a;
        b[1] = 0x02;
        break;
      case 2:  // ::ffff:a.b.c.d
        std::fill(b.begin(), b.begin() + 10, 0);
        b[10] = b[11] = 0xFF;
        b[12] = i % 2 ? 10 : 81;
        break;
      case 3:  // 2002:a.b.c.d::/48 (6to4)
        b[0] = 0x20;
        b[1] = 0x02;
        b[2] = 203;
        break;
      default:
        break;
    }
    addV6(b, 0);
  }

  // Then, per service, its own block boundaries (start - 1, start, start + 1).
  const size_t common = clients.size();
  auto addBoundaries = [&](const georoute::Service& s) {
    clients.resize(common);
    for (uint32_t start : s.scope_v4_start) {
      for (uint32_t a : {start - 1, start, start + 1}) addV4(a);
    }
    for (const auto& b : s.scope_blocks_v6) {
      std::array<uint8_t, 16> a{};
      std::memcpy(a.data(), b.address, 16);
      for (int delta : {-1, 0, 1}) addV6(a, delta);
    }
  };

  // Health: all up, then endpoints down at random (each down with probability 1/3), then all down.
  healthcheck::StateTable table;
  table.targets.resize(compiled->targets.size());
  size_t compared = 0;
  for (int round = 0; round < 3; ++round) {
    for (auto& t : table.targets) t.up = round == 0 ? true : round == 2 ? false : rng() % 3 != 0;
    const healthcheck::Verdicts health(table);
    for (const auto& s : set.services) {
      addBoundaries(s);
      for (const georoute::Client& c : clients) {
        {
          const uint16_t qtype = rng() % 2 ? dns::rrtype::kA : dns::rrtype::kAAAA;
          georoute::Trace trace;
          const georoute::Decision fast = georoute::decide(set, s, qtype, c, health);
          const georoute::Decision walk = georoute::decide(set, s, qtype, c, health, &trace);
          ++compared;
          if (fast.kind != walk.kind || fast.scope != walk.scope || fast.count != walk.count ||
              fast.chosen != walk.chosen) {
            std::string why;
            for (const auto& l : trace.lines) why += l + "\n";
            INFO(s.name << " " << showClient(c) << " type " << qtype << " round " << round << "\n"
                        << why);
            REQUIRE(show(fast) == show(walk));
            FAIL("the same labels, other endpoints");
          }
        }
      }
    }
  }
  CHECK(compared > 100000);

  // The comparison sees a wrong class: give one block of `a` another class (one that answers its
  // first address differently) and the compiled path disagrees with the walk there.
  georoute::ServiceSet mutated = set;
  georoute::Service& a = mutated.services[0];
  REQUIRE(a.name == "a.example.com.");
  healthcheck::Verdicts all_up(table.targets.size());
  bool caught = false;
  for (size_t i = 0; i < a.scope_v4_start.size() && !caught; ++i) {
    georoute::Client c;
    dns::writeU32(c.address, a.scope_v4_start[i]);
    c.source_prefix = 32;
    const std::string truth = show(georoute::decide(set, set.services[0], 1, c, all_up));
    const uint32_t word = a.scope_v4_class[i];
    for (uint32_t other = 0; other < a.scope_classes.size() && !caught; ++other) {
      a.scope_v4_class[i] = (other << 8) | (word & 0xFF);
      georoute::Trace trace;
      const std::string fast = show(georoute::decide(mutated, a, 1, c, all_up));
      const std::string walk = show(georoute::decide(mutated, a, 1, c, all_up, &trace));
      CHECK(walk == truth);  // the walk reads the database, not the class
      caught = fast != walk;
    }
    a.scope_v4_class[i] = word;
  }
  CHECK(caught);
  std::filesystem::remove_all(dir);
}
