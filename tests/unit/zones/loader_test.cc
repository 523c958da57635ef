#include <atomic>
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

TEST_CASE("data below a delegation is warned at its file:line") {
  auto r = zones::loadZoneText("example.com",
                               std::string(kHead) +
                                   "sub NS ns.sub\n"               // 6
                                   "ns.sub A 192.0.2.53\n"         // 7: glue
                                   "sub MX 10 ns.sub\n"            // 8
                                   "x.sub ( TXT\n \"below\" )\n",  // 9
                               "z.zone");
  REQUIRE_OK(r);
  CHECK(r->warnings ==
        std::vector<std::string>{"z.zone:8: sub.example.com. type MX is below the delegation at "
                                 "sub.example.com. and is not served",
                                 "z.zone:9: x.sub.example.com. type TXT is below the delegation at "
                                 "sub.example.com. and is not served"});
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
  // The included file is reported with its status, so a reload sees an edit to it alone.
  REQUIRE(r->includes.size() == 1);
  CHECK(r->includes[0].path == (dir / "inc.zone").string());
  CHECK(r->includes[0].unchanged());
  std::ofstream(dir / "inc.zone") << "host A 192.0.2.22\n";
  CHECK_FALSE(r->includes[0].unchanged());
  std::filesystem::remove_all(dir);
}

TEST_CASE("A and AAAA converted without ldns give the same RDATA as ldns") {
  // "( 192.0.2.7 )" is two tokens more than the address alone: it takes the ldns path.
  auto r = zones::loadZoneText("example.com",
                               std::string(kHead) +
                                   "a A 192.0.2.7\na6 AAAA 2001:db8::7\n"
                                   "b A ( 192.0.2.7 )\nb6 AAAA ( 2001:db8::7 )\n",
                               "z.zone");
  REQUIRE_OK(r);
  auto rdata = [&](const char* name, uint16_t type) {
    dns::NameBuf n;
    REQUIRE(dns::fromText(name, n));
    const uint32_t ni = r->zone->find(n.data, n.length);
    REQUIRE(ni != zones::kNone);
    const zones::RRset* rs = r->zone->rrset(r->zone->node(ni), type);
    REQUIRE(rs != nullptr);
    const zones::RR& rr = r->zone->rr(rs->first_rr);
    const uint8_t* p = r->zone->blob(rr.offset) + 10;
    return std::vector<uint8_t>(p, p + rr.length - 10);
  };
  CHECK(rdata("a.example.com.", dns::rrtype::kA) == std::vector<uint8_t>{192, 0, 2, 7});
  CHECK(rdata("a.example.com.", dns::rrtype::kA) == rdata("b.example.com.", dns::rrtype::kA));
  const auto v6 = rdata("a6.example.com.", dns::rrtype::kAAAA);
  REQUIRE(v6.size() == 16);
  CHECK(v6[0] == 0x20);
  CHECK(v6[15] == 7);
  CHECK(v6 == rdata("b6.example.com.", dns::rrtype::kAAAA));
}

TEST_CASE("messages name the file and line of each record across $INCLUDE and back") {
  // Records keep a file index and a line, not a "file:line" string: main, included and main again.
  const auto dir = std::filesystem::temp_directory_path() / "meridian-loader-where-test";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "main.zone") << kHead << "a A 192.0.2.1\n$INCLUDE \"inc.zone\"\n"
                                     << "a A 192.0.2.1\nb TXT x\nb TXT x\n";
    std::ofstream(dir / "inc.zone") << "\nc A 192.0.2.2\nc A 192.0.2.2\n";
  }
  const std::string main_zone = (dir / "main.zone").string();
  const std::string inc_zone = (dir / "inc.zone").string();
  auto r = zones::loadZoneFile("example.com", main_zone);
  REQUIRE_OK(r);
  std::vector<std::string> w(r->warnings.begin(), r->warnings.end());
  std::sort(w.begin(), w.end());
  std::vector<std::string> want = {main_zone + ":8: duplicate record a.example.com. ignored",
                                   main_zone + ":10: duplicate record b.example.com. ignored",
                                   inc_zone + ":3: duplicate record c.example.com. ignored"};
  std::sort(want.begin(), want.end());
  CHECK(w == want);
  std::filesystem::remove_all(dir);
}

