// The network side of the data plane (RFC 1035 §4.2, RFC 7766): `threads` workers, each with its
// own SO_REUSEPORT UDP socket and TCP acceptor per listen address. Each UDP socket is served by a
// thread of its own with its own QueryHandler, blocking in recvmmsg and answering in batches with
// sendmmsg (no event loop around it, as gdnsd does). The worker's Asio event loop, with another
// QueryHandler, serves TCP and timers: connections are length-prefixed, may carry several queries,
// and are closed after an idle timeout, when one message takes longer than the I/O timeout to
// arrive or to be taken by the client, or (the oldest idle one) to admit a new connection at the
// limit.
//
// Created and stopped by the control thread (app/); the threads share no mutable state (each
// worker keeps its own share of the TCP connection limit).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "core/snapshot.h"
#include "dnstap/writer.h"
#include "server/pipeline.h"

namespace meridian::server {

struct ListenAddress {
  boost::asio::ip::address address;
  uint16_t port = 0;
  [[nodiscard]] std::string text() const;
};

// "127.0.0.1:53" or "[::1]:53". The port is required: a bare address is refused rather than
// silently taken as port 53. Port 0 asks the kernel for a free port (the same one for UDP and TCP);
// Server::listening() then names it.
[[nodiscard]] Result<ListenAddress> parseListenAddress(const std::string& text);

struct ServerSettings {
  std::vector<ListenAddress> listen;
  unsigned threads = 0;  // 0 = CPUs in the affinity mask (resolved by app/config)
  // RFC 7766 §6.2.3: servers should close idle connections; 10 s is Knot's default.
  unsigned tcp_idle_timeout_ms = 10000;
  // Longest time one message may take to arrive once its first octet is in, or output the client
  // does not read may stay unsent (Knot's tcp-io-timeout); then the connection is reset. 0 = never.
  unsigned tcp_io_timeout_ms = 5000;
  // Across all workers (each worker admits its share, rounded up). At the limit a new connection
  // closes the worker's oldest idle one; with none idle it is refused. 0 = half the process's
  // open-file limit (RLIMIT_NOFILE), as Knot's tcp-max-clients; resolved by Server::start().
  unsigned tcp_max_connections = 0;
  // [dnstap] (dnstap/README.md): off unless a socket or file is set; applies at restart.
  dnstap::Settings dnstap;
};

struct CounterTotals {
  uint64_t queries = 0, dropped = 0, truncated = 0, tcp_connections = 0;
  // TCP connections closed: to admit a newer one (oldest idle first), for the I/O timeout, and
  // new ones refused because every connection of the worker was busy.
  uint64_t tcp_evicted = 0, tcp_io_timeouts = 0, tcp_refused = 0;
  uint64_t rcodes[24] = {};
  uint64_t rrl_slipped = 0, rrl_dropped = 0;  // responses limited by RRL (server/rrl.h)
  uint64_t cookie_client_only = 0, cookie_valid = 0, cookie_invalid = 0;  // Counters
  uint64_t dnstap_sent = 0, dnstap_dropped = 0;  // dnstap messages queued, dropped (queue full)
  BreakdownTotals breakdown;                     // server/metrics.h
  uint64_t pending = 0;      // recursive questions parked (Counters::pending)
  RecursorTotals recursion;  // server/recursor.h
};

class Recursor;  // server/recursor.h

class Server {
 public:
  Server(const Published<ServingState>& state, ServerSettings settings);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every socket of every worker; a failure (address in use, permission) is reported with the
  // address and nothing keeps running. An address that another process already holds, even with
  // SO_REUSEPORT, is refused: SO_REUSEPORT groups only this process's own workers.
  [[nodiscard]] Result<void> start();
  // The addresses served, with port 0 replaced by the port the kernel chose. Valid after start().
  [[nodiscard]] const std::vector<ListenAddress>& listening() const { return settings_.listen; }
  // Stops accepting, closes every TCP connection (a reply already handed to the kernel is still
  // delivered), wakes the UDP threads out of recvmmsg, joins every thread.
  void stop();
  [[nodiscard]] CounterTotals totals() const;

 private:
  class Worker;
  const Published<ServingState>& state_;
  ServerSettings settings_;
  std::unique_ptr<Recursor> recursor_;  // outlives the workers, which park queries on it
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::unique_ptr<dnstap::Writer> dnstap_;  // null when dnstap is off
};

}  // namespace meridian::server
