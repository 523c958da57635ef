// MmdbWriter and buildMmdbFromCsv: every database is written to a temporary file and read back
// with libmaxminddb (MMDB_open, MMDB_lookup_string, MMDB_get_value), the reader GeoDatabase uses.
#include <maxminddb.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tools/mmdb_writer.h"

namespace {

using meridian::tools::buildMmdbFromCsv;
using meridian::tools::MmdbNetwork;
using meridian::tools::MmdbRecord;
using meridian::tools::MmdbWriter;
namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "mmdb_writer_test.XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

struct Db {
  MMDB_s mmdb{};
  explicit Db(const std::string& path) {
    const int st = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &mmdb);
    INFO(MMDB_strerror(st));
    REQUIRE(st == MMDB_SUCCESS);
  }
  ~Db() { MMDB_close(&mmdb); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
};

struct Found {
  bool found = false;
  unsigned netmask = 0;  // as libmaxminddb reports it (IPv6 bits for IPv4 in an IPv6 tree)
  uint32_t offset = 0;   // data-section offset of the record
  std::optional<std::string> region, country, continent;
  std::optional<double> latitude, longitude;
  std::optional<uint32_t> asn;
};

std::optional<std::string> getString(MMDB_entry_s* e, const char* a, const char* b = nullptr) {
  MMDB_entry_data_s d{};
  if (MMDB_get_value(e, &d, a, b, nullptr) != MMDB_SUCCESS || !d.has_data) return std::nullopt;
  REQUIRE(d.type == MMDB_DATA_TYPE_UTF8_STRING);
  return std::string(d.utf8_string, d.data_size);
}

std::optional<double> getDouble(MMDB_entry_s* e, const char* a, const char* b) {
  MMDB_entry_data_s d{};
  if (MMDB_get_value(e, &d, a, b, nullptr) != MMDB_SUCCESS || !d.has_data) return std::nullopt;
  REQUIRE(d.type == MMDB_DATA_TYPE_DOUBLE);
  return d.double_value;
}

Found lookup(Db& db, const std::string& ip) {
  int gai = 0, err = 0;
  MMDB_lookup_result_s r = MMDB_lookup_string(&db.mmdb, ip.c_str(), &gai, &err);
  INFO(ip);
  REQUIRE(gai == 0);
  REQUIRE(err == MMDB_SUCCESS);
  Found f;
  f.netmask = r.netmask;
  if (!r.found_entry) return f;
  f.found = true;
  f.offset = r.entry.offset;
  // The whole record decodes (types, lengths, pointers).
  MMDB_entry_data_list_s* list = nullptr;
  REQUIRE(MMDB_get_entry_data_list(&r.entry, &list) == MMDB_SUCCESS);
  MMDB_free_entry_data_list(list);
  f.region = getString(&r.entry, "meridian_region");
  f.country = getString(&r.entry, "country", "iso_code");
  f.continent = getString(&r.entry, "continent", "code");
  f.latitude = getDouble(&r.entry, "location", "latitude");
  f.longitude = getDouble(&r.entry, "location", "longitude");
  MMDB_entry_data_s d{};
  if (MMDB_get_value(&r.entry, &d, "autonomous_system_number", nullptr) == MMDB_SUCCESS &&
      d.has_data) {
    REQUIRE(d.type == MMDB_DATA_TYPE_UINT32);
    f.asn = d.uint32;
  }
  return f;
}

MmdbNetwork net(const std::string& cidr, MmdbRecord r) {
  const auto slash = cidr.find('/');
  return MmdbNetwork{boost::asio::ip::make_address(cidr.substr(0, slash)),
                     static_cast<unsigned>(std::stoul(cidr.substr(slash + 1))), std::move(r)};
}

MmdbRecord region(const std::string& name) {
  MmdbRecord r;
  r.region = name;
  return r;
}

// Catch cannot print a Result<_, Error>; this passes the error message along instead.
template <typename T>
bool ok(const meridian::Result<T>& r) {
  if (!r) UNSCOPED_INFO(r.error().message);
  return r.has_value();
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("mmdb: records round-trip through libmaxminddb, IPv4 and IPv6", "[mmdb]") {
  TempDir dir;
  MmdbWriter w("Meridian-Test");
  w.setDescription("unit test map");
  w.setBuildEpoch(1700000000);
  MmdbRecord full{"eu-west", "GB", "EU", 51.5, -0.12, 64500};
  REQUIRE(ok(w.add(net("192.0.2.0/24", full))));
  MmdbRecord v6{"us-east", "US", "NA", 38.9, -77.03, 4200000000u};
  REQUIRE(ok(w.add(net("2001:db8::/32", v6))));
  MmdbRecord country_only;
  country_only.country_iso = "JP";
  REQUIRE(ok(w.add(net("198.51.100.128/25", country_only))));
  REQUIRE(w.networkCount() == 3);
  const auto path = dir.file("map.mmdb");
  REQUIRE(ok(w.write(path)));

  Db db(path);
  const auto& md = db.mmdb.metadata;
  CHECK(md.binary_format_major_version == 2);
  CHECK(md.binary_format_minor_version == 0);
  CHECK(md.ip_version == 6);
  CHECK(md.record_size == 24);
  CHECK(md.build_epoch == 1700000000);
  CHECK(std::string(md.database_type) == "Meridian-Test");
  REQUIRE(md.languages.count == 1);
  CHECK(std::string(md.languages.names[0]) == "en");
  REQUIRE(md.description.count == 1);
  CHECK(std::string(md.description.descriptions[0]->language) == "en");
  CHECK(std::string(md.description.descriptions[0]->description) == "unit test map");

  for (const char* ip : {"192.0.2.0", "192.0.2.1", "192.0.2.255"}) {
    const Found f = lookup(db, ip);
    REQUIRE(f.found);
    CHECK(f.netmask - 96 == 24);
    CHECK(f.region == "eu-west");
    CHECK(f.country == "GB");
    CHECK(f.continent == "EU");
    CHECK(f.latitude == 51.5);
    CHECK(f.longitude == -0.12);
    CHECK(f.asn == 64500u);
  }
  for (const char* ip : {"2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}) {
    const Found f = lookup(db, ip);
    REQUIRE(f.found);
    CHECK(f.netmask == 32);
    CHECK(f.region == "us-east");
    CHECK(f.country == "US");
    CHECK(f.continent == "NA");
    CHECK(f.latitude == 38.9);
    CHECK(f.longitude == -77.03);
    CHECK(f.asn == 4200000000u);
  }
  const Found jp = lookup(db, "198.51.100.200");
  REQUIRE(jp.found);
  CHECK(jp.netmask - 96 == 25);
  CHECK(jp.country == "JP");
  CHECK_FALSE(jp.region);  // empty fields are not written
  CHECK_FALSE(jp.continent);
  CHECK_FALSE(jp.latitude);
  CHECK_FALSE(jp.asn);

  for (const char* ip : {"192.0.3.0", "192.0.1.255", "198.51.100.127", "10.0.0.1", "0.0.0.0",
                         "255.255.255.255", "2001:db9::", "2001:db7:ffff::", "::1", "fe80::1"}) {
    INFO(ip);
    CHECK_FALSE(lookup(db, ip).found);
  }
}

TEST_CASE("mmdb: nested networks resolve to the most specific; later inserts overwrite", "[mmdb]") {
  TempDir dir;
  const auto path = dir.file("nested.mmdb");

  SECTION("IPv4 /16 then /24 inside") {
    MmdbWriter w;
    REQUIRE(ok(w.add(net("10.1.0.0/16", region("wide")))));
    REQUIRE(ok(w.add(net("10.1.2.0/24", region("narrow")))));
    REQUIRE(ok(w.write(path)));
    Db db(path);
    Found f = lookup(db, "10.1.2.77");
    CHECK(f.region == "narrow");
    CHECK(f.netmask - 96 == 24);
    for (const char* ip : {"10.1.0.1", "10.1.3.255", "10.1.4.0", "10.1.200.1", "10.1.255.255"}) {
      INFO(ip);
      f = lookup(db, ip);
      CHECK(f.region == "wide");
      // The reported network is the part of the /16 the /24 did not take.
      CHECK(f.netmask - 96 >= 16);
      CHECK(f.netmask - 96 <= 24);
    }
    CHECK(lookup(db, "10.1.200.1").netmask - 96 == 17);
    CHECK_FALSE(lookup(db, "10.2.0.0").found);
  }

  SECTION("IPv4 /24 then a covering /16 overwrites it") {
    MmdbWriter w;
    REQUIRE(ok(w.add(net("10.1.2.0/24", region("narrow")))));
    REQUIRE(ok(w.add(net("10.1.0.0/16", region("wide")))));
    REQUIRE(ok(w.write(path)));
    Db db(path);
    const Found f = lookup(db, "10.1.2.77");
    CHECK(f.region == "wide");
    CHECK(f.netmask - 96 == 16);
  }

  SECTION("IPv6 /32, /48 inside, /64 inside that") {
    MmdbWriter w;
    REQUIRE(ok(w.add(net("2001:db8::/32", region("a")))));
    REQUIRE(ok(w.add(net("2001:db8:1::/48", region("b")))));
    REQUIRE(ok(w.add(net("2001:db8:1:2::/64", region("c")))));
    REQUIRE(ok(w.write(path)));
    Db db(path);
    CHECK(lookup(db, "2001:db8:1:2::5").region == "c");
    CHECK(lookup(db, "2001:db8:1:2::5").netmask == 64);
    CHECK(lookup(db, "2001:db8:1:3::5").region == "b");
    CHECK(lookup(db, "2001:db8:2::").region == "a");
    CHECK_FALSE(lookup(db, "2001:db9::").found);
  }

  SECTION("::/0 and 0.0.0.0/0 with exceptions") {
    MmdbWriter w;
    REQUIRE(ok(w.add(net("::/0", region("v6-default")))));
    REQUIRE(ok(w.add(net("0.0.0.0/0", region("v4-default")))));
    REQUIRE(ok(w.add(net("203.0.113.0/24", region("doc")))));
    REQUIRE(ok(w.write(path)));
    Db db(path);
    CHECK(lookup(db, "fe80::1").region == "v6-default");
    CHECK(lookup(db, "8.8.8.8").region == "v4-default");
    CHECK(lookup(db, "203.0.113.9").region == "doc");
    // The IPv4 aliases survive a covering IPv6 network.
    CHECK(lookup(db, "::ffff:203.0.113.9").region == "doc");
    CHECK(lookup(db, "2002:cb00:7109::").region == "doc");
  }
}

TEST_CASE("mmdb: IPv4-mapped and 6to4 addresses alias the IPv4 networks", "[mmdb]") {
  TempDir dir;
  MmdbWriter w;
  REQUIRE(ok(w.add(net("192.0.2.0/24", region("v4")))));
  // An IPv4-mapped network is stored as the IPv4 network it names.
  REQUIRE(ok(w.add(net("::ffff:198.51.100.0/120", region("mapped")))));
  const auto path = dir.file("alias.mmdb");
  REQUIRE(ok(w.write(path)));
  Db db(path);

  Found f = lookup(db, "::ffff:192.0.2.1");
  CHECK(f.region == "v4");
  CHECK(f.netmask == 120);
  f = lookup(db, "2002:c000:201::1");  // 6to4 for 192.0.2.1
  CHECK(f.region == "v4");
  CHECK(f.netmask == 16 + 24);
  f = lookup(db, "198.51.100.7");
  CHECK(f.region == "mapped");
  CHECK(f.netmask - 96 == 24);
  CHECK_FALSE(lookup(db, "::ffff:10.0.0.1").found);
  CHECK_FALSE(lookup(db, "2002:a00:1::").found);
}

TEST_CASE("mmdb: an ip_version 4 database", "[mmdb]") {
  TempDir dir;
  MmdbWriter w("Meridian-V4", 4);
  REQUIRE(ok(w.add(net("192.0.2.0/24", region("v4")))));
  REQUIRE(ok(w.add(net("192.0.2.128/26", region("inner")))));
  REQUIRE(ok(w.add(net("::ffff:10.0.0.0/104", region("ten")))));
  CHECK_FALSE(w.add(net("2001:db8::/32", region("v6"))).has_value());
  const auto path = dir.file("v4.mmdb");
  REQUIRE(ok(w.write(path)));
  Db db(path);
  CHECK(db.mmdb.metadata.ip_version == 4);
  CHECK(lookup(db, "192.0.2.1").region == "v4");
  CHECK(lookup(db, "192.0.2.1").netmask == 25);
  CHECK(lookup(db, "192.0.2.130").region == "inner");
  CHECK(lookup(db, "192.0.2.130").netmask == 26);
  CHECK(lookup(db, "10.200.0.1").region == "ten");
  CHECK(lookup(db, "10.200.0.1").netmask == 8);
  CHECK_FALSE(lookup(db, "192.0.3.1").found);
}

TEST_CASE("mmdb: add() rejects bad networks and leaves the tree alone", "[mmdb]") {
  MmdbWriter w;
  auto message = [&](const MmdbNetwork& n) {
    auto r = w.add(n);
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
  };
  MmdbNetwork bad{boost::asio::ip::make_address("192.0.2.0"), 33, region("x")};
  CHECK_THAT(message(bad), Catch::Contains("192.0.2.0/33") && Catch::Contains("out of range"));
  bad = {boost::asio::ip::make_address("2001:db8::"), 129, region("x")};
  CHECK_THAT(message(bad), Catch::Contains("out of range"));
  CHECK_THAT(message(net("192.0.2.1/24", region("x"))), Catch::Contains("host bits"));
  CHECK_THAT(message(net("2001:db8::1/64", region("x"))), Catch::Contains("host bits"));
  CHECK_THAT(message(net("2002:c000:200::/40", region("x"))), Catch::Contains("2002::/16"));
  CHECK_THAT(message(net("2002::/16", region("x"))), Catch::Contains("2002::/16"));
  CHECK_THAT(message(net("10.0.0.0/8", region("\xC3\x28"))), Catch::Contains("UTF-8"));
  MmdbRecord nan_lat{"x", "", "", std::nan(""), 0.0, std::nullopt};
  CHECK_THAT(message(net("10.0.0.0/8", nan_lat)), Catch::Contains("finite"));
  CHECK(w.networkCount() == 0);
  // Covering 2002::/16 is fine: the alias is punched back into it.
  CHECK(ok(w.add(net("2000::/3", region("global")))));
  CHECK(w.networkCount() == 1);
}

TEST_CASE("mmdb: identical records are stored once", "[mmdb]") {
  TempDir dir;
  MmdbWriter w;
  const MmdbRecord shared{"eu-central", "DE", "EU", 50.1, 8.7, 3320};
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(ok(w.add(
        net("10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24", shared))));
  }
  const auto path = dir.file("dedup.mmdb");
  REQUIRE(ok(w.write(path)));
  Db db(path);
  const Found first = lookup(db, "10.0.0.1");
  REQUIRE(first.found);
  for (int i = 0; i < 1000; i += 37) {
    const Found f =
        lookup(db, "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".9");
    CHECK(f.offset == first.offset);
    CHECK(f.region == "eu-central");
  }
  CHECK(db.mmdb.data_section_size < 400);  // keys once, one record
}

TEST_CASE("mmdb: 200k random /24s build and look up correctly", "[mmdb]") {
  TempDir dir;
  std::mt19937 rng(20240601);  // fixed seed: the same networks every run
  std::set<uint32_t> taken;    // /24s as addr >> 8
  while (taken.size() < 200000) taken.insert(rng() & 0xFFFFFF);
  std::vector<uint32_t> nets(taken.begin(), taken.end());
  std::shuffle(nets.begin(), nets.end(), rng);

  const char* kRegions[] = {"eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east"};
  const char* kCountries[] = {"GB", "DE", "US", "US", "IN", "BR"};
  auto recordFor = [&](size_t i) {
    MmdbRecord r;
    r.region = kRegions[i % 6];
    r.country_iso = kCountries[i % 6];
    r.asn = static_cast<uint32_t>(i % 50000 + 1);  // with the region: 150k distinct records
    return r;
  };
  auto v4 = [](uint32_t a) {
    return boost::asio::ip::make_address_v4(static_cast<boost::asio::ip::address_v4::uint_type>(a));
  };
  MmdbWriter w;
  for (size_t i = 0; i < nets.size(); ++i) {
    REQUIRE(ok(w.add(MmdbNetwork{v4(nets[i] << 8), 24, recordFor(i)})));
  }
  const auto path = dir.file("big.mmdb");
  REQUIRE(ok(w.write(path)));
  Db db(path);
  INFO("node_count " << db.mmdb.metadata.node_count);
  CHECK(db.mmdb.metadata.record_size == 24);

  std::uniform_int_distribution<size_t> pick(0, nets.size() - 1);
  for (int k = 0; k < 1000; ++k) {
    const size_t i = pick(rng);
    const auto ip = v4((nets[i] << 8) | (rng() & 0xFF)).to_string();
    const Found f = lookup(db, ip);
    INFO(ip);
    REQUIRE(f.found);
    CHECK(f.netmask - 96 == 24);
    CHECK(f.region == kRegions[i % 6]);
    CHECK(f.country == kCountries[i % 6]);
    CHECK(f.asn == recordFor(i).asn);
  }
  int misses = 0;
  while (misses < 1000) {
    const uint32_t n = rng() & 0xFFFFFF;
    if (taken.count(n)) continue;
    ++misses;
    const auto ip = v4((n << 8) | 1).to_string();
    INFO(ip);
    CHECK_FALSE(lookup(db, ip).found);
  }
}

TEST_CASE("mmdb: a data section past 16 MB switches to 28-bit records", "[mmdb]") {
  TempDir dir;
  MmdbWriter w;
  // 20k distinct 1 KB regions: about 20 MB of data, more than 24-bit records can address.
  const std::string pad(1000, 'x');
  for (uint32_t i = 0; i < 20000; ++i) {
    REQUIRE(ok(w.add(MmdbNetwork{boost::asio::ip::make_address_v4((10u << 24) | (i << 8)), 24,
                                 region(std::to_string(i) + pad)})));
  }
  REQUIRE(ok(w.add(net("2001:db8::/32", region("six")))));
  const auto path = dir.file("wide.mmdb");
  REQUIRE(ok(w.write(path)));
  Db db(path);
  CHECK(db.mmdb.metadata.record_size == 28);
  for (uint32_t i = 0; i < 20000; i += 997) {
    const auto ip = boost::asio::ip::make_address_v4((10u << 24) | (i << 8) | 3).to_string();
    INFO(ip);
    CHECK(lookup(db, ip).region == std::to_string(i) + pad);
  }
  CHECK(lookup(db, "2001:db8::1").region == "six");
  CHECK_FALSE(lookup(db, "10.100.0.1").found);
}

TEST_CASE("mmdb: write() replaces the target atomically and reports failures", "[mmdb]") {
  TempDir dir;
  const auto path = dir.file("map.mmdb");
  writeFile(path, "old contents");
  MmdbWriter w;
  REQUIRE(ok(w.add(net("192.0.2.0/24", region("new")))));
  REQUIRE(ok(w.write(path)));
  {
    Db db(path);
    CHECK(lookup(db, "192.0.2.1").region == "new");
  }
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  CHECK(entries == 1);  // no temporary file left behind

  auto failed = w.write(dir.file("missing-dir/map.mmdb"));
  REQUIRE_FALSE(failed.has_value());
  CHECK_THAT(failed.error().message, Catch::Contains("missing-dir/map.mmdb"));
}

TEST_CASE("mmdb: buildMmdbFromCsv", "[mmdb]") {
  TempDir dir;
  const auto csv = dir.file("networks.csv");
  const auto out = dir.file("out.mmdb");

  SECTION("header, comments, empty fields, IPv4 and IPv6") {
    writeFile(csv,
              "network,region,country,continent,latitude,longitude,asn\n"
              "# operator map\n"
              "\n"
              "192.0.2.0/24,eu-west,gb,EU,51.5,-0.12,AS64500\r\n"
              "  10.0.0.0/8 , lab ,,,,,\n"
              "2001:db8::/32,us-east,US,NA,,,4200000000\n"
              "198.51.100.1,,JP\n");
    auto n = buildMmdbFromCsv(csv, out);
    REQUIRE(ok(n));
    CHECK(*n == 4);
    Db db(out);
    Found f = lookup(db, "192.0.2.9");
    CHECK(f.region == "eu-west");
    CHECK(f.country == "GB");
    CHECK(f.continent == "EU");
    CHECK(f.latitude == 51.5);
    CHECK(f.longitude == -0.12);
    CHECK(f.asn == 64500u);
    f = lookup(db, "10.20.30.40");
    CHECK(f.region == "lab");
    CHECK(f.netmask - 96 == 8);
    CHECK_FALSE(f.country);
    CHECK_FALSE(f.asn);
    f = lookup(db, "2001:db8:5::");
    CHECK(f.region == "us-east");
    CHECK(f.asn == 4200000000u);
    CHECK_FALSE(f.latitude);
    f = lookup(db, "198.51.100.1");  // a bare address is a /32
    CHECK(f.country == "JP");
    CHECK(f.netmask - 96 == 32);
    CHECK_FALSE(f.region);
    CHECK_FALSE(lookup(db, "198.51.100.2").found);
  }

  SECTION("a comment after the fields (as in docs/mmdb.md)") {
    writeFile(csv,
              "10.0.0.0/8,us-east\n"
              "10.20.0.0/16,eu-west     # 10.20/16 goes to eu-west, the rest of 10/8 to us-east\n"
              "192.0.2.0/24,eu-west,GB,EU,51.51,-0.13,AS64500# no space before it\n"
              "   # an indented comment line\n");
    auto n = buildMmdbFromCsv(csv, out);
    REQUIRE(ok(n));
    CHECK(*n == 3);
    Db db(out);
    CHECK(lookup(db, "10.20.1.1").region == "eu-west");
    CHECK(lookup(db, "10.21.1.1").region == "us-east");
    CHECK(lookup(db, "192.0.2.1").asn == 64500u);
  }

  SECTION("errors name file:line and write nothing") {
    struct Case {
      std::string line, expect;
    };
    const Case cases[] = {
        {"192.0.2.0/33,r", "bad network '192.0.2.0/33'"},
        {"192.0.2.300/24,r", "not an IP address"},
        {"192.0.2.0/,r", "bad prefix"},
        {"192.0.2.1/24,r", "host bits"},
        {"192.0.2.0/24,r,USA", "bad country"},
        {"192.0.2.0/24,r,US,XX", "bad continent"},
        {"192.0.2.0/24,r,US,NA,91,0", "bad latitude"},
        {"192.0.2.0/24,r,US,NA,10,", "latitude and longitude"},
        {"192.0.2.0/24,r,US,NA,,,AS-1", "bad asn"},
        {"192.0.2.0/24,r,US,NA,,,4294967296", "bad asn"},
        {"192.0.2.0/24,r,US,NA,,,1,extra", "too many fields"},
        {"192.0.2.0/24,\"eu, west\"", "quoted fields"},
    };
    for (const Case& c : cases) {
      writeFile(csv, "# comment\n10.0.0.0/8,ok\n" + c.line + "\n");
      auto n = buildMmdbFromCsv(csv, out);
      INFO(c.line);
      REQUIRE_FALSE(n.has_value());
      CHECK_THAT(n.error().message, Catch::StartsWith(csv + ":3: ") && Catch::Contains(c.expect));
      CHECK_FALSE(fs::exists(out));
    }
    writeFile(csv, "network,region\n# nothing else\n");
    auto empty = buildMmdbFromCsv(csv, out);
    REQUIRE_FALSE(empty.has_value());
    CHECK_THAT(empty.error().message, Catch::Contains("no networks"));
    auto missing = buildMmdbFromCsv(dir.file("nope.csv"), out);
    REQUIRE_FALSE(missing.has_value());
    CHECK_THAT(missing.error().message, Catch::Contains("nope.csv"));
  }
}
