#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "../testutil.h"
#include "georoute/geoip.h"

using namespace meridian;
using namespace meridian::georoute;

namespace {
const std::string kGeo = std::string(MERIDIAN_SHARED_DIR) + "/geoip/";

GeoResult find(const GeoDatabase& db, const char* text) {
  uint8_t a[16];
  const bool v6 = std::string(text).find(':') != std::string::npos;
  REQUIRE(inet_pton(v6 ? AF_INET6 : AF_INET, text, a) == 1);
  return db.lookup(a, v6);
}
}  // namespace

TEST_CASE("GeoIP2 City test database: countries, continents, prefixes", "[geoip]") {
  auto db = GeoDatabase::open(kGeo + "GeoIP2-City-Test.mmdb");
  REQUIRE_OK(db);
  const GeoDatabase& g = **db;
  auto r = find(g, "81.2.69.142");
  REQUIRE(r.found);
  CHECK(unpackCode(r.location->country) == "GB");
  CHECK(unpackCode(r.location->continent) == "EU");
  CHECK(r.location->has_coords);
  CHECK(r.prefix == 31);  // source-data: ::81.2.69.142/127
  r = find(g, "216.160.83.56");
  REQUIRE(r.found);
  CHECK(unpackCode(r.location->country) == "US");
  CHECK(unpackCode(r.location->continent) == "NA");
  r = find(g, "175.16.199.0");
  REQUIRE(r.found);
  CHECK(unpackCode(r.location->country) == "CN");
  r = find(g, "2001:218::1");
  REQUIRE(r.found);
  CHECK(unpackCode(r.location->country) == "JP");
  r = find(g, "10.1.2.3");
  CHECK_FALSE(r.found);
  CHECK(r.prefix > 0);  // an unmapped client still gets the prefix of its empty network
}

TEST_CASE("corrupt GeoIP databases are refused with a reason", "[geoip]") {
  int refused = 0;
  int total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kGeo + "bad-data")) {
    ++total;
    auto db = GeoDatabase::open(entry.path().string());
    if (!db) {
      ++refused;
      CHECK(db.error().message.find(entry.path().string()) == 0);
    } else {
      // Whatever opens must still answer lookups without crashing.
      (void)find(**db, "81.2.69.142");
      (void)find(**db, "2001:db8::1");
      WARN("opened (considered valid): " << entry.path().filename().string());
    }
  }
  CHECK(total > 10);
  CHECK(refused >= total - 4);
  auto missing = GeoDatabase::open(kGeo + "does-not-exist.mmdb");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("cannot open") != std::string::npos);
}

TEST_CASE("an open database is a private copy: rewriting the file in place changes nothing",
          "[geoip]") {
  const auto dir = std::filesystem::temp_directory_path() / "meridian-geoip-copy";
  std::filesystem::create_directories(dir);
  const auto path = dir / "city.mmdb";
  std::filesystem::copy_file(kGeo + "GeoIP2-City-Test.mmdb", path,
                             std::filesystem::copy_options::overwrite_existing);
  auto db = GeoDatabase::open(path.string());
  REQUIRE_OK(db);
  // Truncate and rewrite the same inode with another database, as `cp` does.
  std::filesystem::resize_file(path, 0);
  std::filesystem::copy_file(kGeo + "GeoLite2-ASN-Test.mmdb", path,
                             std::filesystem::copy_options::overwrite_existing);
  auto r = find(**db, "81.2.69.142");
  REQUIRE(r.found);
  CHECK(unpackCode(r.location->country) == "GB");
  std::filesystem::resize_file(path, 0);
  auto empty = GeoDatabase::open(path.string());
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message.find("city.mmdb") != std::string::npos);
  std::filesystem::remove_all(dir);
}

namespace {

// A MaxMind DB whose search tree is a chain of `n` nodes that each point both ways at the next one
// (a DAG: 2^(n-1) paths through n nodes), IPv4, 24-bit records. The last node maps its left half
// to one data record (an empty map) and leaves its right half empty. libmaxminddb and open()
// accept it: every node is well-formed and reachable, and no path is longer than 32 bits.
std::string sharedChainDb(uint32_t n) {
  std::string f;
  auto rec24 = [&](uint32_t v) {
    f.push_back(static_cast<char>(v >> 16));
    f.push_back(static_cast<char>(v >> 8));
    f.push_back(static_cast<char>(v));
  };
  for (uint32_t i = 0; i + 1 < n; ++i) {
    rec24(i + 1);
    rec24(i + 1);
  }
  rec24(n + 16);  // data section offset 0
  rec24(n);       // empty
  f.append(16, '\0');
  f.push_back(static_cast<char>(0xE0));  // the data record: an empty map
  f += "\xAB\xCD\xEFMaxMind.com";
  auto key = [&](const std::string& k) {
    f.push_back(static_cast<char>(0x40 | k.size()));
    f += k;
  };
  f.push_back(static_cast<char>(0xE0 | 9));  // metadata: a map of 9 pairs
  key("node_count");
  f.push_back(static_cast<char>(0xC4));  // uint32, 4 octets
  f.push_back(static_cast<char>(n >> 24));
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  key("record_size");
  f += "\xA1\x18";  // uint16 24
  key("ip_version");
  f += "\xA1\x04";
  key("binary_format_major_version");
  f += "\xA1\x02";
  key("binary_format_minor_version");
  f += std::string("\xA0", 1);
  key("build_epoch");
  f += std::string("\x04\x02\x65\x53\xF1\x00", 6);  // uint64 (extended type 9)
  key("database_type");
  key("Shared-Chain");
  key("languages");
  f += std::string("\x00\x04", 2);  // empty array (extended type 11)
  key("description");
  f.push_back(static_cast<char>(0xE0));
  return f;
}

}  // namespace

// fuzz_mmdb: a tree whose nodes share subtrees made aggregate() walk every path (2^19 visits and
// 2^20 blocks here; a 128-node chain would never end), on the control thread that compiles
// steering. The walk now stops after a few visits per node and leaves the ECS scope to the lookup.
TEST_CASE("aggregate gives up on a tree that shares its subtrees, lookups still work", "[geoip]") {
  const auto path = std::filesystem::temp_directory_path() / "meridian-shared-chain.mmdb";
  {
    const std::string bytes = sharedChainDb(20);
    FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
    std::fclose(f);
  }
  auto db = GeoDatabase::open(path.string());
  std::filesystem::remove(path);
  REQUIRE_OK(db);
  const auto hit = find(**db, "0.0.0.1");  // the 20th bit clear: left at the last node
  CHECK(hit.found);
  CHECK(hit.prefix == 20);
  CHECK(find(**db, "85.85.64.0").found);      // any 19 bits, then left
  CHECK_FALSE(find(**db, "0.0.16.0").found);  // the 20th bit set: the empty right half
  const auto blocks =
      (*db)->aggregate(false, [](int32_t i) { return static_cast<uint32_t>(i + 1); });
  CHECK(blocks.empty());

  // A real database, whose IPv4 subtree is aliased several times, is still aggregated.
  auto city = GeoDatabase::open(kGeo + "GeoIP2-City-Test.mmdb");
  REQUIRE_OK(city);
  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    CHECK((*city)->aggregate(v6, [](int32_t i) { return static_cast<uint32_t>(i + 1); }).size() >
          10);
  }
}
