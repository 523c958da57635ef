#include "server/metrics.h"

#include <algorithm>
#include <tuple>

#include "georoute/policy.h"
#include "georoute/service.h"
#include "server/pipeline.h"
#include "server/server.h"
#include "zones/zone.h"

namespace meridian::server {

namespace {

void sumInto(uint64_t& t, const Counter& c) {
  t += c.load(std::memory_order_relaxed);
}

template <size_t N>
void sumInto(std::array<uint64_t, N>& t, const std::array<Counter, N>& c) {
  for (size_t i = 0; i < N; ++i) sumInto(t[i], c[i]);
}

const char* qtypeName(size_t slot) {
  static const char* const kNames[kQtypeSlots] = {
      "A",     "NS", "CNAME",  "SOA",  "PTR",   "MX",  "TXT", "AAAA", "SRV",
      "NAPTR", "DS", "DNSKEY", "SVCB", "HTTPS", "CAA", "ANY", "other"};
  return kNames[slot];
}

// RFC 6895 §2.3 names; codes without one show as their number.
std::string rcodeName(size_t code) {
  static const char* const kNames[24] = {
      "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
      "NXRRSET", "NOTAUTH", "NOTZONE",  nullptr,    nullptr,  nullptr,   nullptr,    nullptr,
      "BADVERS", nullptr,   nullptr,    nullptr,    nullptr,  nullptr,   nullptr,    "BADCOOKIE"};
  return kNames[code] != nullptr ? kNames[code] : std::to_string(code);
}

}  // namespace

void BreakdownTotals::add(const QueryBreakdown& b) {
  sumInto(qtypes, b.qtypes);
  sumInto(transports, b.transports);
  sumInto(zones, b.zones);
  sumInto(steering, b.steering);
  sumInto(latency, b.latency);
  sumInto(latency_sum_ns, b.latency_sum_ns);
}

size_t MetricSlots::steeringSlot(const georoute::ServiceSet& set, const georoute::Service& svc,
                                 const georoute::Decision& d) const {
  const auto index = static_cast<size_t>(&svc - set.services.data());
  if (index >= steering_offset.size()) return kSteeringSlots - 1;
  const size_t pools = svc.pools.size();
  size_t k = pools;  // no data
  if (d.kind == georoute::Decision::Kind::kAnswer) {
    // Labelled by the pool of the first endpoint handed out (a few pools per service).
    k = 0;
    while (k < pools &&
           (d.count == 0 || d.chosen[0] < svc.pools[k].endpoints.data() ||
            d.chosen[0] >= svc.pools[k].endpoints.data() + svc.pools[k].endpoints.size())) {
      ++k;
    }
    if (k == pools) return kSteeringSlots - 1;
  } else if (d.kind == georoute::Decision::Kind::kServFail) {
    k = pools + 1;
  } else if (d.kind == georoute::Decision::Kind::kFallback) {
    k = pools + 2;
  }
  const size_t at = steering_offset[index] + k;
  return at < steering.size() ? steering[at] : kSteeringSlots - 1;
}

uint16_t MetricRegistry::zoneSlot(const std::string& origin) {
  auto [it, fresh] = zone_ids_.try_emplace(origin, 0);
  if (fresh) {
    if (zone_names_.size() < kZoneSlots - 1) {
      it->second = static_cast<uint16_t>(zone_names_.size());
      zone_names_.push_back(origin);
    } else {
      it->second = kZoneSlots - 1;
    }
  }
  return it->second;
}

uint16_t MetricRegistry::steeringSlot(const std::string& service, const std::string& region,
                                      const std::string& decision) {
  const std::string key = service + '\0' + region + '\0' + decision;
  auto [it, fresh] = steering_ids_.try_emplace(key, 0);
  if (fresh) {
    if (steering_keys_.size() < kSteeringSlots - 1) {
      it->second = static_cast<uint16_t>(steering_keys_.size());
      steering_keys_.push_back({service, region, decision});
    } else {
      it->second = kSteeringSlots - 1;
    }
  }
  return it->second;
}

void MetricRegistry::assign(ServingState& state) {
  MetricSlots& m = state.metric_slots;
  m = MetricSlots{};
  m.generation = ++generation_;
  for (const auto& z : state.zones.zones()) m.zones.emplace_back(z.get(), zoneSlot(z->origin()));
  std::sort(m.zones.begin(), m.zones.end());
  if (!state.services) return;
  const georoute::ServiceSet& set = *state.services;
  for (const georoute::Service& svc : set.services) {
    m.steering_offset.push_back(static_cast<uint32_t>(m.steering.size()));
    for (const georoute::Pool& p : svc.pools) {
      const std::string region = p.region < set.regions.size() ? set.regions[p.region].name : "";
      m.steering.push_back(steeringSlot(svc.name, region, "answer"));
    }
    for (auto k : {georoute::Decision::Kind::kNoData, georoute::Decision::Kind::kServFail,
                   georoute::Decision::Kind::kFallback}) {
      m.steering.push_back(steeringSlot(svc.name, "", georoute::decisionName(k)));
    }
  }
}

void MetricRegistry::addFamilies(const CounterTotals& t,
                                 std::vector<core::MetricFamily>& out) const {
  using core::MetricFamily;
  using core::MetricType;
  const BreakdownTotals& b = t.breakdown;
  MetricFamily queries("meridian_queries_total", "DNS queries received, by transport",
                       MetricType::kCounter);
  queries.add({{"transport", "udp"}}, b.transports[0]);
  queries.add({{"transport", "tcp"}}, b.transports[1]);
  out.push_back(std::move(queries));

  MetricFamily qtypes("meridian_query_types_total",
                      "DNS queries parsed, by question type (other: any type not listed)",
                      MetricType::kCounter);
  for (size_t i = 0; i < kQtypeSlots; ++i) qtypes.add({{"qtype", qtypeName(i)}}, b.qtypes[i]);
  out.push_back(std::move(qtypes));

  MetricFamily zones("meridian_zone_queries_total",
                     "DNS queries answered from a served zone, by zone (every zone served since "
                     "start-up)",
                     MetricType::kCounter);
  for (size_t i = 0; i < zone_names_.size(); ++i) zones.add({{"zone", zone_names_[i]}}, b.zones[i]);
  if (zone_ids_.size() > zone_names_.size() || b.zones[kZoneSlots - 1] > 0) {
    zones.add({{"zone", "(other)"}}, b.zones[kZoneSlots - 1]);
  }
  out.push_back(std::move(zones));

  MetricFamily rcodes("meridian_responses_total", "DNS responses built, by RCODE",
                      MetricType::kCounter);
  for (size_t i = 0; i < 24; ++i) {
    if (i <= 10 || i == 16 || i == 23 || t.rcodes[i] > 0) {
      rcodes.add({{"rcode", rcodeName(i)}}, t.rcodes[i]);
    }
  }
  out.push_back(std::move(rcodes));

  MetricFamily dropped("meridian_queries_dropped_total",
                       "Messages dropped unanswered because they could not be parsed as a query",
                       MetricType::kCounter);
  dropped.add({}, t.dropped);
  out.push_back(std::move(dropped));
  MetricFamily truncated("meridian_responses_truncated_total",
                         "Responses sent with TC=1 because the answer did not fit",
                         MetricType::kCounter);
  truncated.add({}, t.truncated);
  out.push_back(std::move(truncated));

  MetricFamily tcp("meridian_tcp_connections_total", "TCP connections accepted",
                   MetricType::kCounter);
  tcp.add({}, t.tcp_connections);
  out.push_back(std::move(tcp));
  MetricFamily tcp_closed("meridian_tcp_closed_total",
                          "TCP connections closed by the server: oldest idle one at the limit "
                          "(evicted), I/O timeout, or refused with every connection busy",
                          MetricType::kCounter);
  tcp_closed.add({{"reason", "evicted"}}, t.tcp_evicted);
  tcp_closed.add({{"reason", "io_timeout"}}, t.tcp_io_timeouts);
  tcp_closed.add({{"reason", "refused"}}, t.tcp_refused);
  out.push_back(std::move(tcp_closed));

  MetricFamily rrl("meridian_rrl_limited_total",
                   "UDP responses over the rate limit: sent truncated (slip) or dropped",
                   MetricType::kCounter);
  rrl.add({{"action", "slip"}}, t.rrl_slipped);
  rrl.add({{"action", "drop"}}, t.rrl_dropped);
  out.push_back(std::move(rrl));

  MetricFamily cookies("meridian_cookies_total",
                       "Queries with a COOKIE option, by what its server cookie was",
                       MetricType::kCounter);
  cookies.add({{"status", "client_only"}}, t.cookie_client_only);
  cookies.add({{"status", "valid"}}, t.cookie_valid);
  cookies.add({{"status", "invalid"}}, t.cookie_invalid);
  out.push_back(std::move(cookies));

  for (const auto& [name, help, value] :
       {std::tuple{"meridian_dnstap_messages_total",
                   "dnstap messages queued for the collector (dnstap/README.md)", t.dnstap_sent},
        std::tuple{"meridian_dnstap_dropped_total",
                   "dnstap messages dropped because the worker's queue to the collector was full "
                   "(a slow or absent collector)",
                   t.dnstap_dropped}}) {
    MetricFamily f(name, help, MetricType::kCounter);
    f.add({}, value);
    out.push_back(std::move(f));
  }

  MetricFamily steering("meridian_steering_decisions_total",
                        "Steering decisions by service, region of the first endpoint handed out, "
                        "and decision (answer, nodata, servfail, fallback to the zone data)",
                        MetricType::kCounter);
  for (size_t i = 0; i < steering_keys_.size(); ++i) {
    const SteeringKey& k = steering_keys_[i];
    steering.add({{"service", k.service}, {"region", k.region}, {"decision", k.decision}},
                 b.steering[i]);
  }
  if (b.steering[kSteeringSlots - 1] > 0) {
    steering.add({{"service", "(other)"}, {"region", ""}, {"decision", ""}},
                 b.steering[kSteeringSlots - 1]);
  }
  out.push_back(std::move(steering));

  MetricFamily latency("meridian_udp_answer_latency_seconds",
                       "UDP answers by the time from their batch's receipt (recvmmsg returning) "
                       "to its replies being handed to sendmmsg; every answer of a batch is "
                       "counted with the batch's time",
                       MetricType::kHistogram);
  std::vector<double> bounds;
  for (uint64_t ns : kLatencyBoundsNs) bounds.push_back(static_cast<double>(ns) / 1e9);
  latency.addHistogram({}, bounds, std::vector<uint64_t>(b.latency.begin(), b.latency.end()),
                       static_cast<double>(b.latency_sum_ns) / 1e9);
  out.push_back(std::move(latency));
}

}  // namespace meridian::server
