#include "resolver/asio_transport.h"

#include <stdlib.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <memory>

#include "dns/wire.h"

namespace meridian::resolver {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

asio::ip::address toAddress(const Endpoint& e) {
  if (e.ipv6) {
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), e.address, 16);
    return asio::ip::address_v6(b);
  }
  asio::ip::address_v4::bytes_type b;
  std::memcpy(b.data(), e.address, 4);
  return asio::ip::address_v4(b);
}

// One exchange in flight: its socket, its deadline and the callback, called once.
template <typename Socket>
struct Exchange : AsioTransport::Pending {
  Exchange(asio::io_context& io, Transport::Done d) : socket(io), timer(io), done(std::move(d)) {}
  Socket socket;
  asio::steady_timer timer;
  Transport::Done done;
  std::vector<uint8_t> query;
  std::vector<uint8_t> reply;
  std::array<uint8_t, 2> length{};
  bool finished = false;

  void abandon() override {
    if (finished) return;
    finished = true;
    done = nullptr;
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
  }

  void finish(SendStatus status) {
    if (finished) return;
    finished = true;
    timer.cancel();
    boost::system::error_code ignored;
    socket.close(ignored);
    auto cb = std::move(done);
    if (status == SendStatus::kOk) {
      cb(status, reply.data(), reply.size());
    } else {
      cb(status, nullptr, 0);
    }
  }
};

}  // namespace

uint64_t AsioTransport::nowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint16_t AsioTransport::randomId() {
  return static_cast<uint16_t>(::arc4random() & 0xFFFF);
}

void AsioTransport::shutdown() {
  closed_ = true;
  for (auto& w : active_) {
    if (auto p = w.lock()) p->abandon();
  }
  active_.clear();
}

void AsioTransport::track(const std::shared_ptr<Pending>& p) {
  if (active_.size() >= 64 && active_.size() % 64 == 0) {
    std::erase_if(active_, [](const std::weak_ptr<Pending>& w) { return w.expired(); });
  }
  active_.push_back(p);
}

void AsioTransport::send(const Endpoint& to, std::vector<uint8_t> query, bool tcp,
                         uint32_t timeout_ms, Done done) {
  if (closed_) return;
  ++sent_;
  if (tcp) {
    sendTcp(to, std::move(query), timeout_ms, std::move(done));
  } else {
    sendUdp(to, std::move(query), timeout_ms, std::move(done));
  }
}

void AsioTransport::sendUdp(const Endpoint& to, std::vector<uint8_t> query, uint32_t timeout_ms,
                            Done done) {
  auto x = std::make_shared<Exchange<udp::socket>>(io_, std::move(done));
  track(x);
  x->query = std::move(query);
  const udp::endpoint peer(toAddress(to), to.port);
  boost::system::error_code ec;
  x->socket.open(peer.protocol(), ec);
  if (!ec) x->socket.connect(peer, ec);  // binds an ephemeral port; filters other sources
  if (ec) {
    asio::post(io_, [x] { x->finish(SendStatus::kNetworkError); });
    return;
  }
  x->timer.expires_after(std::chrono::milliseconds(timeout_ms));
  x->timer.async_wait([x](const boost::system::error_code& e) {
    if (!e) x->finish(SendStatus::kTimeout);
  });
  x->socket.async_send(asio::buffer(x->query), [x](const boost::system::error_code& e, size_t) {
    if (e) {
      x->finish(SendStatus::kNetworkError);
      return;
    }
    x->reply.resize(dns::kMaxMessageSize);
    x->socket.async_receive(asio::buffer(x->reply),
                            [x](const boost::system::error_code& e2, size_t n) {
                              if (e2 == asio::error::operation_aborted) return;
                              if (e2) {
                                // ICMP port unreachable arrives as ECONNREFUSED here.
                                x->finish(SendStatus::kNetworkError);
                                return;
                              }
                              x->reply.resize(n);
                              x->finish(SendStatus::kOk);
                            });
  });
}

void AsioTransport::sendTcp(const Endpoint& to, std::vector<uint8_t> query, uint32_t timeout_ms,
                            Done done) {
  auto x = std::make_shared<Exchange<tcp::socket>>(io_, std::move(done));
  track(x);
  x->query.resize(2 + query.size());
  x->query[0] = static_cast<uint8_t>(query.size() >> 8);
  x->query[1] = static_cast<uint8_t>(query.size() & 0xFF);
  std::memcpy(x->query.data() + 2, query.data(), query.size());
  x->timer.expires_after(std::chrono::milliseconds(timeout_ms));
  x->timer.async_wait([x](const boost::system::error_code& e) {
    if (!e) x->finish(SendStatus::kTimeout);
  });
  x->socket.async_connect(
      tcp::endpoint(toAddress(to), to.port), [x](const boost::system::error_code& e) {
        if (e) {
          if (e != asio::error::operation_aborted) x->finish(SendStatus::kNetworkError);
          return;
        }
        asio::async_write(
            x->socket, asio::buffer(x->query), [x](const boost::system::error_code& e2, size_t) {
              if (e2) {
                if (e2 != asio::error::operation_aborted) x->finish(SendStatus::kNetworkError);
                return;
              }
              asio::async_read(x->socket, asio::buffer(x->length),
                               [x](const boost::system::error_code& e3, size_t) {
                                 if (e3) {
                                   if (e3 != asio::error::operation_aborted)
                                     x->finish(SendStatus::kNetworkError);
                                   return;
                                 }
                                 x->reply.resize(dns::readU16(x->length.data()));
                                 asio::async_read(x->socket, asio::buffer(x->reply),
                                                  [x](const boost::system::error_code& e4, size_t) {
                                                    if (e4) {
                                                      if (e4 != asio::error::operation_aborted) {
                                                        x->finish(SendStatus::kNetworkError);
                                                      }
                                                      return;
                                                    }
                                                    x->finish(SendStatus::kOk);
                                                  });
                               });
            });
      });
}

}  // namespace meridian::resolver
