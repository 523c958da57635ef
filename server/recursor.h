// The Recursor: where a query the pipeline left Pending (a recursive question from an allowed
// client, server/pipeline.h) is resolved and answered. It runs one thread of its own with an Asio
// io_context that drives the forwarders' c-ares channels (resolver/forwarder.h).
//
// The UDP threads block in recvmmsg and never wait on anything else (no poll on the hot path), so
// a pending UDP query carries everything its reply needs — a copy of the query, the client's
// address, the local address it was sent to (IP_PKTINFO) and the socket — and the Recursor's
// thread sends the reply itself with sendmsg on that socket, from that address. A pending TCP
// query carries a delivery function that posts the reply back to the connection's worker loop,
// which writes it when it arrives, out of order (RFC 7766 §6.2.1.1).
//
// submit() may be called from any thread (asio::post); everything else runs on the Recursor's
// thread. Limits (RecursionSettings::max_outstanding, _per_client) are kept there too: a query over
// either is dropped, as Unbound and PowerDNS Recursor drop queries when their tables are full.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dns/message.h"
#include "resolver/asio_transport.h"
#include "resolver/forwarder.h"
#include "resolver/iterator.h"
#include "server/pipeline.h"
#include "server/recursion.h"

namespace meridian::server {

// One parked query; owned by the Recursor from submit() until it is answered or dropped.
struct PendingQuery {
  std::vector<uint8_t> query;  // the client's message, copied out of the receive buffer
  Peer peer;
  Transport transport = Transport::kUdp;
  std::shared_ptr<const RecursionSettings> settings;  // of the snapshot that parked it
  // The EDNS settings of that snapshot, as the authoritative path applies them.
  uint16_t max_udp_payload = 1232;
  std::string nsid;
  uint8_t cookie_secret[16] = {};
  // UDP: the socket, the client's address, and the reply's source (IP_PKTINFO control message;
  // empty when the socket is bound to one address).
  int udp_fd = -1;
  sockaddr_storage client{};
  socklen_t client_len = 0;
  alignas(cmsghdr) uint8_t control[64] = {};
  size_t control_len = 0;
  // TCP: called on the Recursor's thread with the reply (without length prefix).
  std::function<void(const uint8_t*, size_t)> deliver;
};

// Fills a PendingQuery's copy of the query and its EDNS settings from the snapshot that parked it.
[[nodiscard]] std::unique_ptr<PendingQuery> parkQuery(const ServingState& state, const uint8_t* in,
                                                      size_t len, Transport transport,
                                                      const Peer& peer);

class Recursor {
 public:
  Recursor();
  ~Recursor();
  Recursor(const Recursor&) = delete;
  Recursor& operator=(const Recursor&) = delete;

  void start();
  // Completes the questions in flight (SERVFAIL) and joins the thread; later submits are dropped.
  void stop();
  // Any thread.
  void submit(std::unique_ptr<PendingQuery> p);
  [[nodiscard]] RecursorTotals totals() const;

  // Builds the client's reply to `p` from an upstream result (nullptr: none; `ede_code` says why)
  // into out (64 KiB). Public for the unit tests.
  [[nodiscard]] static size_t buildReply(const PendingQuery& p, const dns::Query& q,
                                         const resolver::ForwardResult* upstream, uint16_t ede_code,
                                         uint8_t* out);

 private:
  void handle(std::shared_ptr<PendingQuery> p);
  void finish(PendingQuery& p, const resolver::ForwardResult* upstream, uint16_t ede_code);
  void release(const PendingQuery& p);
  // Builds (or rebuilds, when the root hints or the limits changed) the iterator for `s`.
  void configureIterator(const RecursionSettings& s);
  // Resolves p's question with the iterator and answers it.
  void iterate(const std::shared_ptr<PendingQuery>& p);
  static std::string clientKey(const Peer& peer);

  boost::asio::io_context io_{1};
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::unique_ptr<resolver::Forwarder> forwarder_;
  // The iterator for names no forward zone covers, its transport and what it was built from.
  std::unique_ptr<resolver::AsioTransport> transport_;
  std::unique_ptr<resolver::Iterator> iterator_;
  std::string iterator_hints_;
  // Iterators replaced by a reload, kept until their questions in flight are done.
  std::vector<std::unique_ptr<resolver::Iterator>> retired_iterators_;
  std::vector<uint8_t> upstream_message_;  // an iterator result as a message, for buildReply
  std::shared_ptr<const RecursionSettings> configured_;  // the forward zones applied
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  dns::Query query_;  // the Recursor thread's parse of the query being answered
  std::unique_ptr<uint8_t[]> reply_ = std::make_unique<uint8_t[]>(dns::kMaxMessageSize);
  size_t outstanding_ = 0;
  std::map<std::string, unsigned> per_client_;
  std::atomic<uint64_t> submitted_{0}, answered_{0}, over_limit_{0}, upstream_{0}, shared_{0};
};

}  // namespace meridian::server
