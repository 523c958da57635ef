// The zone-file writer: write -> load gives the same content (owner spelling, TTLs, RDATA octets
// and order) and the same Zone digest, for every type the loader reads, the example and
// differential zones, and random data; and the atomic file replacement.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../testutil.h"
#include "content_testutil.h"
#include "zones/writer.h"

using namespace meridian;
using test::contentOf;
using test::name;

namespace {

const std::string kHead =
    "$ORIGIN example.com.\n$TTL 3600\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n"
    "@ NS ns1\nns1 A 192.0.2.1\n";

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

// Writes `c`, loads the text back, and checks content and digest.
void roundTrip(const zones::ZoneContent& c) {
  const std::string text = zones::zoneText(c);
  INFO(text);
  auto back = zones::loadZoneContentText(c.origin(), text, "written.zone");
  REQUIRE_OK(back);
  CHECK(back->content == c);
  std::vector<std::string> warnings;
  auto z = zones::buildZone(c, warnings);
  REQUIRE_OK(z);
  CHECK(back->loaded.zone->digest() == (*z)->digest());
  CHECK(back->loaded.rdata_via_ldns <= back->content.recordCount());
  // Writing what was read gives the same text: the output is a function of the content.
  CHECK(zones::zoneText(back->content) == text);
}

std::string tempDir() {
  char tmpl[] = "/tmp/meridian-writer-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  return tmpl;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("writer: every type the loader reads round-trips", "[zones][writer]") {
  const std::string label63 = repeat("a", 63);
  const std::vector<std::string> records = {
      "r A 192.0.2.1",
      "r AAAA 2001:db8::1",
      "r AAAA ::ffff:192.0.2.1",
      "r NS ns1.example.net.",
      "r NS .",
      "r NS Mixed.Case.Example.",
      "r NS a\\.b",
      "r NS \\065\\066c.example.net.",
      "r NS \\(x\\)\\;\\\"q\\\"\\$\\@\\032\\000\\255",
      "r NS " + label63,
      "r CNAME host.example.org.",
      "r DNAME other.example.net.",
      "r PTR 1.2.0.192.in-addr.arpa.",
      "r MX 10 mail",
      "r MX 0 .",
      "r SRV 65535 65535 65535 .",
      "r SRV 1 2 3 target",
      "r TXT \"\"",
      "r TXT \"a b ; c\"",
      "r TXT a b c",
      "r TXT \"\" \"\" \"\"",
      "r TXT \"\\\"quoted\\\"\"",
      "r TXT \"\\065\\066\\255\\000\"",
      "r TXT \"\\\\\"",
      "r TXT semi\\;colon",
      "r TXT \"h\xc3\xa9llo\"",
      "r TXT \"tab\\009end\\010nl\\013cr\"",
      "r TXT \"(paren)\"",
      "r TXT \"" + repeat("x", 255) + "\"",
      "r TXT \"" + repeat("y", 600) + "\" tail",
      "r TXT \"" + repeat("\\\"", 300) + "\"",
      "r TXT ( \"v=DKIM1; k=rsa; \"\n  \"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ\" )",
      "r SPF \"v=spf1 -all\"",
      "r CAA 0 issue \"letsencrypt.org\"",
      "r CAA 128 tbs \"Unknown\"",
      "r CAA 0 issue \"\"",
      "r CAA 0 issuewild \"ca.example; account=123\"",
      "r CAA 0 Issue \"esc\\\"aped\\059\\255\"",
      "r HINFO \"PC\" \"Linux\"",
      "r RP mbox.example.com. txt.example.com.",
      "r AFSDB 1 afs.example.com.",
      "r NAPTR 100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
      "r LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
      "r DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
      "r SSHFP 2 1 123456789abcdef67890123456789abcdef67890",
      "r TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
      "r DNSKEY 257 3 8 "
      "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjFFVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/"
      "RStIoO8g0NfnfL2MTJRkxoXbfDaUeVPQuYEhg37NZWAJQ9VnMVDxP/VHL496M/QZxkjf5/"
      "Efucp2gaDX6RS6CXpoY68LsvPVjR0ZSwzz1apAzvN9dlzEheX7ICJBBtuA6G3LQpzW5hOA2hzCTMjJPJ8LbqF6dsV6Do"
      "BQzgul0sGIcGOYl7OyQdXfZ57relSQageu+ipAdTTJ25AsRTAoub8ONGcLmqrAmRLKBP1dfwhYB4N7knNnulqQxA+"
      "Uk1ihz0=",
      "r NSEC host.example.com. A MX RRSIG NSEC TYPE1234",
      "r RRSIG A 5 3 86400 20030322173103 20030220173103 2642 example.com. "
      "oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/"
      "M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=",
      "r NSEC3PARAM 1 0 12 aabbccdd",
      "r SVCB 1 . alpn=h2,h3 port=8443",
      "r HTTPS 1 . alpn=h2",
      "r URI 10 1 \"ftp://ftp1.example.com/public\"",
      "r TYPE65280 \\# 4 0A000001",
      "r TYPE65281 \\# 0",
      "r TYPE65282 \\# 300 " + repeat("ab", 300),
      "r MX \\# 8 000A046D61696C00",
      "r A \\# 4 C0000201",
  };
  for (const std::string& record : records) {
    INFO(record);
    roundTrip(contentOf("example.com", kHead + record + "\n"));
  }
  // All of them in one zone (several RRsets per owner, blank owners); not CNAME, which cannot
  // have neighbours, nor NS, which would make r a delegation.
  std::string all = kHead;
  for (const std::string& record : records) {
    if (record.rfind("r CNAME", 0) != 0 && record.rfind("r NS", 0) != 0) all += record + "\n";
  }
  roundTrip(contentOf("example.com", all));
}

TEST_CASE("writer: RDATA in presentation form, RFC 3597 where none reproduces it",
          "[zones][writer]") {
  auto text = [](const std::string& record) {
    auto c = contentOf("example.com", kHead + "r " + record + "\n");
    const auto rs = c.find(name("r.example.com.").data, c.rrset(c.rrsetCount() - 1).type());
    REQUIRE(rs);
    return zones::rdataToText(rs->type(), *rs->rdata().begin());
  };
  CHECK(text("TXT \"a\\\"b\\\\c\" \"tab\\009\" \"h\\195\\169\"") ==
        "\"a\\\"b\\\\c\" \"tab\\009\" \"h\\195\\169\"");
  CHECK(text("MX 10 Mail") == "10 Mail.example.com.");
  CHECK(text("MX \\# 8 000A046D61696C00") == "10 mail.");
  CHECK(text("CAA 0 issue \"x;y\\\"z\"") == "0 issue \"x;y\\\"z\"");
  CHECK(text("DS 60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118") ==
        "60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118");
  CHECK(text("NSEC host.example.com. A MX RRSIG NSEC TYPE1234") ==
        "host.example.com. A MX RRSIG NSEC TYPE1234");
  CHECK(text("TYPE65280 \\# 4 0A000001") == "\\# 4 0a000001");
  CHECK(text("TYPE65280 \\# 0") == "\\# 0");
  CHECK(zones::typeToText(65280) == "TYPE65280");
  CHECK(zones::typeToText(dns::rrtype::kAAAA) == "AAAA");
  // Octets no presentation form would reproduce: an A of 5 octets is written generically.
  CHECK(zones::rdataToText(dns::rrtype::kA, test::bytes({1, 2, 3, 4, 5})) == "\\# 5 0102030405");
  CHECK(zones::rdataToText(dns::rrtype::kTXT, test::bytes({5, 'a'})) == "\\# 2 0561");
}

TEST_CASE("writer: owners relative to $ORIGIN where their spelling allows", "[zones][writer]") {
  const auto c =
      contentOf("example.com",
                "$ORIGIN Example.COM.\n@ 300 SOA ns1 host 1 2 3 4 5\n@ 300 NS ns1\n"
                "ns1 300 A 192.0.2.1\nns1 300 AAAA ::1\nWWW.example.com. 300 A 192.0.2.2\n"
                "a\\.b 300 A 192.0.2.3\n\\$x 300 A 192.0.2.4\n\\@ 300 A 192.0.2.5\n"
                "other.Example.COM. 300 TXT \"hi\"\n");
  const std::string text = zones::zoneText(c);
  CHECK(text.find("$ORIGIN Example.COM.\n") != std::string::npos);
  CHECK(text.find("\n@\t300\tIN\tNS\tns1.Example.COM.\n") != std::string::npos);
  CHECK(text.find("\nns1\t300\tIN\tA\t192.0.2.1\n\t300\tIN\tAAAA\t::1\n") != std::string::npos);
  CHECK(text.find("\nWWW.example.com.\t300\tIN\tA\t192.0.2.2\n") != std::string::npos);
  CHECK(text.find("\na\\.b\t300\tIN\tA\t192.0.2.3\n") != std::string::npos);
  CHECK(text.find("\n\\$x\t300\tIN\tA") != std::string::npos);
  CHECK(text.find("\n\\@\t300\tIN\tA") != std::string::npos);
  CHECK(text.find("\nother\t300\tIN\tTXT\t\"hi\"\n") != std::string::npos);
  roundTrip(c);
}

TEST_CASE("writer: example and differential zones round-trip", "[zones][writer]") {
  for (const auto& [origin, path] : test::exampleZoneFiles()) {
    INFO(path);
    auto loaded = zones::loadZoneContentFile(origin, path);
    REQUIRE_OK(loaded);
    roundTrip(loaded->content);
    auto again = zones::loadZoneContentText(origin, zones::zoneText(loaded->content));
    REQUIRE_OK(again);
    CHECK(again->loaded.zone->digest() == loaded->loaded.zone->digest());
  }
}

TEST_CASE("writer: random zones round-trip", "[zones][writer]") {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    INFO("seed " << seed);
    test::RandomZone r(seed);
    roundTrip(r.zone(name(seed % 2 ? "example.com." : "Odd\\.Apex.example."), 40));
  }
}

