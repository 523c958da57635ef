#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../testutil.h"
#include "zones/loader.h"

using namespace meridian;

namespace {
const char* kHead =
    "$ORIGIN example.com.\n$TTL 3600\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n"
    "@ NS ns1\nns1 A 192.0.2.1\n";
}

TEST_CASE("a valid zone loads with relative names, parentheses and unknown types") {
  auto r = zones::loadZoneText("example.com", std::string(kHead) +
                                                  "www 300 IN A 192.0.2.10\n"
                                                  "txt TXT \"a \\\"quoted\\\" string\" \"two\"\n"
                                                  "unk TYPE65280 \\# 4 0A000001\n"
                                                  "deep.ent A 192.0.2.20\n");
  REQUIRE_OK(r);
  CHECK(r->zone->serial() == 2024010101u);
  CHECK(r->zone->recordCount() == 7);
  dns::NameBuf ent;
  REQUIRE(dns::fromText("ent.example.com.", ent));
  CHECK(r->zone->find(ent.data, ent.length) != zones::kNone);  // empty non-terminal exists
}

TEST_CASE("zone errors name the file and line") {
  SECTION("syntax error") {
    auto r = zones::loadZoneText("example.com", std::string(kHead) + "www A 300.1.1.1\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().message);
    CHECK(r.error().message.rfind("z.zone:6:", 0) == 0);
  }
  SECTION("CNAME beside other data") {
    auto r = zones::loadZoneText("example.com", std::string(kHead) + "w A 192.0.2.1\nw CNAME x\n",
                                 "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("CNAME") != std::string::npos);
    CHECK(r.error().message.find("z.zone:7") != std::string::npos);
  }
  SECTION("no SOA") {
    auto r = zones::loadZoneText("example.com", "$ORIGIN example.com.\n@ 3600 NS ns1\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("no SOA") != std::string::npos);
  }
  SECTION("no NS") {
    auto r = zones::loadZoneText("example.com",
                                 "$ORIGIN example.com.\n@ 3600 SOA ns1 h 1 2 3 4 5\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("no NS") != std::string::npos);
  }
}

TEST_CASE("out-of-zone data is dropped with a warning") {
  auto r = zones::loadZoneText("example.com", std::string(kHead) + "www.example.net. A 192.0.2.1\n",
                               "z.zone");
  REQUIRE_OK(r);
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0].find("outside zone") != std::string::npos);
  CHECK(r->zone->recordCount() == 3);
}

TEST_CASE("$INCLUDE is read relative to the including file") {
  const auto dir = std::filesystem::temp_directory_path() / "meridian-loader-test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "main.zone")
        << kHead << "$INCLUDE \"inc.zone\" sub.example.com.\nafter A 192.0.2.3\n";
    std::ofstream(dir / "inc.zone") << "host A 192.0.2.2\n";
  }
  auto r = zones::loadZoneFile("example.com", (dir / "main.zone").string());
  REQUIRE_OK(r);
  dns::NameBuf host, after;
  REQUIRE(dns::fromText("host.sub.example.com.", host));
  REQUIRE(dns::fromText("after.example.com.", after));
  CHECK(r->zone->find(host.data, host.length) != zones::kNone);
  CHECK(r->zone->find(after.data, after.length) != zones::kNone);
  std::filesystem::remove_all(dir);
}
