#include "server/listener.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <set>

#include "core/log.h"

namespace meridian::server {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

std::string ListenAddress::text() const {
  // Appends only: `"[" + address.to_string()` trips GCC 12's -Wrestrict false positive at -O3
  // (in basic_string::_M_replace, inlined), which fails the Release build with warnings as errors.
  std::string out;
  if (address.is_v6()) out += '[';
  out += address.to_string();
  if (address.is_v6()) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

Result<ListenAddress> parseListenAddress(const std::string& text) {
  std::string host;
  std::string port;
  bool have_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return Error{"bad listen address '" + text + "': missing ']'"};
    host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return Error{"bad listen address '" + text + "'"};
      port = text.substr(close + 2);
      have_port = true;
    }
  } else {
    const size_t colons = static_cast<size_t>(std::count(text.begin(), text.end(), ':'));
    if (colons > 1) {
      return Error{"bad listen address '" + text +
                   "': write an IPv6 address in brackets with a port, e.g. [::1]:53"};
    }
    host = text;
    if (colons == 1) {
      const size_t colon = text.find(':');
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      have_port = true;
    }
  }
  boost::system::error_code ec;
  ListenAddress out;
  out.address = asio::ip::make_address(host, ec);
  if (ec) return Error{"bad listen address '" + text + "': '" + host + "' is not an IP address"};
  // A bare address used to mean port 53; an operator who forgot the port would then serve (or fail
  // to bind) somewhere unintended, so the port must be written out, as in Knot's listen.
  if (!have_port) {
    return Error{"bad listen address '" + text + "': a port is required, e.g. " +
                 ListenAddress{out.address, 53}.text()};
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Error{"bad listen address '" + text + "': bad port '" + port + "'"};
  }
  const unsigned long p = std::strtoul(port.c_str(), nullptr, 10);
  if (p > 65535) return Error{"bad listen address '" + text + "': port " + port + " > 65535"};
  out.port = static_cast<uint16_t>(p);
  return out;
}

namespace {

Peer peerOf(const sockaddr_storage& ss) {
  Peer p;
  if (ss.ss_family == AF_INET) {
    p.known = true;
    std::memcpy(p.address, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4);
  } else if (ss.ss_family == AF_INET6) {
    p.known = true;
    p.ipv6 = true;
    std::memcpy(p.address, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
  }
  return p;
}

Peer peerOf(const asio::ip::address& a) {
  Peer p;
  p.known = true;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::memcpy(p.address, b.data(), 4);
  } else {
    p.ipv6 = true;
    const auto b = a.to_v6().to_bytes();
    std::memcpy(p.address, b.data(), 16);
  }
  return p;
}

std::string bindError(const ListenAddress& la, const char* proto,
                      const boost::system::error_code& ec) {
  if (ec == asio::error::address_in_use) {
    return "cannot listen on " + la.text() + " (" + proto +
           "): address in use by another process (another meridian, or another DNS server?)";
  }
  return "cannot listen on " + la.text() + " (" + proto + "): " + ec.message();
}

// Makes sure no other process holds `la`, and turns port 0 into a concrete free port.
//
// Every worker's socket carries SO_REUSEPORT so the kernel spreads queries over them; but the
// kernel lets ANY socket of the same user that also sets SO_REUSEPORT join that group, so a
// second Meridian started on the same address would bind silently and take half the traffic. To
// fail with "address in use" as Knot and NSD do, we first bind a probe socket WITHOUT SO_REUSEPORT
// on the same address, port and protocol (with the real sockets' IPV6_V6ONLY; for TCP with
// SO_REUSEADDR, so a previous run's TIME_WAIT connections do not count, while a listening socket
// still does): EADDRINUSE means somebody else holds it. The probe is closed just before the workers
// bind.
//
// The window between closing the probe and the first worker's bind is a few system calls long. A
// plain socket that takes the port inside it still makes our bind fail (it has no SO_REUSEPORT),
// so only a SO_REUSEPORT socket of the same user created in those microseconds could join
// unnoticed; we accept that rather than hold a lock file per address.
//
// Port 0: the UDP probe gets an ephemeral port from the kernel, which by construction no one
// holds, and the TCP probe must get the same number (retried with another port otherwise), so
// tests can bind ":0" and read the port from the ready line instead of guessing a free one.
Result<void> claimAddress(ListenAddress& la) {
  const bool v6 = la.address.is_v6();
  const bool any_port = la.port == 0;
  // Ephemeral ranges hold tens of thousands of ports; 32 tries where UDP's pick is taken on TCP
  // only fail on a host that has almost none left.
  for (int attempt = 0; attempt < 32; ++attempt) {
    asio::io_context io;
    boost::system::error_code ec;
    udp::socket u(io);
    u.open(v6 ? udp::v6() : udp::v4(), ec);
    if (!ec && v6) u.set_option(asio::ip::v6_only(true), ec);
    if (!ec) u.bind(udp::endpoint(la.address, la.port), ec);
    if (ec) return Error{bindError(la, "UDP", ec)};
    const uint16_t port = u.local_endpoint(ec).port();
    if (ec) return Error{bindError(la, "UDP", ec)};
    tcp::acceptor a(io);
    a.open(v6 ? tcp::v6() : tcp::v4(), ec);
    if (!ec && v6) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) a.bind(tcp::endpoint(la.address, port), ec);
    if (ec == asio::error::address_in_use && any_port) continue;
    if (ec) return Error{bindError(ListenAddress{la.address, port}, "TCP", ec)};
    la.port = port;
    return {};
  }
  return Error{"cannot listen on " + la.text() + ": no port free for both UDP and TCP"};
}

}  // namespace

