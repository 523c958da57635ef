// Forwarding over c-ares: questions for names under a configured forward zone ("." for the whole
// server, "example." per domain; the longest zone wins) are sent to that zone's upstream servers
// on a c-ares channel of its own, driven from the resolver's Asio io_context (one thread).
//
// Everything here runs on that one thread: configure(), resolve() and the callbacks. The caller
// (server/recursion.cc) builds the client's reply from the upstream message it is handed.
// Identical concurrent questions (name, type, class, DO bit) share one upstream query.
#pragma once

#include <ares.h>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "resolver/forward_zone.h"

namespace meridian::resolver {

enum class ForwardStatus {
  kAnswer,        // `message` is the upstream's reply (any rcode: ARES_FLAG_NOCHECKRESP)
  kTimeout,       // no upstream answered in time (RFC 8914 EDE 22, No Reachable Authority)
  kNetworkError,  // refused, unreachable, bad reply (EDE 23, Network Error)
};

struct ForwardResult {
  ForwardStatus status = ForwardStatus::kNetworkError;
  const uint8_t* message = nullptr;
  size_t length = 0;
};

// The question as the first client asked it (its letter case goes upstream).
struct ForwardQuestion {
  const uint8_t* qname = nullptr;  // wire form, uncompressed
  size_t qname_len = 0;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool dnssec_ok = false;
};

// The upstream query Meridian sends: ID 0 (c-ares 1.18's ares_send overwrites it with a random one
// of its own, RFC 5452 §9.2), RD=1, the question, and an OPT (RFC 6891) with `payload` and the
// client's DO bit. Returns its length; `out` holds at least 12 + 255 + 4 + 11 octets.
size_t buildUpstreamQuery(const ForwardQuestion& q, uint16_t payload, uint8_t* out);

class Forwarder {
 public:
  using Callback = std::function<void(const ForwardResult&)>;

  // `timeout_ms` per try, `tries` over the zone's servers (c-ares's own rotation and retry).
  explicit Forwarder(boost::asio::io_context& io, unsigned timeout_ms = 2000, unsigned tries = 2);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Replaces the channels when `zones` differ from the current ones (a reload); questions in
  // flight on a replaced channel complete with kNetworkError. Errors (a bad server address) are
  // returned as text, and that zone is left out.
  std::vector<std::string> configure(const std::vector<ForwardZone>& zones);
  // Is there a forwarder for this (lowercase wire) name?
  [[nodiscard]] bool covers(const uint8_t* qname_lower, size_t len) const;
  // Sends the question to the forwarder of the longest zone containing it (or joins an identical
  // question in flight); `cb` runs later on the io thread. False (cb dropped) when no zone covers
  // the name.
  bool resolve(const ForwardQuestion& q, Callback cb);

  // Upstream queries sent (after sharing) and questions answered by sharing, for tests and metrics.
  [[nodiscard]] uint64_t upstreamQueries() const { return upstream_queries_; }
  [[nodiscard]] uint64_t sharedQuestions() const { return shared_questions_; }
  [[nodiscard]] size_t inFlight() const;

 private:
  struct Channel;
  struct Flight;
  Channel* channelFor(const uint8_t* qname_lower, size_t len) const;

  boost::asio::io_context& io_;
  unsigned timeout_ms_;
  unsigned tries_;
  std::vector<ForwardZone> zones_;
  std::vector<std::unique_ptr<Channel>> channels_;  // parallel to zones_ (null: failed to set up)
  uint64_t upstream_queries_ = 0;
  uint64_t shared_questions_ = 0;
};

}  // namespace meridian::resolver
