#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "../testutil.h"
#include "dns/cookie.h"
#include "server/pipeline.h"
#include "zones/loader.h"

using namespace meridian::dns;

namespace {

std::vector<uint8_t> hex(const std::string& h) {
  std::vector<uint8_t> v;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    v.push_back(static_cast<uint8_t>(std::stoul(h.substr(i, 2), nullptr, 16)));
  return v;
}

std::string toHex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

// One RFC 9018 Appendix A exchange: the client's address, its client cookie, the server secret
// and the time the server answered, with the server cookie the RFC prints for that reply.
struct Vector {
  const char* name;
  const char* address;
  const char* client_cookie;
  const char* secret;
  uint32_t now;
  const char* server_cookie;
};

std::vector<uint8_t> addressBytes(const char* text) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, text, buf) == 1) return {buf, buf + 4};
  REQUIRE(inet_pton(AF_INET6, text, buf) == 1);
  return {buf, buf + 16};
}

}  // namespace

// RFC 9018 Appendix A: the four replies, computed with our code, byte for byte.
TEST_CASE("server cookies match the RFC 9018 Appendix A test vectors", "[cookie]") {
  const Vector vectors[] = {
      {"A.1 learning a new server cookie", "198.51.100.100", "2464c4abcf10c957",
       "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559731985, "010000005cf79f111f8130c3eee29480"},
      {"A.2 the same client learning a renewed cookie", "198.51.100.100", "2464c4abcf10c957",
       "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559734385, "010000005cf7a871d4a564a1442aca77"},
      {"A.3 another client learning a renewed cookie", "203.0.113.203", "fc93fc62807ddb86",
       "e5e973e5a6b2a43f48e7dc849e37bfcf", 1559734700, "010000005cf7a9acf73a7810aca2381e"},
      {"A.4 IPv6 query with a rolled-over secret", "2001:db8:220:1:59de:d0f4:8769:82b8",
       "22681ab97d52c298", "445536bcd2513298075a5d379663c962", 1559741961,
       "010000005cf7c609a6bb79d16625507a"},
  };
  for (const auto& v : vectors) {
    INFO(v.name);
    const auto addr = addressBytes(v.address);
    const auto client = hex(v.client_cookie);
    const auto secret = hex(v.secret);
    uint8_t sc[kServerCookieSize];
    makeServerCookie(secret.data(), client.data(), addr.data(), addr.size(), v.now, sc);
    CHECK(toHex(sc, sizeof sc) == v.server_cookie);
    CHECK(validServerCookie(secret.data(), client.data(), sc, sizeof sc, addr.data(), addr.size(),
                            v.now));
  }
}

// RFC 9018 §4.2/§4.3 as Appendix A exercises it: the cookies the clients send back validate —
// A.3's has Reserved octets set (the hash covers them), A.4's was made with the old secret.
TEST_CASE("the server cookies the RFC 9018 Appendix A clients send validate", "[cookie]") {
  {
    INFO("A.2: the cookie from A.1, 40 minutes later");
    const auto addr = addressBytes("198.51.100.100");
    const auto client = hex("2464c4abcf10c957");
    const auto secret = hex("e5e973e5a6b2a43f48e7dc849e37bfcf");
    const auto sc = hex("010000005cf79f111f8130c3eee29480");
    CHECK(validServerCookie(secret.data(), client.data(), sc.data(), sc.size(), addr.data(), 4,
                            1559734385));
  }
  {
    // Checked at its own timestamp (09:46:25): at the reply time, 11:38:20, it is older than the
    // hour §4.3 allows, and the server answers with the fresh cookie of the first test case.
    INFO("A.3: Reserved octets set, still valid");
    const auto addr = addressBytes("203.0.113.203");
    const auto client = hex("fc93fc62807ddb86");
    const auto secret = hex("e5e973e5a6b2a43f48e7dc849e37bfcf");
    auto sc = hex("01abcdef5cf78f71a314227b6679ebf5");
    CHECK(validServerCookie(secret.data(), client.data(), sc.data(), sc.size(), addr.data(), 4,
                            1559727985));
    sc[1] = 0;  // the hash covers the Reserved octets
    CHECK_FALSE(validServerCookie(secret.data(), client.data(), sc.data(), sc.size(), addr.data(),
                                  4, 1559727985));
  }
  {
    INFO("A.4: made with the previous secret");
    const auto addr = addressBytes("2001:db8:220:1:59de:d0f4:8769:82b8");
    const auto client = hex("22681ab97d52c298");
    const auto sc = hex("010000005cf7c57926556bd0934c72f8");
    const auto old_secret = hex("dd3bdf9344b678b185a6f5cb60fca715");
    const auto new_secret = hex("445536bcd2513298075a5d379663c962");
    CHECK(validServerCookie(old_secret.data(), client.data(), sc.data(), sc.size(), addr.data(), 16,
                            1559741961));
    CHECK_FALSE(validServerCookie(new_secret.data(), client.data(), sc.data(), sc.size(),
                                  addr.data(), 16, 1559741961));
  }
}

// The cookie the query pipeline puts in a reply is one the same server recognises when the client
// sends it back (same secret, same client cookie, same address).
TEST_CASE("a server cookie the pipeline issued is recognised", "[cookie]") {
  namespace server = meridian::server;
  auto z = meridian::zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
      "ns1 A 192.0.2.1\n");
  REQUIRE(z.has_value());
  auto s = std::make_shared<server::ServingState>();
  s->zones = meridian::zones::ZoneSet({z->zone});
  for (int i = 0; i < 16; ++i) s->protocol.cookie_secret[i] = static_cast<uint8_t>(0xa0 + i);
  meridian::Published<server::ServingState> state{s};
  server::QueryHandler handler(state);

  for (const bool v6 : {false, true}) {
    INFO((v6 ? "IPv6" : "IPv4"));
    server::Peer peer;
    peer.known = true;
    peer.ipv6 = v6;
    const auto addr = addressBytes(v6 ? "2001:db8::53" : "198.51.100.7");
    std::memcpy(peer.address, addr.data(), addr.size());
    const uint8_t client[8] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57};
    meridian::test::QueryOptions o;
    o.edns = true;
    o.options = {0, 10, 0, 8};
    o.options.insert(o.options.end(), client, client + 8);
    const auto q = meridian::test::makeQuery("ns1.example.com.", rrtype::kA, o);
    uint8_t out[4096];
    const uint32_t before = static_cast<uint32_t>(std::time(nullptr));
    const size_t n =
        handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer);
    const uint32_t after = static_cast<uint32_t>(std::time(nullptr));
    const auto d = meridian::test::decode(out, n);
    REQUIRE(d.rcode == 0);
    REQUIRE(d.opt_data.size() == 4 + 8 + kServerCookieSize);
    const auto* sc = reinterpret_cast<const uint8_t*>(d.opt_data.data()) + 12;
    CHECK(validServerCookie(s->protocol.cookie_secret, client, sc, kServerCookieSize, addr.data(),
                            addr.size(), after));
    // Its timestamp is the time it was issued, and another client (or secret) cannot use it.
    uint32_t ts;
    std::memcpy(&ts, sc + 4, 4);
    ts = ntohl(ts);
    CHECK(ts >= before);
    CHECK(ts <= after);
    auto other = addr;
    other.back() ^= 1;
    CHECK_FALSE(validServerCookie(s->protocol.cookie_secret, client, sc, kServerCookieSize,
                                  other.data(), other.size(), after));
    uint8_t wrong_secret[16] = {};
    CHECK_FALSE(validServerCookie(wrong_secret, client, sc, kServerCookieSize, addr.data(),
                                  addr.size(), after));
  }
}

