// Root hints: Debian's file reads; bad lines are errors with file:line.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "resolver/root_hints.h"

using meridian::resolver::loadRootHints;
using meridian::resolver::parseRootHints;

TEST_CASE("root hints: the zone-file syntax of root.hints", "[resolver][hints]") {
  const char* text =
      ";       This file holds the information on root name servers\n"
      ".                        3600000      NS    A.ROOT-SERVERS.NET.\n"
      "A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4\n"
      "A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30\n"
      ".                        3600000 IN   NS    b.root-servers.net.\n"
      "b.root-servers.net.      IN 3600000   A     170.247.170.2\n"
      "unlisted.example.        3600000      A     192.0.2.1\n";
  auto v4 = parseRootHints(text, "hints", false);
  REQUIRE(v4.has_value());
  REQUIRE(v4->size() == 2);  // the unlisted name's address is not a root server's
  CHECK(v4->at(0).text() == "198.41.0.4");
  CHECK(v4->at(1).text() == "170.247.170.2");
  auto both = parseRootHints(text, "hints", true);
  REQUIRE(both.has_value());
  CHECK(both->size() == 3);
}

TEST_CASE("root hints: errors name the line; Debian's file loads", "[resolver][hints]") {
  auto bad = parseRootHints(". NS a.root.\na.root. A 300.1.1.1\n", "h", false);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message == "h:2: '300.1.1.1' is not an IPv4 address");
  auto mx = parseRootHints(". MX 10 mail.\n", "h", false);
  REQUIRE_FALSE(mx.has_value());
  CHECK(mx.error().message.find("h:1: record type MX") == 0);
  auto ns = parseRootHints("com. NS a.gtld.\n", "h", false);
  REQUIRE_FALSE(ns.has_value());
  CHECK(ns.error().message.find("not the root") != std::string::npos);
  auto none = parseRootHints("; nothing\n", "h", false);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().message.find("no address of a root name server") != std::string::npos);
  auto missing = loadRootHints("/nonexistent/root.hints", false);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("/nonexistent/root.hints") != std::string::npos);
  // scripts/deps.sh installs dns-root-data.
  auto debian = loadRootHints(meridian::resolver::kDefaultRootHints, false);
  REQUIRE(debian.has_value());
  CHECK(debian->size() == 13);
}