namespace {
// Every line of a multi-line error message.
std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// The TTL of the first record at `name` (relative to example.com.).
uint32_t ttlAt(const zones::Zone& z, const std::string& name, uint16_t type) {
  dns::NameBuf n;
  if (!dns::fromText(name + ".example.com.", n)) return 0;
  const uint32_t i = z.find(n.data, n.length);
  if (i == zones::kNone) return 0;
  const zones::RRset* rs = z.rrset(z.node(i), type);
  return rs == nullptr ? 0 : z.ttl(*rs);
}

std::string errorOf(const std::string& body, const std::string& label = "z.zone") {
  auto r = zones::loadZoneText("example.com", std::string(kHead) + body, label);
  return r.has_value() ? std::string("(loaded)") : r.error().message;
}
}  // namespace

TEST_CASE("parseTtl: plain seconds and BIND units, nothing else, at most 2^31-1") {
  struct Case {
    const char* text;
    zones::TtlStatus status;
    uint32_t value;
  };
  const Case cases[] = {
      {"0", zones::TtlStatus::kOk, 0},
      {"3600", zones::TtlStatus::kOk, 3600},
      {"1h30m", zones::TtlStatus::kOk, 5400},
      {"2w", zones::TtlStatus::kOk, 1209600},
      {"1W2d3H4m5S", zones::TtlStatus::kOk, 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5},
      {"90s", zones::TtlStatus::kOk, 90},
      {"2147483647", zones::TtlStatus::kOk, 2147483647u},
      {"2147483648", zones::TtlStatus::kRange, 0},
      {"99999999999", zones::TtlStatus::kRange, 0},
      {"3551w", zones::TtlStatus::kRange, 0},
      {"12x3", zones::TtlStatus::kSyntax, 0},
      {"3600x", zones::TtlStatus::kSyntax, 0},
      {"1x", zones::TtlStatus::kSyntax, 0},
      {"1h30", zones::TtlStatus::kSyntax, 0},
      {"h", zones::TtlStatus::kSyntax, 0},
      {"-1", zones::TtlStatus::kSyntax, 0},
      {"0x10", zones::TtlStatus::kSyntax, 0},
      {"", zones::TtlStatus::kSyntax, 0},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    uint32_t v = 12345;
    CHECK(zones::parseTtl(c.text, v) == c.status);
    if (c.status == zones::TtlStatus::kOk) CHECK(v == c.value);
  }
}

