#include <catch2/catch.hpp>
#include <cstring>

#include "dns/name.h"

using namespace meridian::dns;

TEST_CASE("name text round trip with escapes") {
  NameBuf n;
  REQUIRE(fromText("Www.Example.COM.", n));
  CHECK(n.label_count == 3);
  CHECK(n.length == 17);
  CHECK(toText(n.data) == "Www.Example.COM.");
  REQUIRE(fromText("a\\.b.c\\032d.", n));
  CHECK(n.label_count == 2);
  CHECK(toText(n.data) == "a\\.b.c\\032d.");
  CHECK_FALSE(fromText("a..b.", n));
  CHECK_FALSE(fromText(std::string(64, 'a') + ".", n));
  CHECK_FALSE(fromText("a\\25", n));
}

TEST_CASE("relative names take the origin") {
  NameBuf origin, n;
  REQUIRE(fromText("example.com.", origin));
  REQUIRE(fromText("www", n, &origin));
  CHECK(toText(n.data) == "www.example.com.");
  REQUIRE(fromText("@", n, &origin));
  CHECK(toText(n.data) == "example.com.");
}

TEST_CASE("parseName follows backward pointers and refuses loops") {
  // header(12) + "example.com." at 12, then a pointer to it at 25, then a self-pointer at 27.
  uint8_t pkt[64] = {};
  const uint8_t name[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  std::memcpy(pkt + 12, name, sizeof name);
  pkt[25] = 1;
  pkt[26] = 'w';
  pkt[27] = 0xC0;
  pkt[28] = 12;
  NameBuf out;
  size_t end = 0;
  REQUIRE(parseName(pkt, 29, 25, out, &end) == NameStatus::kOk);
  CHECK(end == 29);
  CHECK(toText(out.data) == "w.example.com.");
  pkt[29] = 0xC0;
  pkt[30] = 29;  // points at itself
  CHECK(parseName(pkt, 31, 29, out, &end) == NameStatus::kPointerLoop);
  pkt[31] = 0xC0;
  pkt[32] = 40;  // points forward
  CHECK(parseName(pkt, 33, 31, out, &end) == NameStatus::kPointerLoop);
  CHECK(parseName(pkt, 20, 12, out, &end) == NameStatus::kTruncated);
  pkt[40] = 0x40;  // extended label type
  CHECK(parseName(pkt, 41, 40, out, &end) == NameStatus::kBadLabel);
}

// fuzz_response found skipName accepting what parseName refuses: a pointer that goes backwards from
// where it stands but into the name's own first label. Both refuse it now.
TEST_CASE("skipName and parseName agree on a pointer into the name's own labels") {
  // "example.com." at 12; at 25 a label of 6 octets whose content is itself "\3n%1" + a pointer to
  // 12, then a pointer to 26, inside that label.
  uint8_t pkt[64] = {};
  const uint8_t name[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0};
  std::memcpy(pkt + 12, name, sizeof name);
  const uint8_t inner[] = {6, 3, 'n', '%', '1', 0xC0, 12, 0xC0, 26};
  std::memcpy(pkt + 25, inner, sizeof inner);
  NameBuf out;
  size_t end = 0;
  CHECK(parseName(pkt, 34, 25, out, &end) == NameStatus::kPointerLoop);
  CHECK(skipName(pkt, 34, 25, &end) == NameStatus::kPointerLoop);
  // From 26 the same octets are a name of their own ("n%1.example.com."), which both accept.
  CHECK(parseName(pkt, 34, 26, out, &end) == NameStatus::kOk);
  CHECK(skipName(pkt, 34, 26, &end) == NameStatus::kOk);
  CHECK(end == 32);
}

TEST_CASE("names longer than 255 octets are refused") {
  uint8_t pkt[400] = {};
  size_t pos = 0;
  for (int i = 0; i < 5; ++i) {
    pkt[pos++] = 63;
    std::memset(pkt + pos, 'a', 63);
    pos += 63;
  }
  pkt[pos++] = 0;
  NameBuf out;
  size_t end = 0;
  CHECK(parseName(pkt, pos, 0, out, &end) == NameStatus::kTooLong);
}

TEST_CASE("isSubdomain is label aligned") {
  NameBuf a, b, c;
  REQUIRE(fromText("www.example.com.", a));
  REQUIRE(fromText("example.com.", b));
  REQUIRE(fromText("ample.com.", c));
  CHECK(isSubdomain(a.data, a.length, b.data, b.length));
  CHECK(isSubdomain(b.data, b.length, b.data, b.length));
  CHECK_FALSE(isSubdomain(b.data, b.length, a.data, a.length));
  // "xample.com" bytes are a suffix of "example.com" but not on a label boundary.
  NameBuf d;
  REQUIRE(fromText("xample.com.", d));
  CHECK_FALSE(isSubdomain(b.data, b.length, d.data, d.length));
}

// lowerCopy lowercases eight octets at a time (the question name of every query); it must agree
// with the octet-by-octet rule for every octet value (non-ASCII octets and the label lengths are
// left alone), at every length and alignment, in place too.
TEST_CASE("lowerCopy agrees with asciiLower for every octet, length and offset", "[name]") {
  uint8_t src[300];
  for (size_t i = 0; i < sizeof src; ++i) src[i] = static_cast<uint8_t>((i * 167u + 13u) & 0xFF);
  for (size_t off = 0; off < 8; ++off) {
    for (size_t n = 0; n + off <= sizeof src && n <= 255 + 8; ++n) {
      uint8_t got[300];
      lowerCopy(got, src + off, n);
      bool same = true;
      for (size_t i = 0; i < n; ++i) same = same && got[i] == asciiLower(src[off + i]);
      INFO("offset " << off << " length " << n);
      REQUIRE(same);
    }
  }
  uint8_t all[256];
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  lowerCopy(all, all, sizeof all);  // in place
  for (int i = 0; i < 256; ++i) {
    INFO("octet " << i);
    CHECK(all[i] == ((i >= 'A' && i <= 'Z') ? i + 32 : i));
  }
}