TEST_CASE("SipHash-2-4 matches the reference vector", "[cookie]") {
  // The SipHash paper's example: key 00..0f, message 00..0e.
  uint8_t key[16], msg[15];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
  CHECK(sipHash24(key, msg, 15) == 0xa129ca6149be45e5ull);
  CHECK(sipHash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);  // empty message, same key
}

TEST_CASE("server cookies validate for the same client and expire", "[cookie]") {
  const uint8_t secret[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const uint8_t client[8] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3};
  const uint8_t ip[4] = {192, 0, 2, 7};
  const uint8_t other_ip[4] = {192, 0, 2, 8};
  uint8_t sc[kServerCookieSize];
  makeServerCookie(secret, client, ip, 4, 1000000, sc);
  CHECK(sc[0] == 1);
  CHECK(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000));
  CHECK(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 + 3600));
  CHECK_FALSE(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 + 3601));  // too old
  CHECK_FALSE(
      validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 - 301));  // from the future
  CHECK_FALSE(
      validServerCookie(secret, client, sc, sizeof sc, other_ip, 4, 1000000));  // another client
  uint8_t other_secret[16] = {};
  CHECK_FALSE(validServerCookie(other_secret, client, sc, sizeof sc, ip, 4, 1000000));
  sc[15] ^= 1;
  CHECK_FALSE(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000));
}

