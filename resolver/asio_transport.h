// The iterator's Transport over real sockets, on a Boost.Asio io_context (the resolver's thread).
//
// UDP: every query gets a socket of its own on a kernel-chosen ephemeral port (Linux picks it at
// random, RFC 5452 §9.2 / RFC 6056), connect()ed to the server, so only datagrams from the
// server's address and port are received at all; a reply whose ID or question does not match is
// left to the iterator, which does not believe it. TCP (after TC=1, RFC 7766): a connection per
// query, the 2-octet length prefix, the same timeout for connect + write + read.
//
// IDs come from arc4random (glibc's getrandom-seeded generator). Each query has one deadline
// timer; its callback runs exactly once, on the io_context, never inside send().
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "resolver/iterator.h"

namespace meridian::resolver {

class AsioTransport : public Transport {
 public:
  explicit AsioTransport(boost::asio::io_context& io) : io_(io) {}
  void send(const Endpoint& to, std::vector<uint8_t> query, bool tcp, uint32_t timeout_ms,
            Done done) override;
  uint64_t nowMs() override;
  uint16_t randomId() override;

  // Queries sent, for the caller's statistics.
  [[nodiscard]] uint64_t sent() const { return sent_; }

  // Abandons every query in flight: sockets closed, timers cancelled, and their callbacks dropped
  // without being called (the iterator that gave them may then be destroyed). Later sends are
  // dropped too.
  void shutdown();

  struct Pending {
    virtual ~Pending() = default;
    virtual void abandon() = 0;
  };

 private:
  void track(const std::shared_ptr<Pending>& p);

  void sendUdp(const Endpoint& to, std::vector<uint8_t> query, uint32_t timeout_ms, Done done);
  void sendTcp(const Endpoint& to, std::vector<uint8_t> query, uint32_t timeout_ms, Done done);

  boost::asio::io_context& io_;
  uint64_t sent_ = 0;
  bool closed_ = false;
  std::vector<std::weak_ptr<Pending>> active_;
};

}  // namespace meridian::resolver
