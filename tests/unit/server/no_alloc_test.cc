// The authoritative hot path allocates nothing per query (STYLE.md, DESIGN.md): count every
// operator new in this binary and require zero across warm handle() calls, static and steered.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <new>

#include "../georoute/steering_fixture.h"
#include "../testutil.h"
#include "app/steering_config.h"
#include "server/pipeline.h"
#include "zones/loader.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace meridian;

TEST_CASE("no allocation per query on the answer path", "[alloc]") {
  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n@ MX 10 mail\n"
      "ns1 A 192.0.2.1\nmail A 192.0.2.2\nwww A 192.0.2.3\na CNAME www\n*.w TXT \"x\"\n"
      "sub NS ns.sub\nns.sub A 192.0.2.4\nold DNAME example.com.\n");
  REQUIRE_OK(z);
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet({z->zone});
  state->protocol.nsid = "ns";

  // A steered service with the City test database.
  app::SteeringConfig cfg;
  cfg.geoip = std::string(MERIDIAN_SHARED_DIR) + "/geoip/GeoIP2-City-Test.mmdb";
  cfg.regions = {{"eu", 50, 8, 0}, {"us", 39, -77, 0}};
  app::ServiceConfig s;
  s.name = "www.example.com";
  s.policy = {"up", "geo", "nearest", "latency", "weighted", "first_n"};
  s.geo.continent = {{"EU", {"eu"}}};
  s.geo.default_list = {"us"};
  s.geo.cidr = {{"10.0.0.0/8", {"us"}}};
  for (const auto& [region, addr] : std::vector<std::pair<std::string, std::string>>{
           {"eu", "198.51.100.1"}, {"us", "198.51.100.2"}, {"us", "2001:db8::2"}}) {
    s.pools.push_back(test::pool(region, addr));
  }
  cfg.services.push_back(s);
  auto compiled = app::loadSteering(cfg, state->zones);
  REQUIRE_OK(compiled);
  state->services = compiled->services;

  Published<server::ServingState> published{state};
  Published<healthcheck::StateTable> health{std::make_shared<const healthcheck::StateTable>()};
  server::QueryHandler handler(published, &health);
  static uint8_t out[65535];

  test::QueryOptions edns;
  edns.edns = true;
  edns.options = {0, 3, 0, 0, 0, 8, 0, 7, 0, 1, 24, 0, 81, 2, 69};  // NSID + ECS 81.2.69.0/24
  // ... + COOKIE (client part only): the reply carries a fresh server cookie.
  edns.options.insert(edns.options.end(), {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8});
  const std::vector<std::vector<uint8_t>> queries = {
      test::makeQuery("www.example.com.", dns::rrtype::kA),
      test::makeQuery("www.example.com.", dns::rrtype::kA, edns),
      test::makeQuery("www.example.com.", dns::rrtype::kAAAA, edns),
      test::makeQuery("example.com.", dns::rrtype::kMX, edns),
      test::makeQuery("a.example.com.", dns::rrtype::kA),
      test::makeQuery("a.example.com.", dns::rrtype::kA, edns),  // a CNAME into the service
      test::makeQuery("www.example.com.", dns::rrtype::kMX),     // a type it does not steer
      test::makeQuery("q.w.example.com.", dns::rrtype::kTXT),
      test::makeQuery("nothing.example.com.", dns::rrtype::kA),
      test::makeQuery("x.sub.example.com.", dns::rrtype::kA),
      test::makeQuery("x.old.example.com.", dns::rrtype::kA),
      test::makeQuery("example.org.", dns::rrtype::kA),
      test::makeQuery("example.com.", dns::rrtype::kANY),
  };
  server::Peer peer;
  peer.known = true;
  peer.address[0] = 127;
  peer.address[3] = 1;
  // Warm up (the first call may refresh the per-worker snapshot copies).
  for (const auto& q : queries)
    (void)handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer);
  for (size_t i = 0; i < queries.size(); ++i) {
    for (auto t : {server::Transport::kUdp, server::Transport::kTcp}) {
      const uint64_t b = g_allocations.load();
      (void)handler.handle(queries[i].data(), queries[i].size(), out, sizeof out, t, peer);
      const uint64_t used = g_allocations.load() - b;
      INFO("query " << i << (t == server::Transport::kTcp ? " tcp" : " udp") << " allocated "
                    << used);
      CHECK(used == 0);
    }
  }
  const uint64_t before = g_allocations.load();
  size_t answered = 0;
  for (int round = 0; round < 100; ++round) {
    for (const auto& q : queries) {
      answered +=
          handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer) > 0;
      answered +=
          handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kTcp, peer) > 0;
    }
  }
  const uint64_t after = g_allocations.load();
  CHECK(answered == 100 * 2 * queries.size());
  CHECK(after - before == 0);
  // The counter does see allocations (the check above can fail).
  const uint64_t base = g_allocations.load();
  auto* probe = new int(1);
  const uint64_t counted = g_allocations.load() - base;
  delete probe;
  CHECK(counted == 1);
}

TEST_CASE("no allocation per query with response rate limiting on", "[alloc][rrl]") {
  auto z = zones::loadZoneText(
      "example.com",
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
      "www A 192.0.2.3\n*.w TXT \"x\"\nsub NS ns.sub\nns.sub A 192.0.2.4\n");
  REQUIRE_OK(z);
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet({z->zone});
  state->protocol.rrl.enabled = true;
  state->protocol.rrl.responses_per_second = 5;
  state->protocol.rrl.slip = 2;
  state->protocol.rrl.window = 1;
  server::RrlNetwork exempt;  // 10.0.0.0/8: checked on every query, never matching here
  exempt.prefix = 8;
  exempt.address[0] = 10;
  state->protocol.rrl.exempt.push_back(exempt);
  Published<server::ServingState> published{state};
  server::QueryHandler handler(published);
  static uint8_t out[65535];

  test::QueryOptions edns;
  edns.edns = true;
  const std::vector<std::vector<uint8_t>> queries = {
      test::makeQuery("www.example.com.", dns::rrtype::kA),        // positive
      test::makeQuery("www.example.com.", dns::rrtype::kA, edns),  // slip keeps the OPT
      test::makeQuery("www.example.com.", dns::rrtype::kMX),       // NODATA
      test::makeQuery("q.w.example.com.", dns::rrtype::kTXT),      // wildcard
      test::makeQuery("nothing.example.com.", dns::rrtype::kA),    // NXDOMAIN
      test::makeQuery("x.sub.example.com.", dns::rrtype::kA),      // referral
      test::makeQuery("example.org.", dns::rrtype::kA),            // REFUSED
  };
  server::Peer v4;
  v4.known = true;
  v4.address[0] = 192;
  v4.address[1] = 0;
  v4.address[2] = 2;
  v4.address[3] = 77;
  server::Peer v6;
  v6.known = true;
  v6.ipv6 = true;
  v6.address[0] = 0x20;
  v6.address[1] = 0x01;
  v6.address[15] = 1;
  for (const auto& q : queries)
    (void)handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, v4);
  const uint64_t before = g_allocations.load();
  for (int round = 0; round < 200; ++round) {
    for (const auto& q : queries) {
      for (const server::Peer* p : {&v4, &v6}) {
        (void)handler.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, *p);
      }
    }
  }
  CHECK(g_allocations.load() - before == 0);
  // All three verdicts were taken on the way.
  CHECK(handler.counters().rrl_slipped.load() > 0);
  CHECK(handler.counters().rrl_dropped.load() > 0);
  CHECK(handler.counters().rcodes[0].load() > 0);
}
