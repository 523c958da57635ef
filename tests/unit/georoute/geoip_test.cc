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
