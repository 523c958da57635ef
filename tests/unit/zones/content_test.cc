// ZoneContent: canonical order (RFC 4034 §6.1), owner spelling kept, REPLACE / delete semantics,
// loading through the zone-file loader, and the serving Zone compiled from a content.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "zones/content.h"
#include "zones/loader.h"

using namespace meridian;
using test::bytes;
using test::contentOf;
using test::name;

namespace {

const std::string kHead =
    "$ORIGIN example.\n$TTL 3600\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n"
    "@ NS ns1\nns1 A 192.0.2.1\n";

std::vector<std::string> owners(const zones::ZoneContent& c) {
  std::vector<std::string> out;
  for (size_t i = 0; i < c.rrsetCount(); ++i) {
    if (out.empty() || out.back() != c.rrset(i).ownerText()) out.push_back(c.rrset(i).ownerText());
  }
  return out;
}

}  // namespace

TEST_CASE("content: RRsets in RFC 4034 section 6.1 order, owners as written", "[zones][content]") {
  // The RFC's own example, written in a scrambled order.
  const auto c =
      contentOf("example", kHead +
                               "\\200.z TXT x\n*.z TXT x\nz TXT x\nzABC.a.EXAMPLE. TXT x\n"
                               "\\001.z TXT x\nZ.a TXT x\nyljkjljk.a TXT x\na TXT x\n");
  CHECK(owners(c) == std::vector<std::string>{"example.", "a.example.", "yljkjljk.a.example.",
                                              "Z.a.example.", "zABC.a.EXAMPLE.", "ns1.example.",
                                              "z.example.", "\\001.z.example.", "*.z.example.",
                                              "\\200.z.example."});
  // At the apex: NS (2) before SOA (6): type order.
  CHECK(c.rrset(0).type() == dns::rrtype::kNS);
  CHECK(c.rrset(1).type() == dns::rrtype::kSOA);
  CHECK(c.recordCount() == 11);
  CHECK(zones::canonicalCompare(name("a.example.").data, name("A.EXAMPLE.").data) == 0);
  CHECK(zones::canonicalCompare(name("a.example.").data, name("b.example.").data) < 0);
  CHECK(zones::canonicalCompare(name("example.").data, name("a.example.").data) < 0);
  CHECK(zones::canonicalCompare(name("ab.example.").data, name("a.b.example.").data) < 0);
  // Octets compared unsigned, after lowercasing: '_' (0x5F) sorts between 'Z' and 'a' only as
  // uppercase; lowercase 'z' (0x7A) is above it.
  CHECK(zones::canonicalCompare(name("_x.example.").data, name("Zx.example.").data) < 0);
}

TEST_CASE("content: find is case-insensitive, replace and delete are REPLACE semantics",
          "[zones][content]") {
  auto c = contentOf("example", kHead + "www A 192.0.2.10\nwww A 192.0.2.11\nWWW AAAA ::1\n");
  auto www = c.find(name("wWw.ExAmPlE.").data, dns::rrtype::kA);
  REQUIRE(www);
  CHECK(www->size() == 2);
  CHECK(www->ownerText() == "www.example.");
  CHECK(c.find(name("WWW.example.").data, dns::rrtype::kAAAA)->ownerText() == "WWW.example.");
  CHECK_FALSE(c.find(name("www.example.").data, dns::rrtype::kMX));

  // REPLACE: all records of name+type become the new ones, spelling and TTL included.
  REQUIRE(c.replace({name("Www.example."), dns::rrtype::kA, 60, {bytes({192, 0, 2, 99})}}));
  www = c.find(name("www.example.").data, dns::rrtype::kA);
  REQUIRE(www);
  CHECK(www->size() == 1);
  CHECK(www->ttl() == 60);
  CHECK(www->ownerText() == "Www.example.");
  CHECK(std::vector<uint8_t>((*www->rdata().begin()).begin(), (*www->rdata().begin()).end()) ==
        bytes({192, 0, 2, 99}));
  CHECK(c.recordCount() == 3 + 1 + 1);  // SOA NS A(ns1) + AAAA + A

  // A new RRset goes in its canonical place.
  REQUIRE(
      c.replace({name("b.example."), dns::rrtype::kTXT, 300, {bytes({1, 'x'}), bytes({1, 'x'})}}));
  CHECK(owners(c) == std::vector<std::string>{"example.", "b.example.", "ns1.example.",
                                              "Www.example.", "WWW.example."});
  CHECK(c.find(name("b.example.").data, dns::rrtype::kTXT)->size() == 1);  // duplicate dropped

  // Deleting: an empty REPLACE, or remove().
  REQUIRE(c.replace({name("b.example."), dns::rrtype::kTXT, 0, {}}));
  CHECK_FALSE(c.find(name("b.example.").data, dns::rrtype::kTXT));
  CHECK(c.remove(name("www.example.").data, dns::rrtype::kAAAA));
  CHECK_FALSE(c.remove(name("www.example.").data, dns::rrtype::kAAAA));
  CHECK(c.recordCount() == 4);

  // Refused, nothing changed.
  const zones::ZoneContent before = c;
  auto out = c.replace({name("www.example.org."), dns::rrtype::kA, 60, {bytes({1, 2, 3, 4})}});
  REQUIRE_FALSE(out);
  CHECK(out.error().message == "www.example.org. is outside zone example.");
  out = c.replace({name("x.example."), dns::rrtype::kANY, 60, {bytes({1})}});
  REQUIRE_FALSE(out);
  CHECK(out.error().message == "type 255 cannot appear in a zone");
  out = c.replace({name("x.example."), dns::rrtype::kA, 0x80000000u, {bytes({1, 2, 3, 4})}});
  REQUIRE_FALSE(out);
  out = c.replace({dns::NameBuf{}, dns::rrtype::kA, 60, {bytes({1, 2, 3, 4})}});
  REQUIRE_FALSE(out);
  CHECK(c == before);
}

