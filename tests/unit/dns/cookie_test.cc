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