// RFC 7873 §5.2.2-§5.2.5 through the query pipeline: what a query gets for each kind of COOKIE
// option, with server.require_cookie off (the default) and on, over UDP and TCP.
namespace {

uint32_t g_now = 0;
uint32_t testClock() {
  return g_now;
}

struct CookieFixture {
  std::shared_ptr<meridian::server::ServingState> s;
  meridian::Published<meridian::server::ServingState> state;
  std::unique_ptr<meridian::server::QueryHandler> handler;
  meridian::server::Peer peer;
  uint8_t out[4096];

  CookieFixture(bool require, const char* secret_hex, const char* address)
      : s(std::make_shared<meridian::server::ServingState>()), state(s) {
    auto z = meridian::zones::loadZoneText(
        "example.com",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n");
    REQUIRE(z.has_value());
    s->zones = meridian::zones::ZoneSet({z->zone});
    const auto secret = hex(secret_hex);
    std::memcpy(s->protocol.cookie_secret, secret.data(), 16);
    s->protocol.require_cookie = require;
    handler = std::make_unique<meridian::server::QueryHandler>(state);
    handler->setCookieClock(&testClock);
    const auto addr = addressBytes(address);
    peer.known = true;
    peer.ipv6 = addr.size() == 16;
    std::memcpy(peer.address, addr.data(), addr.size());
  }

  // The query with this COOKIE option data; the reply decoded.
  meridian::test::Decoded ask(const std::vector<uint8_t>& cookie,
                              meridian::server::Transport t = meridian::server::Transport::kUdp) {
    meridian::test::QueryOptions o;
    o.edns = true;
    // Built by push_back: GCC 12 at -O3 reports a false -Warray-bounds for an insert after a
    // four-element initializer list here.
    o.options.clear();
    o.options.reserve(4 + cookie.size());
    for (uint8_t b : {uint8_t{0}, uint8_t{10}, uint8_t{0}, static_cast<uint8_t>(cookie.size())}) {
      o.options.push_back(b);
    }
    for (uint8_t b : cookie) o.options.push_back(b);
    const auto q = meridian::test::makeQuery("ns1.example.com.", rrtype::kA, o);
    const size_t n = handler->handle(q.data(), q.size(), out, sizeof out, t, peer);
    return meridian::test::decode(out, n);
  }
};

// The server cookie of a reply's COOKIE option (after the 4-octet option header and the echoed
// 8-octet client cookie), in hex; "" when the reply carries no 24-octet cookie option.
std::string replyServerCookie(const meridian::test::Decoded& d, const std::vector<uint8_t>& sent) {
  if (d.opt_data.size() != 4 + 8 + kServerCookieSize) return "";
  const auto* p = reinterpret_cast<const uint8_t*>(d.opt_data.data());
  if (p[1] != 10 || std::memcmp(p + 4, sent.data(), 8) != 0) return "";
  return toHex(p + 12, kServerCookieSize);
}

std::vector<uint8_t> concat(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  auto v = a;
  v.insert(v.end(), b.begin(), b.end());
  return v;
}

const char* kSecret = "e5e973e5a6b2a43f48e7dc849e37bfcf";

}  // namespace

// RFC 9018 Appendix A.2 and A.3 replayed through the pipeline at the RFC's clock: A.2's client
// returns a valid cookie, A.3's one stamped 1 h 52 min earlier (expired by §4.3), and both get the
// answer with the fresh server cookie the RFC prints; with require_cookie A.3's is a BADCOOKIE.
TEST_CASE("pipeline: RFC 9018 A.2 and A.3 clients get the RFC's fresh cookies", "[cookie]") {
  for (const bool require : {false, true}) {
    INFO("require_cookie " << require);
    {
      CookieFixture f(require, kSecret, "198.51.100.100");
      g_now = 1559734385;
      const auto sent = concat(hex("2464c4abcf10c957"), hex("010000005cf79f111f8130c3eee29480"));
      const auto d = f.ask(sent);
      CHECK(d.rcode == 0);
      CHECK(d.answer.size() == 1);
      CHECK(replyServerCookie(d, sent) == "010000005cf7a871d4a564a1442aca77");
      CHECK(f.handler->counters().cookie_valid.load() == 1);
    }
    {
      CookieFixture f(require, kSecret, "203.0.113.203");
      g_now = 1559734700;
      const auto sent = concat(hex("fc93fc62807ddb86"), hex("01abcdef5cf78f71a314227b6679ebf5"));
      const auto d = f.ask(sent);
      CHECK(d.rcode == (require ? rcode::kBadCookie : 0));
      CHECK(d.answer.size() == (require ? 0u : 1u));
      CHECK(replyServerCookie(d, sent) == "010000005cf7a9acf73a7810aca2381e");
      CHECK(f.handler->counters().cookie_invalid.load() == 1);
      CHECK(f.handler->counters().cookie_valid.load() == 0);
    }
  }
}

TEST_CASE("pipeline: server cookies sent back are validated (RFC 7873 §5.2.3-§5.2.5)", "[cookie]") {
  namespace server = meridian::server;
  const auto client = hex("0102030405060708");
  const auto addr = addressBytes("192.0.2.7");
  const auto secret = hex(kSecret);
  const uint32_t t0 = 1700000000;
  auto issued = [&](uint32_t at) {
    std::vector<uint8_t> sc(kServerCookieSize);
    makeServerCookie(secret.data(), client.data(), addr.data(), 4, at, sc.data());
    return concat(client, sc);
  };
  auto forged = issued(t0);
  forged.back() ^= 1;
  const auto other_secret = [&] {
    std::vector<uint8_t> sc(kServerCookieSize);
    const auto s2 = hex("00000000000000000000000000000001");
    makeServerCookie(s2.data(), client.data(), addr.data(), 4, t0, sc.data());
    return concat(client, sc);
  }();
  struct Case {
    const char* what;
    std::vector<uint8_t> cookie;
    bool valid;
  };
  const Case cases[] = {
      {"client cookie only", client, false},
      {"issued now", issued(t0), true},
      {"issued an hour ago (the oldest §4.3 accepts)", issued(t0 - 3600), true},
      {"issued 5 minutes ahead (the latest §4.3 accepts)", issued(t0 + 300), true},
      {"issued an hour and a second ago: expired", issued(t0 - 3601), false},
      {"stamped 301 s ahead", issued(t0 + 301), false},
      {"hash altered", forged, false},
      {"made with another secret", other_secret, false},
      {"a 32-octet server cookie (not ours: RFC 9018 cookies are 16)",
       concat(client, std::vector<uint8_t>(32, 0x5a)), false},
  };
  for (const bool require : {false, true}) {
    for (const auto& c : cases) {
      INFO(c.what << ", require_cookie " << require);
      CookieFixture f(require, kSecret, "192.0.2.7");
      g_now = t0;
      const auto d = f.ask(c.cookie);
      const bool refused = require && !c.valid;
      CHECK(d.rcode == (refused ? rcode::kBadCookie : 0));
      CHECK(d.answer.size() == (refused ? 0u : 1u));
      // Every reply carries a fresh cookie: stamped now, valid for this client.
      const std::string sc = replyServerCookie(d, c.cookie);
      REQUIRE(sc.size() == 2 * kServerCookieSize);
      const auto scb = hex(sc);
      CHECK(readU32(scb.data() + 4) == t0);
      CHECK(validServerCookie(secret.data(), client.data(), scb.data(), scb.size(), addr.data(), 4,
                              t0));
      const auto& k = f.handler->counters();
      CHECK(k.cookie_valid.load() == (c.valid ? 1u : 0u));
      CHECK(k.cookie_client_only.load() == (c.cookie.size() == 8 ? 1u : 0u));
      CHECK(k.cookie_invalid.load() == (!c.valid && c.cookie.size() != 8 ? 1u : 0u));
      CHECK(k.rcodes[rcode::kBadCookie].load() == (refused ? 1u : 0u));
      // TCP proves the source address: always answered.
      const auto dt = f.ask(c.cookie, server::Transport::kTcp);
      CHECK(dt.rcode == 0);
      CHECK(dt.answer.size() == 1);
    }
  }
}

TEST_CASE("pipeline: COOKIE lengths other than 8 and 16..40 are FORMERR (RFC 7873 §5.2.2)",
          "[cookie]") {
  for (const bool require : {false, true}) {
    CookieFixture f(require, kSecret, "192.0.2.7");
    g_now = 1700000000;
    for (const size_t len : {0, 1, 7, 9, 15, 41, 48}) {
      INFO("length " << len << ", require_cookie " << require);
      const auto d = f.ask(std::vector<uint8_t>(len, 0x11));
      CHECK(d.rcode == rcode::kFormErr);
      CHECK(d.has_opt);
      CHECK(d.opt_data.empty());  // RFC 6891 §7: the OPT without the options that were malformed
    }
    for (const size_t len : {8, 16, 40}) {
      INFO("length " << len << ", require_cookie " << require);
      const auto d = f.ask(std::vector<uint8_t>(len, 0x11));
      CHECK(d.rcode == (require ? rcode::kBadCookie : 0));
    }
  }
}

TEST_CASE("checkCookie classifies COOKIE options", "[cookie]") {
  const auto secret = hex(kSecret);
  const auto client = hex("0102030405060708");
  const uint8_t ip[4] = {192, 0, 2, 7};
  uint8_t opt[24];
  std::memcpy(opt, client.data(), 8);
  makeServerCookie(secret.data(), client.data(), ip, 4, 1000, opt + 8);
  CHECK(checkCookie(secret.data(), opt, 0, ip, 4, 1000) == CookieStatus::kNone);
  CHECK(checkCookie(secret.data(), opt, 8, ip, 4, 1000) == CookieStatus::kClientOnly);
  CHECK(checkCookie(secret.data(), opt, 24, ip, 4, 1000) == CookieStatus::kValid);
  CHECK(checkCookie(secret.data(), opt, 24, ip, 4, 1000 + 3601) == CookieStatus::kInvalid);
  CHECK(checkCookie(secret.data(), opt, 20, ip, 4, 1000) == CookieStatus::kInvalid);
  CHECK(checkCookie(secret.data(), opt, 12, ip, 4, 1000) == CookieStatus::kInvalid);
}
