// The [rrl] section of the configuration (app/config.cc): defaults, every key, and the errors an
// operator sees for bad values.
#include <catch2/catch.hpp>
#include <fstream>

#include "app/config.h"

using namespace meridian;

namespace {

Result<app::Config> withSets(std::vector<std::string> sets) {
  app::CommandLine cmd;
  cmd.sets = std::move(sets);
  return app::loadConfig(cmd);
}

}  // namespace

TEST_CASE("[rrl]: off by default, with BIND's and Knot's defaults", "[config][rrl]") {
  auto c = withSets({});
  REQUIRE(c.has_value());
  const server::RrlSettings& s = c->protocol.rrl;
  CHECK_FALSE(s.enabled);
  CHECK(s.responses_per_second == 20);
  CHECK(s.slip == 2);
  CHECK(s.window == 4);
  CHECK(s.ipv4_prefix_length == 24);
  CHECK(s.ipv6_prefix_length == 56);
  CHECK(s.exempt.empty());
}

TEST_CASE("[rrl]: every key", "[config][rrl]") {
  auto c =
      withSets({"rrl.enabled=true", "rrl.responses_per_second=5", "rrl.slip=0", "rrl.window=10",
                "rrl.ipv4_prefix_length=32", "rrl.ipv6_prefix_length=48", "rrl.table_size=1024",
                R"(rrl.exempt_clients=["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"])"});
  REQUIRE(c.has_value());
  const server::RrlSettings& s = c->protocol.rrl;
  CHECK(s.enabled);
  CHECK(s.responses_per_second == 5);
  CHECK(s.slip == 0);
  CHECK(s.window == 10);
  CHECK(s.ipv4_prefix_length == 32);
  CHECK(s.ipv6_prefix_length == 48);
  CHECK(s.table_size == 1024);
  REQUIRE(s.exempt.size() == 3);
  const uint8_t in[4] = {192, 0, 2, 9}, out[4] = {192, 0, 3, 9}, host[4] = {198, 51, 100, 7};
  CHECK(s.exempt[0].contains(in, false));
  CHECK_FALSE(s.exempt[0].contains(out, false));
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0xff};
  CHECK(s.exempt[1].contains(v6, true));
  CHECK(s.exempt[2].prefix == 32);
  CHECK(s.exempt[2].contains(host, false));
}

TEST_CASE("[rrl]: bad values name the key", "[config][rrl]") {
  for (const auto& [set, want] : std::vector<std::pair<std::string, std::string>>{
           {"rrl.slip=11", "rrl.slip must be an integer from 0 to 10"},
           {"rrl.responses_per_second=0", "rrl.responses_per_second must be an integer from 1"},
           {"rrl.window=61", "rrl.window must be an integer from 1 to 60"},
           {"rrl.ipv4_prefix_length=33", "rrl.ipv4_prefix_length"},
           {"rrl.enabled=1", "rrl.enabled must be true or false"},
           {R"(rrl.exempt_clients=["10.0.0.0/33"])", "bad prefix length"},
           {R"(rrl.exempt_clients=["not-a-net"])", "is not an IP network"},
           {"rrl.rate_limit=5", "rrl.rate_limit: unknown key"},
       }) {
    auto c = withSets({set});
    INFO(set);
    REQUIRE_FALSE(c.has_value());
    CHECK_THAT(c.error().message, Catch::Contains(want));
  }
}