TEST_CASE("content: serial read and rewritten in the apex SOA", "[zones][content]") {
  auto c = contentOf("example", kHead);
  CHECK(c.serial() == 2024010101u);
  REQUIRE(c.setSerial(4294967295u));
  CHECK(c.serial() == 4294967295u);
  std::vector<std::string> warnings;
  auto z = zones::buildZone(c, warnings);
  REQUIRE_OK(z);
  CHECK((*z)->serial() == 4294967295u);
  REQUIRE(c.remove(c.apex().data, dns::rrtype::kSOA));
  CHECK_FALSE(c.serial());
  auto bad = c.setSerial(1);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "zone example. has no SOA record at its apex");
}

TEST_CASE("content: many edits keep the arena compact", "[zones][content]") {
  auto c = contentOf("example", kHead);
  test::RandomZone r(7);
  std::vector<uint8_t> big(3000, 'x');
  for (int k = 0; k < 2000; ++k) {
    REQUIRE(c.replace({name("big.example."), 65280, 60, {big}}));
  }
  // 2000 RRsets of 3 KB were written; one is live. Compaction keeps the arena under twice that
  // (plus the floor below which it does not bother).
  CHECK(c.memoryBytes() < 2 * 3100 + 65536 + 4096);
  CHECK(c.find(name("big.example.").data, 65280)->size() == 1);
}

TEST_CASE("content: loaded through the zone-file loader, same messages, same Zone",
          "[zones][content]") {
  // Errors are the loader's, unchanged.
  const std::string bad = kHead + "www A 300.1.1.1\nc CNAME x\nc A 192.0.2.1\n";
  auto plain = zones::loadZoneText("example", bad, "t.zone");
  auto content = zones::loadZoneContentText("example", bad, "t.zone");
  REQUIRE_FALSE(plain);
  REQUIRE_FALSE(content);
  CHECK(content.error().message == plain.error().message);

  // Duplicates dropped and the first TTL kept (as ZoneBuilder does), out-of-zone data ignored.
  const std::string text = kHead +
                           "a 60 A 192.0.2.1\na 120 A 192.0.2.2\na A 192.0.2.1\n"
                           "other.org. A 192.0.2.3\n";
  auto loaded = zones::loadZoneContentText("example", text, "t.zone");
  REQUIRE_OK(loaded);
  auto a = loaded->content.find(name("a.example.").data, dns::rrtype::kA);
  REQUIRE(a);
  CHECK(a->size() == 2);
  CHECK(a->ttl() == 60);
  CHECK(loaded->loaded.warnings.size() == 3);  // TTL, duplicate, out of zone: the builder's
  std::vector<std::string> warnings;
  auto z = zones::buildZone(loaded->content, warnings);
  REQUIRE_OK(z);
  CHECK((*z)->digest() == loaded->loaded.zone->digest());
  CHECK((*z)->recordCount() == loaded->loaded.zone->recordCount());
}

TEST_CASE("content: the Zone built from a content has the file's digest", "[zones][content]") {
  for (const auto& [origin, path] : test::exampleZoneFiles()) {
    INFO(path);
    auto direct = zones::loadZoneFile(origin, path);
    REQUIRE_OK(direct);
    auto loaded = zones::loadZoneContentFile(origin, path);
    REQUIRE_OK(loaded);
    CHECK(loaded->loaded.zone->digest() == direct->zone->digest());
    CHECK(loaded->loaded.warnings == direct->warnings);
    std::vector<std::string> warnings;
    auto z = zones::buildZone(loaded->content, warnings);
    REQUIRE_OK(z);
    CHECK((*z)->digest() == direct->zone->digest());
    CHECK((*z)->recordCount() == direct->zone->recordCount());
    CHECK((*z)->serial() == direct->zone->serial());
    CHECK(loaded->content.recordCount() == direct->zone->recordCount());
  }
}

TEST_CASE("content: buildZone runs the zone checks, naming the zone instead of a file line",
          "[zones][content]") {
  auto c = contentOf("example", kHead + "c A 192.0.2.1\n");
  const auto ns = name("ns1.example.");
  REQUIRE(
      c.replace({name("c.example."), dns::rrtype::kCNAME, 60, {{ns.data, ns.data + ns.length}}}));
  std::vector<std::string> warnings;
  auto z = zones::buildZone(c, warnings);
  REQUIRE_FALSE(z);
  CHECK(z.error().message ==
        "zone example.: CNAME at c.example. beside other data (zone example.)");
  REQUIRE(c.remove(c.apex().data, dns::rrtype::kNS));
  REQUIRE(c.remove(name("c.example.").data, dns::rrtype::kCNAME));
  z = zones::buildZone(c, warnings, "edit of example.");
  REQUIRE_FALSE(z);
  CHECK(z.error().message == "edit of example.: zone example. has no NS records at its apex");
}
