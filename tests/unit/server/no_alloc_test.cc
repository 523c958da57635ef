// The authoritative hot path allocates nothing per query (STYLE.md, DESIGN.md): count every
// operator new in this binary and require zero across warm handle() calls, static and steered.
// Frees are counted too, per thread: a worker that answers across reloads must neither allocate
// nor free (old snapshots are retired on the control thread, core/snapshot.h).
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>

#include "../georoute/steering_fixture.h"
#include "../testutil.h"
#include "georoute/compile.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
thread_local uint64_t t_allocations = 0;
thread_local uint64_t t_frees = 0;
void countFree(void* p) {
  if (p != nullptr) ++t_frees;
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  countFree(p);
}
void operator delete[](void* p) noexcept {
  countFree(p);
}
void operator delete(void* p, std::size_t) noexcept {
  countFree(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  countFree(p);
}

// The count for this binary's other test files (tests/unit/resolver/cache_no_alloc_test.cc).
uint64_t allocationsOnThisThread() {
  return t_allocations;
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
  georoute::SteeringConfig cfg;
  cfg.geoip = std::string(MERIDIAN_SHARED_DIR) + "/geoip/GeoIP2-City-Test.mmdb";
  cfg.regions = {{"eu", 50, 8, 0}, {"us", 39, -77, 0}};
  georoute::ServiceConfig s;
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
  auto compiled = georoute::loadSteering(cfg, server::zoneLocator(state->zones));
  REQUIRE_OK(compiled);
  state->services = compiled->services;
  state->health = std::make_shared<const healthcheck::Verdicts>(compiled->targets.size());

  QuiescentDomain domain;
  Published<server::ServingState> published{state, domain};
  server::QueryHandler handler(published);
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
  const uint64_t base_frees = t_frees;
  auto* probe = new int(1);
  const uint64_t counted = g_allocations.load() - base;
  delete probe;
  CHECK(counted == 1);
  CHECK(t_frees - base_frees == 1);

  SECTION("a worker thread answering across reloads neither allocates nor frees") {
    // The worker: its own QueryHandler on its own thread, registered with the domain, passing a
    // quiescent point before each batch of queries as server/server.cc's workers do.
    std::atomic<bool> measuring{false};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> rounds{0};
    uint64_t worker_allocs = 0, worker_frees = 0, worker_answered = 0, worker_asked = 0;
    std::thread::id worker_id;
    std::thread worker([&] {
      worker_id = std::this_thread::get_id();
      QuiescentDomain::Slot* slot = domain.enter();
      server::QueryHandler w(published);
      static uint8_t wout[65535];
      for (const auto& q : queries)
        (void)w.handle(q.data(), q.size(), wout, sizeof wout, server::Transport::kUdp, peer);
      const uint64_t a0 = t_allocations;
      const uint64_t f0 = t_frees;
      measuring = true;
      while (!stop.load(std::memory_order_relaxed)) {
        domain.quiescent(*slot);
        for (const auto& q : queries) {
          for (auto t : {server::Transport::kUdp, server::Transport::kTcp}) {
            ++worker_asked;
            worker_answered += w.handle(q.data(), q.size(), wout, sizeof wout, t, peer) > 0;
          }
        }
        rounds.fetch_add(1, std::memory_order_relaxed);
      }
      worker_allocs = t_allocations - a0;
      worker_frees = t_frees - f0;
      domain.leave(slot);
    });
    while (!measuring.load()) std::this_thread::yield();
    // Reloads on this (control) thread in the middle of the worker's queries; each old snapshot
    // (its zone set and service tables) is destroyed here once the worker moved past it.
    // Shared with the deleters: the last snapshot goes with `published`, after this scope.
    struct FreeLog {
      std::mutex m;
      std::vector<std::thread::id> threads;
    };
    auto log = std::make_shared<FreeLog>();
    for (int reload = 0; reload < 10; ++reload) {
      auto next = std::make_shared<server::ServingState>(*state);
      next->protocol.nsid = "ns" + std::to_string(reload);
      next->services = georoute::loadSteering(cfg, server::zoneLocator(next->zones))->services;
      published.publish(std::shared_ptr<const server::ServingState>(
          new server::ServingState(std::move(*next)), [log](const server::ServingState* p) {
            {
              std::lock_guard<std::mutex> lock(log->m);
              log->threads.push_back(std::this_thread::get_id());
            }
            delete p;
          }));
      const uint64_t seen = rounds.load();
      while (rounds.load() < seen + 2) std::this_thread::yield();  // queries on the new one
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (domain.reclaim() != 0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
    }
    stop = true;
    worker.join();
    (void)domain.reclaim();
    INFO("worker allocated " << worker_allocs << " and freed " << worker_frees << " in "
                             << rounds.load() << " rounds");
    CHECK(worker_answered == worker_asked);
    CHECK(worker_asked > 0);
    CHECK(worker_id != std::this_thread::get_id());
    CHECK(worker_allocs == 0);
    CHECK(worker_frees == 0);
    std::lock_guard<std::mutex> lock(log->m);
    CHECK(log->threads.size() == 9);  // the tenth is still current
    for (const auto& id : log->threads) CHECK(id == std::this_thread::get_id());
  }
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

// The TCP side of the same promise: once a connection is open and warm, answering its queries
// (pipelined in one write, one at a time, a query split over two writes) allocates nothing: the
// worker reads into and answers from its own scratch buffers, and a split query waits in the
// connection's inline carry buffer.
TEST_CASE("no allocation per query on an open TCP connection", "[alloc][tcp]") {
  auto z = zones::loadZoneText("example.com",
                               "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
                               "ns1 A 192.0.2.1\nwww A 192.0.2.3\n");
  REQUIRE_OK(z);
  auto state = std::make_shared<server::ServingState>();
  state->zones = zones::ZoneSet({z->zone});
  Published<server::ServingState> published{state};
  server::ServerSettings settings;
  settings.listen.push_back(*server::parseListenAddress("127.0.0.1:0"));
  settings.threads = 1;
  settings.tcp_max_connections = 16;
  server::Server srv(published, settings);
  auto started = srv.start();  // REQUIRE_OK evaluates its argument twice
  REQUIRE_OK(started);

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(srv.listening()[0].port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  const timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  // 100 framed queries, built before counting.
  const auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
  static uint8_t stream[100 * 600];
  size_t stream_len = 0;
  for (int i = 0; i < 100; ++i) {
    stream[stream_len] = static_cast<uint8_t>(q.size() >> 8);
    stream[stream_len + 1] = static_cast<uint8_t>(q.size());
    std::memcpy(stream + stream_len + 2, q.data(), q.size());
    stream_len += 2 + q.size();
  }
  const size_t one = 2 + q.size();
  static uint8_t reply[65537];
  // Reads n framed replies; false on EOF or timeout. No allocation (raw syscalls, static buffer).
  auto readReplies = [&](int n) {
    for (int i = 0; i < n; ++i) {
      size_t want = 2, have = 0;
      for (int part = 0; part < 2; ++part) {
        while (have < want) {
          const ssize_t r = ::recv(fd, reply + have, want - have, 0);
          if (r <= 0) return false;
          have += static_cast<size_t>(r);
        }
        want = 2 + ((size_t{reply[0]} << 8) | reply[1]);
      }
    }
    return true;
  };
  auto round = [&] {
    bool ok = ::send(fd, stream, stream_len, MSG_NOSIGNAL) == static_cast<ssize_t>(stream_len);
    ok = ok && readReplies(100);
    for (int i = 0; ok && i < 10; ++i) {
      ok = ::send(fd, stream, one, MSG_NOSIGNAL) == static_cast<ssize_t>(one) && readReplies(1);
    }
    // Split: the length prefix and half the message, then the rest.
    ok = ok && ::send(fd, stream, one / 2, MSG_NOSIGNAL) == static_cast<ssize_t>(one / 2);
    ::usleep(20000);
    ok = ok && ::send(fd, stream + one / 2, one - one / 2, MSG_NOSIGNAL) ==
                   static_cast<ssize_t>(one - one / 2);
    return ok && readReplies(1);
  };
  REQUIRE(round());  // warm: handler allocation caches, snapshot copies
  REQUIRE(round());
  const uint64_t before = g_allocations.load();
  bool ok = true;
  for (int i = 0; i < 5; ++i) ok = ok && round();
  const uint64_t used = g_allocations.load() - before;
  ::close(fd);
  srv.stop();
  CHECK(ok);
  INFO("allocations during 5 rounds of 112 TCP queries: " << used);
  CHECK(used == 0);
}
