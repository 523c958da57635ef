// The query path's metrics (server/metrics.h): per-worker counters summed on read, by qtype,
// transport, zone and steering decision; zone slots that survive a reload without losing or
// misattributing counts; the families as Prometheus text.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "../georoute/steering_fixture.h"
#include "../testutil.h"
#include "core/metrics.h"
#include "georoute/compile.h"
#include "server/metrics.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

using namespace meridian;
namespace rr = dns::rrtype;

namespace {

std::shared_ptr<const zones::Zone> zone(const std::string& origin) {
  auto z = zones::loadZoneText(origin, "$ORIGIN " + origin +
                                           ".\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 "
                                           "300\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n");
  REQUIRE_OK(z);
  return z->zone;
}

// Two "workers" (handlers) on one published state, as a server with two threads has.
struct Workers {
  QuiescentDomain domain;
  Published<server::ServingState> state{std::make_shared<const server::ServingState>(), domain};
  server::MetricRegistry names;
  std::unique_ptr<server::QueryHandler> a, b;
  uint8_t out[4096];

  void publish(std::shared_ptr<server::ServingState> s) {
    names.assign(*s);
    state.publish(std::move(s));
    if (!a) {
      a = std::make_unique<server::QueryHandler>(state);
      b = std::make_unique<server::QueryHandler>(state);
    }
  }
  void ask(server::QueryHandler& h, const std::string& qname, uint16_t qtype,
           server::Transport t = server::Transport::kUdp, std::vector<uint8_t> options = {}) {
    test::QueryOptions o;
    o.edns = !options.empty();
    o.options = std::move(options);
    auto q = test::makeQuery(qname, qtype, o);
    (void)h.handle(q.data(), q.size(), out, sizeof out, t);
  }
  // What the control side sums on read (Server::totals() does this for every handler).
  [[nodiscard]] std::string text() const {
    server::CounterTotals t;
    for (const auto* h : {a.get(), b.get()}) {
      const server::Counters& c = h->counters();
      t.queries += c.queries.load();
      for (size_t i = 0; i < 24; ++i) t.rcodes[i] += c.rcodes[i].load();
      t.breakdown.add(c.breakdown);
    }
    std::vector<core::MetricFamily> f;
    names.addFamilies(t, f);
    return core::renderPrometheus(f);
  }
};

bool has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("metrics: workers' counters are summed by qtype, transport, zone and rcode",
          "[metrics]") {
  Workers w;
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({zone("example.com"), zone("example.net")});
  w.publish(s);
  w.ask(*w.a, "www.example.com.", rr::kA);
  w.ask(*w.b, "www.example.com.", rr::kA);
  w.ask(*w.b, "www.example.com.", rr::kAAAA, server::Transport::kTcp);
  w.ask(*w.a, "nope.example.net.", rr::kMX);
  w.ask(*w.a, "www.example.org.", 99);  // not served: REFUSED, no zone
  const std::string t = w.text();
  CHECK(has(t, "meridian_queries_total{transport=\"udp\"} 4"));
  CHECK(has(t, "meridian_queries_total{transport=\"tcp\"} 1"));
  CHECK(has(t, "meridian_query_types_total{qtype=\"A\"} 2"));
  CHECK(has(t, "meridian_query_types_total{qtype=\"AAAA\"} 1"));
  CHECK(has(t, "meridian_query_types_total{qtype=\"MX\"} 1"));
  CHECK(has(t, "meridian_query_types_total{qtype=\"other\"} 1"));
  CHECK(has(t, "meridian_zone_queries_total{zone=\"example.com.\"} 3"));
  CHECK(has(t, "meridian_zone_queries_total{zone=\"example.net.\"} 1"));
  CHECK(t.find("(other)") == std::string::npos);
  CHECK(has(t, "meridian_responses_total{rcode=\"NOERROR\"} 3"));  // A twice, AAAA NODATA
  CHECK(has(t, "meridian_responses_total{rcode=\"NXDOMAIN\"} 1"));
  CHECK(has(t, "meridian_responses_total{rcode=\"REFUSED\"} 1"));
  CHECK(t.find("# TYPE meridian_udp_answer_latency_seconds histogram\n") != std::string::npos);
}

TEST_CASE("metrics: a reload keeps each zone's slot and counts", "[metrics]") {
  Workers w;
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({zone("m.example")});
  w.publish(s);
  w.ask(*w.a, "www.m.example.", rr::kA);
  // The reload adds a zone that sorts before it and reloads m.example itself (a new Zone object).
  s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({zone("a.example"), zone("m.example")});
  w.publish(s);
  w.ask(*w.a, "www.m.example.", rr::kA);
  w.ask(*w.b, "www.a.example.", rr::kA);
  // And one that drops m.example: its count stays, nothing else lands on it.
  s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({zone("a.example"), zone("z.example")});
  w.publish(s);
  w.ask(*w.b, "www.z.example.", rr::kA);
  w.ask(*w.b, "www.m.example.", rr::kA);  // REFUSED now
  const std::string t = w.text();
  CHECK(has(t, "meridian_zone_queries_total{zone=\"m.example.\"} 2"));
  CHECK(has(t, "meridian_zone_queries_total{zone=\"a.example.\"} 1"));
  CHECK(has(t, "meridian_zone_queries_total{zone=\"z.example.\"} 1"));
  CHECK(w.names.zoneNames() == std::vector<std::string>{"m.example.", "a.example.", "z.example."});
}

TEST_CASE("metrics: steering decisions by service and region", "[metrics]") {
  Workers w;
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({zone("example.com")});
  georoute::SteeringConfig cfg;
  cfg.regions = {{"eu", 50.1, 8.7, 0}, {"us", 39.0, -77.5, 0}};
  georoute::ServiceConfig svc;
  svc.name = "www.example.com";
  svc.where = "test";
  svc.policy = {"geo"};
  svc.geo.default_list = {"us"};
  svc.geo.cidr = {{"192.0.2.0/24", {"eu"}}};
  svc.pools = {test::pool("eu", "203.0.113.1"), test::pool("us", "203.0.113.2")};
  cfg.services.push_back(svc);
  auto compiled = georoute::compileSteering(cfg, server::zoneLocator(s->zones), nullptr);
  REQUIRE_OK(compiled);
  s->services = compiled->services;
  w.publish(s);
  const std::vector<uint8_t> eu = {0, 8, 0, 8, 0, 1, 32, 0, 192, 0, 2, 7};
  const std::vector<uint8_t> us = {0, 8, 0, 8, 0, 1, 32, 0, 198, 51, 100, 7};
  w.ask(*w.a, "www.example.com.", rr::kA, server::Transport::kUdp, eu);
  w.ask(*w.b, "www.example.com.", rr::kA, server::Transport::kUdp, eu);
  w.ask(*w.a, "www.example.com.", rr::kA, server::Transport::kUdp, us);
  // No AAAA endpoints: the zone data answers (a fallback).
  w.ask(*w.a, "www.example.com.", rr::kAAAA, server::Transport::kUdp, us);
  const std::string t = w.text();
  CHECK(has(t,
            "meridian_steering_decisions_total{service=\"www.example.com.\",region=\"eu\","
            "decision=\"answer\"} 2"));
  CHECK(has(t,
            "meridian_steering_decisions_total{service=\"www.example.com.\",region=\"us\","
            "decision=\"answer\"} 1"));
  CHECK(has(t,
            "meridian_steering_decisions_total{service=\"www.example.com.\",region=\"\","
            "decision=\"fallback\"} 1"));
}

TEST_CASE("metrics: the latency histogram buckets a batch's answers", "[metrics]") {
  server::QueryBreakdown b;
  b.observeLatency(8'000, 3);        // <= 10 µs
  b.observeLatency(10'000, 1);       // on the bound: still the first bucket
  b.observeLatency(700'000, 2);      // <= 1 ms
  b.observeLatency(900'000'000, 1);  // above every bound
  server::BreakdownTotals t;
  t.add(b);
  t.add(b);  // a second worker with the same counts
  CHECK(t.latency[0] == 8);
  CHECK(t.latency[6] == 4);
  CHECK(t.latency[server::kLatencySlots - 1] == 2);
  CHECK(t.latency_sum_ns == 2 * (24'000 + 10'000 + 1'400'000 + 900'000'000));
}