TEST_CASE("writer: atomic replacement of a file", "[zones][writer]") {
  const std::string dir = tempDir();
  const std::string path = dir + "/z.zone";
  REQUIRE(zones::writeFileAtomic(path, "one\n"));
  CHECK(readFile(path) == "one\n");
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);

  // Replaced whole, permission bits kept, a new inode (rename), no temporary file left.
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  const ino_t before = st.st_ino;
  REQUIRE(zones::writeFileAtomic(path, "two\n"));
  CHECK(readFile(path) == "two\n");
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_ino != before);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);

  // A symbolic link is followed: the target changes, the link stays a link.
  const std::string link = dir + "/link.zone";
  REQUIRE(::symlink("z.zone", link.c_str()) == 0);
  REQUIRE(zones::writeFileAtomic(link, "three\n"));
  CHECK(readFile(path) == "three\n");
  CHECK(std::filesystem::is_symlink(link));

  // Errors change nothing.
  auto r = zones::writeFileAtomic(dir + "/missing/z.zone", "x");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("cannot create a temporary file in " + dir + "/missing") == 0);
  r = zones::writeFileAtomic(dir, "x");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == dir + ": not a regular file");

  // $INCLUDEd records are written into the file itself; the directive and comments are gone.
  {
    std::ofstream(dir + "/inc.zone") << "; included\nmail A 192.0.2.25\n";
    std::ofstream(dir + "/main.zone") << kHead << "$INCLUDE inc.zone\nwww A 192.0.2.7 ; web\n";
    auto with_include = zones::loadZoneContentFile("example.com", dir + "/main.zone");
    REQUIRE_OK(with_include);
    CHECK(with_include->loaded.includes.size() == 1);
    REQUIRE(zones::writeZoneFile(with_include->content, dir + "/main.zone"));
    const std::string written = readFile(dir + "/main.zone");
    CHECK(written.find("$INCLUDE") == std::string::npos);
    CHECK(written.find("; web") == std::string::npos);
    CHECK(written.find("\nmail\t3600\tIN\tA\t192.0.2.25\n") != std::string::npos);
    auto again = zones::loadZoneContentFile("example.com", dir + "/main.zone");
    REQUIRE_OK(again);
    CHECK(again->content == with_include->content);
    CHECK(again->loaded.includes.empty());
  }

  // A whole zone.
  const auto c = contentOf("example.com", kHead + "www A 192.0.2.7\n");
  REQUIRE(zones::writeZoneFile(c, path));
  auto back = zones::loadZoneContentFile("example.com", path);
  REQUIRE_OK(back);
  CHECK(back->content == c);
  std::filesystem::remove_all(dir);
}
