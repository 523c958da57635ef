// The query pipeline: one incoming message in, one response (or nothing) out, on in-memory buffers.
// Parses the query, applies the protocol rules that do not depend on zone data (opcodes, EDNS
// version, TSIG, classes, transfers), picks the zone by longest match and asks zones::answer for
// the sections, then adds EDNS (RFC 6891) and TSIG errors.
//
// One QueryHandler per worker thread; it owns its scratch Query and counters and reads the serving
// snapshot through a Published<>::Reader (one atomic load), so the hot path takes no lock, bumps
// no reference count and allocates nothing. The snapshot read at the top of handle() is used to the
// end of it; the worker passes a quiescent point only between handle() calls (core/snapshot.h).
// Tests drive it directly with packets, without sockets.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/snapshot.h"
#include "dns/message.h"
#include "georoute/service.h"
#include "healthcheck/state.h"
#include "server/metrics.h"
#include "server/recursion.h"
#include "server/rrl.h"
#include "zones/lookup.h"
#include "zones/zone.h"

namespace meridian::dnstap {
class Sink;
}

namespace meridian::server {

struct ProtocolSettings {
  // RFC 6891 §6.2.5 / DNS Flag Day 2020: 1232 avoids IP fragmentation on almost every path.
  uint16_t max_udp_payload = 1232;
  std::string nsid;  // RFC 5001 identifier; empty = not sent
  // RFC 7873/9018 server cookie secret: random per process unless configured (anycast sites share
  // it).
  uint8_t cookie_secret[16] = {};
  // server.require_cookie (BIND's require-server-cookie): a UDP query with a COOKIE option but no
  // valid server cookie gets BADCOOKIE and a fresh cookie instead of the answer (RFC 7873 §5.2.3,
  // §5.2.4). Off: it is answered as usual, with a fresh cookie. TCP and cookieless queries are
  // always answered.
  bool require_cookie = false;
  RrlSettings rrl;  // response rate limiting of UDP answers (server/rrl.h)
  // [recursion] (server/recursion.h); null: recursion off, names not served here are REFUSED.
  // Shared, so a parked query keeps the settings of the snapshot that parked it.
  std::shared_ptr<const RecursionSettings> recursion;
};

// What the data plane reads; replaced whole on reload.
struct ServingState {
  zones::ZoneSet zones;
  ProtocolSettings protocol;
  std::shared_ptr<const georoute::ServiceSet> services;  // null: no steering configured
  // The health words the services' health ids index, sized for the targets they were compiled
  // against and published with them (null: every endpoint counts as up). The Monitor updates the
  // words in place; a reload that changes the targets publishes a new table with new services.
  std::shared_ptr<const healthcheck::Verdicts> health;
  // Configured zones with no loaded version (their file failed at start-up): names at or below
  // them are answered SERVFAIL, as Knot does, rather than REFUSED, so resolvers do not mark this
  // server lame. Lowercase wire apexes; usually empty.
  std::vector<std::string> unavailable_zones;
  // The metric slots of these zones and services (server/metrics.h), set before publication.
  MetricSlots metric_slots;
};

// The query's source address and port (what a socket reports), for steering, ECS trust and dnstap.
struct Peer {
  bool known = false;
  bool ipv6 = false;
  uint8_t address[16] = {};
  uint16_t port = 0;
};

enum class Transport { kUdp, kTcp };

// What handle() did with the last query (DESIGN.md, "query path"). kAnswered and kTruncated
// return the response's length; kDropped and kPending return 0. kPending: a recursive question
// from a client allowed to recurse; the caller parks a copy of the query with its peer
// (server/recursor.h) and the reply is sent later, from the Recursor.
enum class Outcome { kAnswered, kTruncated, kDropped, kPending };

// Per-worker counters; summed by the control side on read (relaxed atomics, single writer). On a
// cache line of their own, so no other thread's writes share one with them.
struct alignas(64) Counters {
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> truncated{0};
  std::array<std::atomic<uint64_t>, 24> rcodes{};
  // Responses over the RRL limit (server/rrl.h): sent truncated (slipped) or not at all.
  std::atomic<uint64_t> rrl_slipped{0};
  std::atomic<uint64_t> rrl_dropped{0};
  // Queries with a COOKIE option, by what its server cookie was (dns::CookieStatus).
  std::atomic<uint64_t> cookie_client_only{0};
  std::atomic<uint64_t> cookie_valid{0};
  std::atomic<uint64_t> cookie_invalid{0};
  std::atomic<uint64_t> pending{0};  // recursive questions handed to the Recursor
  // dnstap messages queued for the collector, and dropped because the worker's queue was full.
  std::atomic<uint64_t> dnstap_sent{0};
  std::atomic<uint64_t> dnstap_dropped{0};
  QueryBreakdown breakdown;  // by qtype, transport, zone, steering decision; latency
  void add(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

class QueryHandler {
 public:
  explicit QueryHandler(const Published<ServingState>& state)
      : state_(state), rrl_(makeRrl(state)) {}

  // Writes the response into out (capacity out_cap) and returns its length; 0 means no response.
  // Inline: with dnstap off a call costs the test of tap_ (a load, a test, a branch) on top of
  // handleQuery(); with it on, handleTapped() answers through handleQuery() and logs.
  [[nodiscard]] size_t handle(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                              Transport transport, const Peer& peer = Peer{}) {
    if (tap_ != nullptr) [[unlikely]] {
      return handleTapped(in, in_len, out, out_cap, transport, peer);
    }
    return handleQuery(in, in_len, out, out_cap, transport, peer);
  }

  [[nodiscard]] Outcome outcome() const { return outcome_; }
  // The snapshot of the query just handled (still safe to read: the caller has not passed a
  // quiescent point since), for parking a kPending query.
  [[nodiscard]] const ServingState& snapshot() { return state_.get(); }
  [[nodiscard]] const Counters& counters() const { return counters_; }
  // The socket loop reports how long its batches took (QueryBreakdown::observeLatency).
  void observeLatency(uint64_t ns, uint64_t answers) {
    counters_.breakdown.observeLatency(ns, answers);
  }
  // Tests step the RRL clock by hand; no effect when RRL was off when the handler was built.
  void setRrlClock(RrlTable::Clock clock) {
    if (rrl_) rrl_->setClock(clock);
  }
  // Tests set the clock that stamps and checks server cookies (seconds; default time()).
  using CookieClock = uint32_t (*)();
  void setCookieClock(CookieClock clock) { cookie_clock_ = clock; }
  // dnstap output of this handler's queries (server::Server sets it before the first query; null,
  // the default, is off and costs handle() one predictable branch).
  void setDnstap(dnstap::Sink* sink) { tap_ = sink; }

 private:
  class SteeringHook;
  // The pipeline itself (handle() without dnstap).
  size_t handleQuery(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                     Transport transport, const Peer& peer);
  // handle() with dnstap on: samples, answers through handleQuery() and logs AUTH_QUERY /
  // AUTH_RESPONSE.
  size_t handleTapped(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                      Transport transport, const Peer& peer);
  // Answers a steered service name reached with `owner` (nullptr: the question name) from `zone`,
  // the zone the service lives in.
  zones::ChainHook::Outcome steer(const ServingState& state, const georoute::Service& svc,
                                  const zones::Zone& zone, const uint8_t* owner, const Peer& peer,
                                  uint8_t* scope);
  // The per-worker RRL table, sized from the snapshot at construction; null when RRL is off.
  static std::unique_ptr<RrlTable> makeRrl(const Published<ServingState>& state);
  // What RRL says of the response in `writer_` (sections written, rcode `rcode`).
  RrlVerdict rateLimit(const RrlSettings& s, const zones::AnswerResult& res,
                       const zones::Zone* zone, uint16_t rcode, const Peer& peer);

  Published<ServingState>::Reader state_;
  healthcheck::Verdicts no_health_;
  dns::Query query_;
  dns::ResponseWriter writer_;
  Counters counters_;
  ZoneSlotCache zone_slot_;
  std::unique_ptr<RrlTable> rrl_;
  CookieClock cookie_clock_ = nullptr;
  Outcome outcome_ = Outcome::kAnswered;
  dnstap::Sink* tap_ = nullptr;
};

}  // namespace meridian::server
