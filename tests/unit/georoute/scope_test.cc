// ECS scope widening (RFC 7871 §7.2.1): neighbouring networks that get the same answer share one
// scope, computed over the database's tree. Uses a database built with the mmdb writer.
// (mmdb_writer.h comes before catch.hpp: Catch 2 and <optional>'s operator<=> do not mix in C++20.)
#include "tools/mmdb_writer.h"
// clang-format off
#include <catch2/catch.hpp>
// clang-format on

#include <arpa/inet.h>

#include <filesystem>

#include "../testutil.h"
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
  auto compiled = georoute::loadSteering(cfg, zs);
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