TEST_CASE("record TTLs, $TTL and SOA timers are strict and accept BIND units") {
  SECTION("malformed or too large record TTLs are refused, each at its line") {
    const auto e =
        lines(errorOf("a 12x3 A 192.0.2.2\nb 3600x A 192.0.2.3\nc 1x A 192.0.2.4\n"
                      "d 99999999999 A 192.0.2.5\n"));
    REQUIRE(e.size() == 4);
    CHECK(e[0] ==
          "z.zone:6: invalid TTL '12x3' (a number of seconds, or units s m h d w as in "
          "1h30m)");
    CHECK(e[1].rfind("z.zone:7: invalid TTL '3600x'", 0) == 0);
    CHECK(e[2].rfind("z.zone:8: invalid TTL '1x'", 0) == 0);
    CHECK(e[3] == "z.zone:9: TTL '99999999999' is above 2147483647 (RFC 2181 \u00a78)");
  }
  SECTION("$TTL is held to the same rule") {
    CHECK(errorOf("$TTL 1x\n").rfind("z.zone:6: invalid $TTL '1x'", 0) == 0);
    CHECK(errorOf("$TTL 4294967295\n").rfind("z.zone:6: $TTL '4294967295' is above", 0) == 0);
  }
  SECTION("units apply") {
    auto r = zones::loadZoneText("example.com", std::string(kHead) +
                                                    "a 1h30m A 192.0.2.2\n$TTL 2w\nb A 192.0.2.3\n"
                                                    "c 2147483647 A 192.0.2.4\n");
    REQUIRE_OK(r);
    CHECK(ttlAt(*r->zone, "a", dns::rrtype::kA) == 5400);
    CHECK(ttlAt(*r->zone, "b", dns::rrtype::kA) == 1209600);
    CHECK(ttlAt(*r->zone, "c", dns::rrtype::kA) == 2147483647u);
  }
  SECTION("SOA timers take units; MINIMUM feeds the negative TTL") {
    auto r = zones::loadZoneText("example.com",
                                 "$ORIGIN example.com.\n$TTL 1h\n@ SOA ns1 h ( 7 2h 1h 2w 5m )\n@ "
                                 "NS ns1\nns1 A 192.0.2.1\n");
    REQUIRE_OK(r);
    CHECK(r->zone->serial() == 7u);
    CHECK(r->zone->ttl(r->zone->negativeSoa()) == 300u);  // min(1h, 5m)
  }
  SECTION("SOA timers and serial are strict (ldns reads '1x' as 1 and wraps the serial)") {
    const std::string soa = "$ORIGIN example.com.\n@ 3600 SOA ns1 h ";
    auto r = zones::loadZoneText("example.com", soa + "1 1x 2 3 4\n@ NS ns1\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.rfind("z.zone:2: invalid SOA refresh '1x'", 0) == 0);
    r = zones::loadZoneText("example.com", soa + "99999999999 1 2 3 4\n@ NS ns1\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "z.zone:2: invalid SOA serial '99999999999': must be 0..4294967295");
    r = zones::loadZoneText("example.com", soa + "1 2 3 4\n@ NS ns1\n", "z.zone");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == "z.zone:2: missing SOA minimum");
  }
}

TEST_CASE("one run reports every error of a file with file:line, the field and the text") {
  const std::string body =
      "g A 192.0.2.256\n"  // 6
      "h AX 1.2.3.4\n"     // 7
      + std::string(64, 'x') +
      " A 1.2.3.4\n"                  // 8
      "m MX 99999 ns1\n"              // 9
      "m2 MX 10\n"                    // 10
      "m3 MX 10 a b\n"                // 11
      "i CH A 1.2.3.4\n"              // 12
      "w ( A\n"                       // 13: a multi-line record reported where it starts
      "  1.2.3.4\n"                   // 14
      "  1.2.3.5 )\n"                 // 15
      "ok A 192.0.2.9\n"              // 16
      "t TXT \"unterminated\n"        // 17
      "$GENERATE 1-2 x$ A 1.2.3.$\n"  // 18
      "   AAAA ::1::2\n"              // 19
      "k DS 1 8 2 ZZ\n"               // 20
      "u TYPE65280 \\# 3 0A000001\n"  // 21
      "n NS a..b\n"                   // 22
      "l ( A 1.2.3.4\n"               // 23: never closed
      "after A 192.0.2.10\n";         // 24
  const auto e = lines(errorOf(body));
  INFO(errorOf(body));
  const std::vector<std::string> want = {
      "z.zone:6: invalid IPv4 address '192.0.2.256'",
      "z.zone:7: unknown type 'AX'",
      "z.zone:8: invalid owner name: label longer than 63 octets in "
      "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u2026'",
      "z.zone:9: invalid 16-bit number '99999' (MX field 1): must be 0..65535",
      "z.zone:10: missing domain name (MX field 2)",
      "z.zone:11: unexpected text 'b' after the MX RDATA",
      "z.zone:12: class CH is not supported (only IN)",
      "z.zone:13: unexpected text '1.2.3.5' after the A RDATA",
      "z.zone:17: unterminated quoted string '\"unterminated'",
      "z.zone:18: unknown directive '$GENERATE' (supported: $ORIGIN, $TTL, $INCLUDE)",
      "z.zone:19: invalid IPv6 address '::1::2'",
      "z.zone:20: invalid hex data 'ZZ' (DS field 4)",
      "z.zone:21: RFC 3597 RDATA length 3 does not match 4 octets of data",
      "z.zone:22: invalid domain name: empty label in 'a..b'",
      "z.zone:23: '(' opened on this line is never closed",
  };
  CHECK(e == want);
}

TEST_CASE("RFC 3597 RDATA of a known type must be a valid RDATA of that type") {
  // What NSD refuses as "bad unknown RDATA": the octets are served as they are written.
  const auto e =
      lines(errorOf("a5 A \\# 5 C000020101\n"   // 6: an A is 4 octets
                    "a0 A \\# 0\n"              // 7
                    "t0 TXT \\# 0\n"            // 8: a TXT holds at least one string
                    "mx MX \\# 3 000A00\n"      // 9: 10 "." is a valid MX
                    "ok A \\# 4 C0000201\n"     // 10
                    "cn CNAME \\# 2 0100\n"));  // 11: the name's label runs past the end
  INFO(errorOf("a5 A \\# 5 C000020101\n"));
  REQUIRE(e.size() == 4);
  CHECK(e[0] == "z.zone:6: RFC 3597 RDATA of 5 octets is not a valid A RDATA");
  CHECK(e[1] == "z.zone:7: RFC 3597 RDATA of 0 octets is not a valid A RDATA");
  CHECK(e[2] == "z.zone:8: RFC 3597 RDATA of 0 octets is not a valid TXT RDATA");
  CHECK(e[3].rfind("z.zone:11: ", 0) == 0);
  auto r = zones::loadZoneText("example.com", std::string(kHead) +
                                                  "mx MX \\# 3 000A00\n"
                                                  "ok A \\# 4 C0000201\n");
  REQUIRE_OK(r);
}

TEST_CASE("a TXT string longer than 255 octets is split into strings of 255, as Knot does") {
  const std::string long300(300, 'k');
  const std::string esc = std::string(254, 'e') + "\\059b";  // 254 + ';' = 255, then "b"
  auto r = zones::loadZoneText("example.com", std::string(kHead) + "dkim TXT \"" + long300 +
                                                  "\" tail\n"
                                                  "esc TXT \"" +
                                                  esc + "\"\nshort TXT \"\" x\n");
  REQUIRE_OK(r);
  auto rdataOf = [&](const std::string& name) {
    dns::NameBuf n;
    REQUIRE(dns::fromText(name + ".example.com.", n));
    const uint32_t i = r->zone->find(n.data, n.length);
    REQUIRE(i != zones::kNone);
    const zones::RRset* rs = r->zone->rrset(r->zone->node(i), dns::rrtype::kTXT);
    REQUIRE(rs != nullptr);
    const zones::RR& rr = r->zone->rr(rs->first_rr);
    return std::string(reinterpret_cast<const char*>(r->zone->blob(rr.offset)) + 10,
                       rr.length - 10u);
  };
  CHECK(rdataOf("dkim") == std::string(1, '\xff') + std::string(255, 'k') + std::string(1, 45) +
                               std::string(45, 'k') + "\x04tail");
  CHECK(rdataOf("esc") == std::string(1, '\xff') + std::string(254, 'e') + ";" + "\x01" + "b");
  CHECK(rdataOf("short") == std::string("\x00\x01x", 3));
  // A single-string field is not split: HINFO's CPU is one character-string.
  CHECK(errorOf("h HINFO \"" + long300 + "\" linux\n").rfind("z.zone:6: invalid", 0) == 0);
}

TEST_CASE("a stray ')' is reported at its line, and the rest of the file is still read") {
  const auto e = lines(errorOf("a A 192.0.2.1 )\nb A 1.2.3.999\n"));
  REQUIRE(e.size() == 2);
  CHECK(e[0] == "z.zone:6: ')' without a matching '('");
  CHECK(e[1] == "z.zone:7: invalid IPv4 address '1.2.3.999'");
}

TEST_CASE("syntax, escapes and owner inheritance") {
  auto r = zones::loadZoneText("example.com", std::string(kHead) +
                                                  "multi 300 IN A 192.0.2.10\n"
                                                  "  IN 600 AAAA 2001:db8::1 ; inherits 'multi'\n"
                                                  "t TXT \"a;b (c)\" d ; comment\n"
                                                  "x\\032y A 192.0.2.11\n"
                                                  "$ORIGIN sub.example.com.\n"
                                                  "s A 192.0.2.12\n");
  REQUIRE_OK(r);
  CHECK(ttlAt(*r->zone, "multi", dns::rrtype::kAAAA) == 600);
  CHECK(ttlAt(*r->zone, "t", dns::rrtype::kTXT) == 3600);
  CHECK(ttlAt(*r->zone, "s.sub", dns::rrtype::kA) == 3600);
  dns::NameBuf n;
  REQUIRE(dns::fromText("x\\032y.example.com.", n));
  CHECK(r->zone->find(n.data, n.length) != zones::kNone);
}

TEST_CASE("a directory or other non-regular file as a zone path says so") {
  const auto dir = std::filesystem::temp_directory_path() / "meridian-loader-nonregular";
  std::filesystem::create_directories(dir);
  auto r = zones::loadZoneFile("example.com", dir.string());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == dir.string() + ": is a directory, not a zone file");
  r = zones::loadZoneFile("example.com", "/dev/null");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "/dev/null: not a regular file");
  {
    std::ofstream(dir / "main.zone") << kHead << "$INCLUDE sub\n$INCLUDE missing.zone\n";
    std::filesystem::create_directories(dir / "sub");
  }
  r = zones::loadZoneFile("example.com", (dir / "main.zone").string());
  REQUIRE_FALSE(r.has_value());
  const auto e = lines(r.error().message);
  REQUIRE(e.size() == 2);
  CHECK(e[0] == (dir / "main.zone").string() + ":6: $INCLUDE '" + (dir / "sub").string() +
                    "': is a directory, not a zone file");
  CHECK(e[1].find(":7: $INCLUDE") != std::string::npos);
  CHECK(e[1].find("No such file") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("errors in an included file name that file and its line") {
  const auto dir = std::filesystem::temp_directory_path() / "meridian-loader-include-error";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "main.zone") << kHead << "$INCLUDE inc.zone\nbad A 1.2.3\n";
    std::ofstream(dir / "inc.zone") << "ok A 192.0.2.2\n\nbroken 1x A 192.0.2.3\n";
  }
  auto r = zones::loadZoneFile("example.com", (dir / "main.zone").string());
  REQUIRE_FALSE(r.has_value());
  const auto e = lines(r.error().message);
  REQUIRE(e.size() == 2);
  CHECK(e[0].rfind((dir / "inc.zone").string() + ":3: invalid TTL '1x'", 0) == 0);
  CHECK(e[1] == (dir / "main.zone").string() + ":7: invalid IPv4 address '1.2.3'");
  std::filesystem::remove_all(dir);
}

