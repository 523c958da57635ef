// Never a crash on any input: mutated and random packets through the pipeline (fixed seed, so a
// failure reproduces). Each reply must parse, be a response, keep the query ID and fit the limit.
#include <catch2/catch.hpp>
#include <random>

#include "../testutil.h"
#include "server/pipeline.h"
#include "serving.h"
#include "zones/loader.h"

using namespace meridian;

TEST_CASE("mutated and random packets never crash and get well-formed replies") {
  auto z =
      zones::loadZoneText("example.com",
                          "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
                          "@ MX 10 mail\nns1 A 192.0.2.1\nmail A 192.0.2.2\na CNAME b\nb CNAME a\n"
                          "*.w TXT \"x\"\nsub NS ns.sub\nns.sub A 192.0.2.4\n");
  REQUIRE_OK(z);
  Published<server::ServingState> state{test::servingState({z->zone})};
  server::QueryHandler h(state);
  static uint8_t out[65535];

  std::mt19937 rng(20261128);
  test::QueryOptions o;
  o.edns = true;
  o.options = {0, 3, 0, 0, 0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2};
  const std::vector<std::vector<uint8_t>> seeds = {
      test::makeQuery("www.example.com.", dns::rrtype::kA),
      test::makeQuery("x.w.example.com.", dns::rrtype::kTXT, o),
      test::makeQuery("a.example.com.", dns::rrtype::kA, o),
      test::makeQuery("deep.sub.example.com.", dns::rrtype::kMX),
  };
  int answered = 0;
  for (int i = 0; i < 300000; ++i) {
    std::vector<uint8_t> p;
    if (i % 10 == 0) {
      p.resize(rng() % 300);
      for (auto& b : p) b = static_cast<uint8_t>(rng());
    } else {
      p = seeds[rng() % seeds.size()];
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        switch (rng() % 4) {
          case 0:
            p[rng() % p.size()] = static_cast<uint8_t>(rng());
            break;
          case 1:
            p.resize(rng() % (p.size() + 1));
            break;
          case 2:
            p.insert(p.begin() + static_cast<long>(rng() % (p.size() + 1)),
                     static_cast<uint8_t>(rng()));
            break;
          default:
            if (p.size() > 12) p[12 + rng() % (p.size() - 12)] = 0xC0;
            break;
        }
        if (p.empty()) break;
      }
    }
    const auto transport = (i & 1) ? server::Transport::kTcp : server::Transport::kUdp;
    const size_t n = h.handle(p.data(), p.size(), out, sizeof out, transport);
    if (n == 0) continue;
    ++answered;
    if (transport == server::Transport::kUdp) REQUIRE(n <= 1232);
    REQUIRE(n >= 12);
    REQUIRE((out[2] & 0x80) != 0);  // QR
    REQUIRE(out[0] == p[0]);        // ID echoed
    REQUIRE(out[1] == p[1]);
    if (i % 20 == 0) REQUIRE(test::decode(out, n).ok);  // a real parser accepts the reply
  }
  CHECK(answered > 100000);
  // Still serving normally afterwards.
  auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
  auto d =
      test::decode(out, h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp));
  CHECK(d.rcode == 3);  // www does not exist in this zone
  CHECK(d.aa);
}