class Server::Worker {
 public:
  Worker(const Published<ServingState>& state, const ServerSettings& settings,
         std::atomic<unsigned>& tcp_active)
      : settings_(settings),
        domain_(state.domain()),
        handler_(state),
        tcp_active_(tcp_active),
        quiescent_timer_(io_) {}

  ~Worker() { domain_.leave(slot_); }

  Result<void> bind() {
    // Registered before the thread starts (a slot taken early only makes reclamation wait): from
    // here on the control side frees an old snapshot only after this worker passed a quiescent
    // point (core/snapshot.h).
    if (slot_ == nullptr) slot_ = domain_.enter();
    if (slot_ == nullptr) return Error{"more worker threads than snapshot reader slots"};
    for (const auto& la : settings_.listen) {
      boost::system::error_code ec;
      const bool v6 = la.address.is_v6();
      auto u = std::make_unique<udp::socket>(io_);
      u->open(v6 ? udp::v6() : udp::v4(), ec);
      if (!ec && v6) u->set_option(asio::ip::v6_only(true), ec);
      if (!ec) reusePort(u->native_handle());
      if (!ec) growBuffers(u->native_handle());
      if (!ec) u->bind(udp::endpoint(la.address, la.port), ec);
      if (!ec) u->non_blocking(true, ec);
      if (ec) return Error{bindError(la, "UDP", ec)};
      udp_.push_back(std::move(u));

      auto a = std::make_unique<tcp::acceptor>(io_);
      a->open(v6 ? tcp::v6() : tcp::v4(), ec);
      if (!ec && v6) a->set_option(asio::ip::v6_only(true), ec);
      if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) reusePort(a->native_handle());
      if (!ec) a->bind(tcp::endpoint(la.address, la.port), ec);
      if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) return Error{bindError(la, "TCP", ec)};
      tcp_.push_back(std::move(a));
    }
    return {};
  }

  void run() {
    armQuiescent();
    for (auto& u : udp_) armUdp(*u);
    for (auto& a : tcp_) asio::co_spawn(io_, acceptLoop(*a), asio::detached);
    io_.run();
    domain_.leave(slot_);
    slot_ = nullptr;
  }

  // Called from the control thread: close listening sockets and idle connections; run() returns
  // once the last in-flight exchange is done.
  void drain() {
    asio::post(io_, [this] {
      draining_ = true;
      boost::system::error_code ec;
      for (auto& u : udp_) u->close(ec);
      for (auto& a : tcp_) a->close(ec);
      for (auto* s : sessions_) s->cancel(ec);
      quiescent_timer_.cancel();
    });
  }

  [[nodiscard]] const Counters& counters() const { return handler_.counters(); }
  [[nodiscard]] uint64_t tcpConnections() const {
    return tcp_accepted_.load(std::memory_order_relaxed);
  }

 private:
  static void reusePort(int fd) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }

  // The kernel default (~200 KiB) holds only a few hundred queued datagrams, so a burst while the
  // worker is busy is dropped. 4 MiB (as NSD's and gdnsd's tuning guides suggest) absorbs bursts;
  // SO_RCVBUFFORCE lifts the net.core.rmem_max cap when we have CAP_NET_ADMIN.
  static void growBuffers(int fd) {
    const int size = 4 << 20;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
  }

  // Datagrams per recvmmsg/sendmmsg call: 32 amortises the syscall over a burst without holding
  // replies back long; buffers hold the largest query we accept and the largest reply we send.
  static constexpr int kBatch = 32;
  static constexpr size_t kMaxQuery = 4096;
  static constexpr size_t kMaxReply = 4096;
  // Batches handled per readiness event before yielding to TCP work on the same loop.
  static constexpr int kRoundsPerWake = 16;

  struct UdpBuffers {
    mmsghdr in_msgs[kBatch];
    iovec in_iov[kBatch];
    sockaddr_storage addrs[kBatch];
    mmsghdr out_msgs[kBatch];
    iovec out_iov[kBatch];
    uint8_t in[kBatch][kMaxQuery];
    uint8_t out[kBatch][kMaxReply];
  };

  // A worker that gets no queries still passes a quiescent point every kQuiescentMs, so a reload
  // is retired within that (plus the control side's reclaim timer) instead of pinned forever.
  // Between two handlers of this loop no snapshot is held.
  static constexpr int kQuiescentMs = 100;
  void armQuiescent() {
    domain_.quiescent(*slot_);
    quiescent_timer_.expires_after(std::chrono::milliseconds(kQuiescentMs));
    quiescent_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !draining_) armQuiescent();
    });
  }
  void quiescent() { domain_.quiescent(*slot_); }

  void armUdp(udp::socket& s) {
    s.async_wait(udp::socket::wait_read, [this, &s](const boost::system::error_code& ec) {
      if (ec || draining_) return;
      drainUdp(s.native_handle());
      armUdp(s);
    });
  }

  // The message headers point at fixed per-slot buffers; set them up once.
  static std::unique_ptr<UdpBuffers> makeUdpBuffers() {
    auto b = std::make_unique<UdpBuffers>();
    std::memset(b->in_msgs, 0, sizeof b->in_msgs);
    std::memset(b->out_msgs, 0, sizeof b->out_msgs);
    for (int i = 0; i < kBatch; ++i) {
      b->in_iov[i] = iovec{b->in[i], kMaxQuery};
      b->in_msgs[i].msg_hdr.msg_name = &b->addrs[i];
      b->in_msgs[i].msg_hdr.msg_iov = &b->in_iov[i];
      b->in_msgs[i].msg_hdr.msg_iovlen = 1;
      b->out_msgs[i].msg_hdr.msg_iov = &b->out_iov[i];
      b->out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return b;
  }

  void drainUdp(int fd) {
    UdpBuffers& b = *udp_buffers_;
    for (int round = 0; round < kRoundsPerWake; ++round) {
      quiescent();  // no query of this worker is in progress at the top of a batch
      for (int i = 0; i < kBatch; ++i) {
        b.in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        b.in_msgs[i].msg_hdr.msg_flags = 0;
      }
      const int n = ::recvmmsg(fd, b.in_msgs, kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      int m = 0;
      for (int i = 0; i < n; ++i) {
        if (b.in_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than any sane query
        const size_t len = handler_.handle(b.in[i], b.in_msgs[i].msg_len, b.out[m], kMaxReply,
                                           Transport::kUdp, peerOf(b.addrs[i]));
        if (len == 0) continue;
        b.out_iov[m] = iovec{b.out[m], len};
        b.out_msgs[m].msg_hdr.msg_name = &b.addrs[i];
        b.out_msgs[m].msg_hdr.msg_namelen = b.in_msgs[i].msg_hdr.msg_namelen;
        ++m;
      }
      int sent = 0;
      while (sent < m) {
        const int r = ::sendmmsg(fd, b.out_msgs + sent, static_cast<unsigned>(m - sent), 0);
        if (r <= 0) {
          if (r < 0 && errno == EINTR) continue;
          // A full socket buffer or an unreachable client: the reply is lost as UDP allows; skip
          // the datagram that failed and carry on with the rest.
          ++sent;
          continue;
        }
        sent += r;
      }
      if (n < kBatch) return;
    }
  }

  asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor) {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || draining_) co_return;
        continue;  // e.g. EMFILE: keep accepting once descriptors free up
      }
      if (tcp_active_.fetch_add(1) >= settings_.tcp_max_connections) {
        tcp_active_.fetch_sub(1);
        boost::system::error_code ignored;
        sock.close(ignored);
        continue;
      }
      tcp_accepted_.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(io_, session(std::move(sock)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket sock) {
    using namespace asio::experimental::awaitable_operators;
    struct Release {
      Worker* w;
      tcp::socket* s;
      ~Release() {
        w->tcp_active_.fetch_sub(1);
        w->sessions_.erase(s);
      }
    } release{this, &sock};
    sessions_.insert(&sock);
    // One 64 KiB buffer each way per connection (RFC 1035 §4.2.2: messages up to 65535 octets).
    auto in = std::make_unique<uint8_t[]>(dns::kMaxMessageSize);
    auto out = std::make_unique<uint8_t[]>(dns::kMaxMessageSize + 2);
    asio::steady_timer timer(io_);
    const auto idle = std::chrono::milliseconds(settings_.tcp_idle_timeout_ms);
    uint8_t prefix[2];
    boost::system::error_code peer_ec;
    const auto remote = sock.remote_endpoint(peer_ec);
    const Peer peer = peer_ec ? Peer{} : peerOf(remote.address());
    while (!draining_) {
      timer.expires_after(idle);
      auto r1 = co_await (
          asio::async_read(sock, asio::buffer(prefix, 2), asio::as_tuple(asio::use_awaitable)) ||
          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r1.index() != 0 || std::get<0>(std::get<0>(r1))) break;
      const size_t len = dns::readU16(prefix);
      if (len == 0) break;
      timer.expires_after(idle);
      auto r2 = co_await (asio::async_read(sock, asio::buffer(in.get(), len),
                                           asio::as_tuple(asio::use_awaitable)) ||
                          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (r2.index() != 0 || std::get<0>(std::get<0>(r2))) break;
      const size_t n = handler_.handle(in.get(), len, out.get() + 2, dns::kMaxMessageSize,
                                       Transport::kTcp, peer);
      if (n == 0) continue;
      dns::writeU16(out.get(), static_cast<uint16_t>(n));
      auto [wec, written] = co_await asio::async_write(sock, asio::buffer(out.get(), n + 2),
                                                       asio::as_tuple(asio::use_awaitable));
      if (wec) break;
    }
    boost::system::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
  }

  const ServerSettings& settings_;
  QuiescentDomain& domain_;
  QuiescentDomain::Slot* slot_ = nullptr;
  asio::io_context io_{1};
  QueryHandler handler_;
  std::atomic<unsigned>& tcp_active_;
  asio::steady_timer quiescent_timer_;
  std::atomic<uint64_t> tcp_accepted_{0};
  std::vector<std::unique_ptr<udp::socket>> udp_;
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_;
  std::set<tcp::socket*> sessions_;
  bool draining_ = false;
  std::unique_ptr<UdpBuffers> udp_buffers_ = makeUdpBuffers();
};

Server::Server(const Published<ServingState>& state, ServerSettings settings)
    : state_(state), settings_(std::move(settings)) {}

Server::~Server() {
  stop();
}

Result<void> Server::start() {
  for (auto& la : settings_.listen) {
    auto r = claimAddress(la);
    if (!r) return r;
  }
  for (unsigned i = 0; i < settings_.threads; ++i) {
    auto w = std::make_unique<Worker>(state_, settings_, tcp_active_);
    auto r = w->bind();
    if (!r) {
      workers_.clear();
      return r;
    }
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) threads_.emplace_back([wp = w.get()] { wp->run(); });
  return {};
}

void Server::stop() {
  for (auto& w : workers_) w->drain();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

CounterTotals Server::totals() const {
  CounterTotals t;
  for (const auto& w : workers_) {
    const Counters& c = w->counters();
    t.queries += c.queries.load(std::memory_order_relaxed);
    t.dropped += c.dropped.load(std::memory_order_relaxed);
    t.truncated += c.truncated.load(std::memory_order_relaxed);
    for (size_t i = 0; i < 24; ++i) t.rcodes[i] += c.rcodes[i].load(std::memory_order_relaxed);
    t.rrl_slipped += c.rrl_slipped.load(std::memory_order_relaxed);
    t.rrl_dropped += c.rrl_dropped.load(std::memory_order_relaxed);
    t.tcp_connections += w->tcpConnections();
  }
  return t;
}

}  // namespace meridian::server