TEST_CASE("a syntax error in the SOA is not also reported as 'no SOA'") {
  auto r = zones::loadZoneText(
      "example.com", "$ORIGIN example.com.\n@ 3600 SOA ns1 h 1 2 3 4 5x\n@ NS ns1\n", "z.zone");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.rfind("z.zone:2: invalid SOA minimum '5x'", 0) == 0);
  CHECK(r.error().message.find("no SOA") == std::string::npos);
}

TEST_CASE("CRLF line ends load; a NUL byte is refused with its line") {
  std::string crlf;
  for (char c : std::string(kHead) + "www A 192.0.2.10 ; c\n") {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto r = zones::loadZoneText("example.com", crlf);
  REQUIRE_OK(r);
  CHECK(r->zone->recordCount() == 4);
  CHECK(errorOf("x A 192.0.2.1\n" + std::string(1, '\0')) ==
        "z.zone:7: NUL byte: this is not a text zone file");
}

TEST_CASE("a file with more than 1000 errors lists the first 1000 and counts the rest") {
  std::string body;
  for (int i = 0; i < 1002; ++i) body.append("x").append(std::to_string(i)).append(" A 1.2.3\n");
  const auto e = lines(errorOf(body));
  REQUIRE(e.size() == 1001);
  CHECK(e[0] == "z.zone:6: invalid IPv4 address '1.2.3'");
  CHECK(e[999] == "z.zone:1005: invalid IPv4 address '1.2.3'");
  CHECK(e[1000] == "... and 2 more errors");
}

namespace {

// Sets the stop flag when it has seen `after` records.
struct StopAfter : zones::RecordObserver {
  std::atomic<bool>& stop;
  uint64_t after;
  uint64_t seen = 0;
  StopAfter(std::atomic<bool>& s, uint64_t n) : stop(s), after(n) {}
  void record(const uint8_t*, uint16_t, uint32_t, const uint8_t*, size_t) override {
    if (++seen == after) stop.store(true);
  }
};

}  // namespace

TEST_CASE("a load gives up within a few thousand records once its stop flag is set",
          "[loader][stop]") {
  std::string text = kHead;
  const uint64_t records = 10 * zones::kLoadStopCheckRecords;
  for (uint64_t i = 0; i < records; ++i) {
    text.push_back('h');  // append(), not "h" + ...: GCC 12 -O3's false -Wrestrict
    text.append(std::to_string(i)).append(" A 192.0.2.7\n");
  }
  std::atomic<bool> stop{false};
  {
    // Not set: the whole zone, as without a scope.
    const zones::LoadStopScope scope(stop);
    auto r = zones::loadZoneText("example.com", text);
    REQUIRE_OK(r);
    CHECK(r->zone->recordCount() == records + 3);
  }
  {
    // Set after 5000 records: abandoned at the next check, nothing returned.
    const zones::LoadStopScope scope(stop);
    StopAfter observer(stop, 5000);
    CHECK_THROWS_AS(zones::loadZoneText("example.com", text, "<text>", observer),
                    zones::LoadAbandoned);
    CHECK(observer.seen >= 5000);
    CHECK(observer.seen < 5000 + zones::kLoadStopCheckRecords);
  }
  {
    // Already set before a small zone's parse ends: abandoned before the zone is built.
    const zones::LoadStopScope scope(stop);
    CHECK_THROWS_AS(zones::loadZoneText("example.com", std::string(kHead)), zones::LoadAbandoned);
  }
  // No scope on this thread (the scope is gone): the flag is not watched.
  auto r = zones::loadZoneText("example.com", text);
  REQUIRE_OK(r);
}
