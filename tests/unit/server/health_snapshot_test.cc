// Services and the health table they index are one snapshot (issue #7): a worker answering while
// the control side republishes never pairs a service set with a health table compiled for other
// targets. Two layouts number the same two endpoints in opposite orders, each with the slow one
// down in its own table; read with the other layout's table, the down endpoint would be answered.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "../georoute/steering_fixture.h"
#include "../testutil.h"
#include "georoute/compile.h"
#include "server/pipeline.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

using namespace meridian;

namespace {

const char* kZone =
    "$ORIGIN example.com.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
    "www A 192.0.2.99\n";

// The serving state with www's pools in `order`; the endpoint `down` is down in its table.
std::shared_ptr<const server::ServingState> layout(const zones::ZoneSet& zones,
                                                   std::vector<std::string> order,
                                                   const std::string& down) {
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones;
  georoute::SteeringConfig cfg;
  cfg.regions = {{"eu", 50.1, 8.7, 0}, {"us", 39.0, -77.5, 0}};
  georoute::ServiceConfig svc;
  svc.name = "www.example.com";
  svc.where = "test";
  svc.policy = {"up", "first_n"};
  svc.first_n = 1;
  for (const auto& a : order) svc.pools.push_back(test::pool(a == "198.51.100.1" ? "eu" : "us", a));
  cfg.services.push_back(svc);
  auto compiled = georoute::compileSteering(cfg, server::zoneLocator(s->zones), nullptr);
  REQUIRE_OK(compiled);
  s->services = compiled->services;
  auto health = std::make_shared<healthcheck::Verdicts>(compiled->targets.size());
  for (size_t i = 0; i < compiled->targets.size(); ++i) {
    healthcheck::TargetState st;
    st.up = compiled->targets[i].address != down;
    (void)health->set(static_cast<uint32_t>(i), st);
  }
  s->health = health;
  return s;
}

}  // namespace

TEST_CASE("a health id always indexes the table its services were compiled against",
          "[snapshot][steering]") {
  auto z = zones::loadZoneText("example.com", kZone);
  REQUIRE_OK(z);
  const zones::ZoneSet zones({z->zone});
  // A: .1 is id 0 and down; B: .1 is id 1 and down. The answer is .2 in both.
  const auto a = layout(zones, {"198.51.100.1", "198.51.100.2"}, "198.51.100.1");
  const auto b = layout(zones, {"198.51.100.2", "198.51.100.1"}, "198.51.100.1");
  // The mixed pairings answer the down endpoint, so the check below can fail.
  {
    auto mixed = std::make_shared<server::ServingState>(*b);
    mixed->health = a->health;
    Published<server::ServingState> p(mixed);
    server::QueryHandler h(p);
    const auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
    static uint8_t out[512];
    const size_t n = h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp);
    const auto d = test::decode(out, n);
    REQUIRE(d.answer.size() == 1);
    REQUIRE_THAT(d.answer[0], Catch::EndsWith("198.51.100.1"));
  }

  QuiescentDomain domain;
  Published<server::ServingState> published(a, domain);
  std::atomic<bool> ready{false}, stop{false};
  std::atomic<uint64_t> wrong{0}, asked{0};
  std::thread worker([&] {
    QuiescentDomain::Slot* slot = domain.enter();
    server::QueryHandler h(published);
    const auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
    static uint8_t out[512];
    ready = true;
    while (!stop.load()) {
      domain.quiescent(*slot);
      for (int i = 0; i < 16; ++i) {
        const size_t n = h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp);
        // 198.51.100.1, the down endpoint, appears in the reply only as its answer.
        static const uint8_t kDown[4] = {198, 51, 100, 1};
        if (n == 0 || std::search(out, out + n, kDown, kDown + 4) != out + n) wrong.fetch_add(1);
        asked.fetch_add(1);
      }
    }
    domain.leave(slot);
  });
  while (!ready.load()) std::this_thread::yield();
  for (int i = 0; i < 2000; ++i) {
    published.publish(i % 2 ? a : b);
    (void)domain.reclaim();
  }
  stop = true;
  worker.join();
  CHECK(asked.load() > 0);
  CHECK(wrong.load() == 0);
}
