// The loader's native RDATA conversion (zones/loader.cc: NS, CNAME, DNAME, PTR, MX, TXT, SPF, SOA,
// SRV, CAA, A, AAAA) against ldns's text parser, which converted every type before it: each record
// below is loaded once per RdataPath, and the two zones must serve the same octets (equal content
// digests over owner, type, TTL and RDATA), or both be refused with the same file:line message.
#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "zones/loader.h"

using namespace meridian;

namespace {

const std::string kOrigin = "$ORIGIN example.com.\n$TTL 3600\n";
const std::string kSoa = "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n";
const std::string kRest = "@ NS ns1\nns1 A 192.0.2.1\n";

struct Both {
  Result<zones::LoadedZone> native, ldns;
};

Both loadBoth(const std::string& text) {
  return {zones::loadZoneText("example.com", text, "z.zone", zones::RdataPath::kNative),
          zones::loadZoneText("example.com", text, "z.zone", zones::RdataPath::kLdns)};
}

// A record at `r.example.com.` beside the apex records.
std::string withRecord(const std::string& record) {
  return kOrigin + kSoa + kRest + record + "\n";
}

std::string repeat(const std::string& s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

TEST_CASE("native RDATA equals ldns's for every supported type and form", "[zones][rdata]") {
  const std::string label63 = repeat("a", 63);
  // 4 labels of 63 + "example.com." does not fit; 3 of 63 and one of 48 make 253 + root = 255
  // octets absolute.
  const std::string name255 = label63 + "." + label63 + "." + label63 + "." + repeat("b", 61) + ".";
  const std::vector<std::string> records = {
      "r A 192.0.2.1",
      "r AAAA 2001:db8::1",
      "r AAAA ::ffff:192.0.2.1",
      "r NS ns1",
      "r NS ns1.example.net.",
      "r NS @",
      "r NS .",
      "r NS Mixed.Case.Example.",
      "r NS a\\.b",
      "r NS \\065\\066c.example.net.",
      "r NS \\(x\\)",
      "r NS " + label63,
      "r NS " + name255,
      "r 300 IN NS ns1",
      "r IN 300 NS ns1",
      "r CNAME host",
      "r CNAME host.example.org.",
      "r CNAME @",
      "r DNAME other.example.net.",
      "r DNAME @",
      "r PTR host.example.net.",
      "r PTR 1.2.0.192.in-addr.arpa.",
      "r MX 10 mail",
      "r MX 0 .",
      "r MX 65535 mail.example.net.",
      "r MX 010 mail",
      "r MX ( 10\n mail )",
      "r SRV 0 5 5060 sip.example.net.",
      "r SRV 65535 65535 65535 .",
      "r SRV 1 2 3 target",
      "r TXT \"\"",
      "r TXT \"a b ; c\"",
      "r TXT unquoted",
      "r TXT a b c",
      "r TXT \"x\" \"y\" z",
      "r TXT \"\" \"\" \"\"",
      "r TXT \"\\\"quoted\\\"\"",
      "r TXT \"\\065\\066\\255\\000\"",
      "r TXT \"\\\\\"",
      "r TXT \"semi\\;colon\"",
      "r TXT semi\\;colon",
      "r TXT \"@\"",
      "r TXT @",
      "r TXT \"h\xc3\xa9llo\"",
      "r TXT \"tab\\009end\"",
      "r TXT \"(paren)\"",
      "r TXT \"" + repeat("x", 255) + "\"",
      "r TXT \"" + repeat("x", 256) + "\"",
      "r TXT \"" + repeat("y", 600) + "\" tail",
      "r TXT \"" + repeat("\\120", 255) + "\"",
      "r TXT \"" + repeat("\\120", 300) + "\"",
      "r TXT " + repeat("z", 300),
      "r TXT ( \"v=DKIM1; k=rsa; \"\n  \"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ\" )",
      "r SPF \"v=spf1 -all\"",
      "r CAA 0 issue \"letsencrypt.org\"",
      "r CAA 128 tbs \"Unknown\"",
      "r CAA 0 iodef \"mailto:security@example.com\"",
      "r CAA 0 issue \"\"",
      "r CAA 0 issuewild \"ca.example; account=123\"",
      "r CAA 0 Issue \"x\"",
      "r CAA 0 abcdefghijklmnop \"v\"",
      "r CAA 0 issue \"esc\\\"aped\\059\"",
      "r CAA 255 issue \"" + repeat("v", 300) + "\"",
  };
  size_t checked = 0;
  for (const std::string& record : records) {
    INFO(record);
    const Both b = loadBoth(withRecord(record));
    REQUIRE(b.ldns.has_value());
    REQUIRE(b.native.has_value());
    CHECK(b.native->zone->digest() == b.ldns->zone->digest());
    CHECK(b.native->zone->recordCount() == b.ldns->zone->recordCount());
    CHECK(b.native->rdata_via_ldns == 0);  // the native path did them all
    CHECK(b.ldns->rdata_via_ldns == 4);    // SOA, NS, A and the record
    ++checked;
  }
  CHECK(checked == records.size());

  const std::vector<std::string> soas = {
      "@ SOA ns1 hostmaster 2024010101 7200 3600 1209600 300",
      "@ SOA ns1.example.com. host\\.master.example.com. 4294967295 1h30m 2W 1d 0",
      "@ SOA . . 0 0 0 0 0",
      "@ SOA ns1 hostmaster ( 1 ; serial\n 2h ; refresh\n 3m 4w 5s )",
      "@ SOA @ @ 7 2147483647 1 1 1",
  };
  for (const std::string& soa : soas) {
    INFO(soa);
    const Both b = loadBoth(kOrigin + soa + "\n" + kRest);
    REQUIRE(b.ldns.has_value());
    REQUIRE(b.native.has_value());
    CHECK(b.native->zone->digest() == b.ldns->zone->digest());
    CHECK(b.native->zone->serial() == b.ldns->zone->serial());
    CHECK(b.native->rdata_via_ldns == 0);
  }

  // A type with no native conversion, a form the native path declines (a quoted name, which ldns
  // reads) and RFC 3597 RDATA of a native type go through ldns, the same on both paths.
  for (const std::string record :
       {"r HINFO \"PC\" \"Linux\"", "r CNAME \"quoted\"", "r MX \\# 8 000A046D61696C00"}) {
    INFO(record);
    const Both b = loadBoth(withRecord(record));
    REQUIRE(b.ldns.has_value());
    REQUIRE(b.native.has_value());
    CHECK(b.native->rdata_via_ldns == 1);
    CHECK(b.native->zone->digest() == b.ldns->zone->digest());
  }
}

TEST_CASE("native RDATA: invalid records keep ldns-path file:line errors", "[zones][rdata]") {
  const std::vector<std::string> records = {
      "r MX 65536 mail",
      "r MX -1 mail",
      "r MX 10",
      "r MX 10 mail extra",
      "r MX mail 10",
      "r MX \"10\" mail",
      "r NS bad..name",
      "r NS " + repeat("a", 64),
      "r NS " + repeat("abcdefgh.", 31),
      "r NS",
      "r NS a b",
      "r SRV 1 2 mail",
      "r SRV 1 2 70000 t",
      "r SRV 1 2 3 t extra",
      "r TXT \"\\256\"",
      "r TXT \"bad\\1\"",
      "r TXT \"bad\\12x\"",
      "r CAA 256 issue \"x\"",
      "r CAA 0 is-sue \"x\"",
      "r CAA 0 issue",
      "r CAA 0 issue a b",
      "r CAA 0 issue ca.example.net",  // ldns wants the value quoted
      "r A 300.1.1.1",
      "r A 192.0.2.1 192.0.2.2",
      "r AAAA 1::2::3",
      "r PTR 1..2",
      "r DNAME \\999x",
  };
  for (const std::string& record : records) {
    INFO(record);
    const Both b = loadBoth(withRecord(record));
    REQUIRE_FALSE(b.ldns.has_value());
    REQUIRE_FALSE(b.native.has_value());
    CHECK(b.native.error().message == b.ldns.error().message);
    CHECK(b.native.error().message.rfind("z.zone:6: ", 0) == 0);
  }
  const std::vector<std::string> soas = {
      "@ SOA ns1 h 1 2 3 4",
      "@ SOA ns1 h 1 2 3 4 5x",
      "@ SOA ns1 h 4294967296 2 3 4 5",
      "@ SOA ns1 h 1 2 3 4 2147483648",
      "@ SOA ns1 h 1 2 3 4 5 6",
  };
  for (const std::string& soa : soas) {
    INFO(soa);
    const Both b = loadBoth(kOrigin + soa + "\n" + kRest);
    REQUIRE_FALSE(b.ldns.has_value());
    REQUIRE_FALSE(b.native.has_value());
    CHECK(b.native.error().message == b.ldns.error().message);
    CHECK(b.native.error().message.rfind("z.zone:3: ", 0) == 0);
  }
}

TEST_CASE("native RDATA equals ldns's on generated records", "[zones][rdata]") {
  // Seeded, so every run checks the same 1500 records: names with escapes and odd labels, TXT
  // strings of any octet, length and quoting, numbers in and out of range. Each must load to the
  // same octets on both paths, or be refused by both with the same message.
  std::mt19937 rng(20261201);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto escape = [&]() -> std::string {
    switch (pick(4)) {
      case 0: {
        const size_t v = pick(10) == 0 ? 256 + pick(700) : pick(256);  // sometimes above 255
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\%03zu", v);
        return buf;
      }
      case 1:
        return "\\\"";
      case 2:
        return "\\\\";
      default:
        return std::string("\\") + "a.;( "[pick(5)];
    }
  };
  auto name = [&]() -> std::string {
    if (pick(12) == 0) return "@";
    std::string n;
    const size_t labels = 1 + pick(4);
    for (size_t l = 0; l < labels; ++l) {
      if (l > 0) n += '.';
      const size_t len = pick(20) == 0 ? 60 + pick(8) : 1 + pick(10);  // sometimes over 63
      for (size_t k = 0; k < len; ++k) {
        n += pick(15) == 0 ? escape() : std::string(1, "abcXYZ019-_"[pick(11)]);
      }
    }
    if (pick(3) == 0) n += '.';
    if (pick(40) == 0) n += ".";  // an empty label
    return n;
  };
  auto text = [&]() -> std::string {
    const bool quoted = pick(4) != 0;
    const size_t len = pick(8) == 0 ? 200 + pick(400) : pick(30);
    std::string s = quoted ? "\"" : "";
    for (size_t k = 0; k < len; ++k) {
      if (pick(10) == 0) {
        s += escape();
      } else if (quoted) {
        s += " ;()abz\x7f\xc3\xa9"[pick(10)];
      } else {
        s += "abz09=:@-"[pick(9)];
      }
    }
    if (!quoted && s.empty()) s = "x";
    return quoted ? s + "\"" : s;
  };
  auto number = [&](uint64_t max) -> std::string {
    switch (pick(10)) {
      case 0:
        return std::to_string(max + 1 + pick(10));
      case 1:
        return "-1";
      case 2:
        return "1x";
      default:
        return std::to_string(rng() % (max + 1));
    }
  };
  size_t valid = 0;
  const size_t total = 1500;
  for (size_t i = 0; i < total; ++i) {
    std::string rdata;
    const char* type = "";
    switch (pick(8)) {
      case 0:
        type = "NS";
        rdata = name();
        break;
      case 1:
        type = pick(2) ? "CNAME" : "DNAME";
        rdata = name();
        break;
      case 2:
        type = "PTR";
        rdata = name();
        break;
      case 3:
        type = "MX";
        rdata = number(65535) + " " + name();
        break;
      case 4:
        type = "SRV";
        rdata = number(65535) + " " + number(65535) + " " + number(65535) + " " + name();
        break;
      case 5:
        type = "CAA";
        rdata = number(255) + " " + (pick(8) == 0 ? "is-sue" : "issue") + " " + text();
        break;
      default: {
        type = pick(10) == 0 ? "SPF" : "TXT";
        const size_t strings = 1 + pick(4);
        for (size_t k = 0; k < strings; ++k) {
          if (k) rdata += ' ';  // not `" " + text()`: GCC 12's -Wrestrict false positive at -O3
          rdata += text();
        }
        break;
      }
    }
    const std::string record = std::string("r ") + type + " " + rdata;
    INFO(record);
    const Both b = loadBoth(withRecord(record));
    REQUIRE(b.native.has_value() == b.ldns.has_value());
    if (b.native.has_value()) {
      CHECK(b.native->zone->digest() == b.ldns->zone->digest());
      valid += b.native->rdata_via_ldns == 0;
    } else {
      CHECK(b.native.error().message == b.ldns.error().message);
    }
  }
  // Most generated records are valid and converted natively: the comparison is not vacuous.
  CHECK(valid > total / 2);
}
