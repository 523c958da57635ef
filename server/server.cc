#include "server/server.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>

#include "core/log.h"
#include "dnstap/writer.h"
#include "server/recursor.h"

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
    p.port = ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  } else if (ss.ss_family == AF_INET6) {
    p.known = true;
    p.ipv6 = true;
    std::memcpy(p.address, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16);
    p.port = ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  }
  return p;
}

Peer peerOf(const asio::ip::address& a, uint16_t port) {
  Peer p;
  p.known = true;
  p.port = port;
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

void reusePort(int fd) {
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
}

// A thread that gets no queries still passes a quiescent point this often (a UDP thread's receive
// timeout, a worker loop's timer), so a reload is retired within that (plus the control side's
// reclaim timer) instead of pinned forever.
constexpr long kQuiescentMs = 100;

// Sums one QueryHandler's counters into t (the control side reads while workers write).
void addCounters(CounterTotals& t, const Counters& c) {
  t.queries += c.queries.load(std::memory_order_relaxed);
  t.dropped += c.dropped.load(std::memory_order_relaxed);
  t.truncated += c.truncated.load(std::memory_order_relaxed);
  for (size_t i = 0; i < 24; ++i) t.rcodes[i] += c.rcodes[i].load(std::memory_order_relaxed);
  t.rrl_slipped += c.rrl_slipped.load(std::memory_order_relaxed);
  t.rrl_dropped += c.rrl_dropped.load(std::memory_order_relaxed);
  t.cookie_client_only += c.cookie_client_only.load(std::memory_order_relaxed);
  t.cookie_valid += c.cookie_valid.load(std::memory_order_relaxed);
  t.cookie_invalid += c.cookie_invalid.load(std::memory_order_relaxed);
  t.pending += c.pending.load(std::memory_order_relaxed);
  t.dnstap_sent += c.dnstap_sent.load(std::memory_order_relaxed);
  t.dnstap_dropped += c.dnstap_dropped.load(std::memory_order_relaxed);
  t.breakdown.add(c.breakdown);
}

// A listen address as the responder of dnstap messages; a wildcard one is left out (the reply's
// source address is chosen per datagram).
dnstap::Endpoint dnstapEndpoint(const ListenAddress& la) {
  dnstap::Endpoint e;
  if (la.address.is_unspecified()) return e;
  const Peer p = peerOf(la.address, la.port);
  e.known = true;
  e.ipv6 = p.ipv6;
  std::memcpy(e.address, p.address, sizeof e.address);
  e.port = p.port;
  return e;
}

boost::system::error_code lastError() {
  return {errno, boost::system::system_category()};
}

// ---- UDP ----------------------------------------------------------------------------------
//
// Each UDP socket is served by a thread of its own that blocks in recvmmsg, as gdnsd's UDP
// threads do: under load the steady state is one recvmmsg and one sendmmsg per batch and nothing
// else (no readiness wait, no re-arming of an event loop: on Asio those cost an epoll_wait and an
// epoll_ctl about every second batch). The socket is never registered with an Asio loop.
//
// Quiescent points: the thread holds no snapshot between batches and passes one at the top of
// each. An idle one is woken by SO_RCVTIMEO every kQuiescentMs and passes one then, so it never
// pins a retired snapshot for longer.
//
// Stopping: the control thread sets stop_ and calls shutdown(SHUT_RD) on the socket. On Linux that
// wakes a recvmmsg blocked on an unconnected UDP socket at once (it returns 0 once the queue is
// empty; shutdown itself reports ENOTCONN, which is expected). The receive timeout bounds the stop
// by kQuiescentMs even where shutdown would not wake it. The thread sees stop_ at the top of its
// next batch; the socket is closed after the join, so no descriptor number is reused under a
// running recvmmsg.
class UdpThread {
 public:
  UdpThread(const Published<ServingState>& state, Recursor& recursor)
      : domain_(state.domain()), handler_(state), recursor_(recursor) {}
  ~UdpThread() {
    requestStop();
    join();
    if (fd_ >= 0) ::close(fd_);
    domain_.leave(slot_);
  }
  UdpThread(const UdpThread&) = delete;
  UdpThread& operator=(const UdpThread&) = delete;

  Result<void> bind(const ListenAddress& la) {
    // Registered before the thread starts, as the workers are (see Worker::bind).
    slot_ = domain_.enter();
    if (slot_ == nullptr) return Error{"more worker threads than snapshot reader slots"};
    const bool v6 = la.address.is_v6();
    boost::system::error_code ec;
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) ec = lastError();
    const int one = 1;
    if (!ec && v6 && ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
      ec = lastError();
    }
    if (!ec) reusePort(fd_);
    if (!ec) growBuffers(fd_);
    if (!ec) {
      const udp::endpoint ep(la.address, la.port);
      if (::bind(fd_, ep.data(), static_cast<socklen_t>(ep.size())) != 0) ec = lastError();
    }
    pktinfo_ = la.address.is_unspecified();
    if (!ec && pktinfo_) askPacketInfo(fd_, v6, ec);
    if (!ec) {
      const timeval tv{0, kQuiescentMs * 1000};
      if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) ec = lastError();
    }
    if (ec) return Error{bindError(la, "UDP", ec)};
    return {};
  }

  void start() {
    thread_ = std::thread([this] { run(); });
    ::pthread_setname_np(thread_.native_handle(), "meridian-udp");
  }
  // Control thread; returns at once, join() waits.
  void requestStop() {
    stop_.store(true, std::memory_order_relaxed);
    if (fd_ >= 0) (void)::shutdown(fd_, SHUT_RD);
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] const Counters& counters() const { return handler_.counters(); }
  // Before start(): this thread's dnstap output, with its socket's address as the responder.
  void setDnstap(dnstap::Sink* sink, const ListenAddress& la) {
    sink->setLocal(dnstapEndpoint(la));
    handler_.setDnstap(sink);
  }

 private:
  // Datagrams per recvmmsg/sendmmsg call: 32 amortises the syscall over a burst without holding
  // replies back long; buffers hold the largest query we accept and the largest reply we send.
  static constexpr int kBatch = 32;
  static constexpr size_t kMaxQuery = 4096;
  static constexpr size_t kMaxReply = 4096;

  // On a wildcard address (0.0.0.0, [::]) the kernel picks a reply's source by routing, which on a
  // host with several addresses need not be the one the query was sent to, and a client drops a
  // reply from another address. With IP_PKTINFO / IPV6_RECVPKTINFO every datagram carries its
  // destination, and the reply is sent from it (replyFrom). The v6 socket is IPV6_V6ONLY, so it
  // never sees v4-mapped queries: 0.0.0.0 is its own socket with IP_PKTINFO.
  static void askPacketInfo(int fd, bool v6, boost::system::error_code& ec) {
    const int one = 1;
    const int r = v6 ? ::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one)
                     : ::setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    if (r != 0) ec = lastError();
  }

  // The kernel default (~200 KiB) holds only a few hundred queued datagrams, so a burst while the
  // thread is busy is dropped. 4 MiB (as NSD's and gdnsd's tuning guides suggest) absorbs bursts;
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

  // Room for one packet-info control message of either family (in6_pktinfo is the larger).
  union Control {
    cmsghdr align;
    uint8_t bytes[CMSG_SPACE(sizeof(in6_pktinfo))];
  };

  struct UdpBuffers {
    mmsghdr in_msgs[kBatch];
    iovec in_iov[kBatch];
    sockaddr_storage addrs[kBatch];
    Control in_ctrl[kBatch];
    mmsghdr out_msgs[kBatch];
    iovec out_iov[kBatch];
    Control out_ctrl[kBatch];
    uint8_t in[kBatch][kMaxQuery];
    uint8_t out[kBatch][kMaxReply];
  };

  // The message headers point at fixed per-slot buffers; set them up once.
  static std::unique_ptr<UdpBuffers> makeUdpBuffers() {
    auto b = std::make_unique<UdpBuffers>();
    std::memset(b->in_msgs, 0, sizeof b->in_msgs);
    std::memset(b->out_msgs, 0, sizeof b->out_msgs);
    for (int i = 0; i < kBatch; ++i) {
      b->in_iov[i] = iovec{b->in[i], kMaxQuery};
      b->in_msgs[i].msg_hdr.msg_name = &b->addrs[i];
      b->in_msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      b->in_msgs[i].msg_hdr.msg_iov = &b->in_iov[i];
      b->in_msgs[i].msg_hdr.msg_iovlen = 1;
      b->in_msgs[i].msg_hdr.msg_control = &b->in_ctrl[i];
      b->in_msgs[i].msg_hdr.msg_controllen = sizeof(Control);
      b->out_msgs[i].msg_hdr.msg_iov = &b->out_iov[i];
      b->out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return b;
  }

  // Makes `ctrl` the reply's one control message, carrying `value`.
  template <typename T>
  static void setControl(msghdr& out, Control& ctrl, int level, int type, const T& value) {
    out.msg_control = &ctrl;
    out.msg_controllen = CMSG_SPACE(sizeof value);
    cmsghdr* o = CMSG_FIRSTHDR(&out);
    o->cmsg_level = level;
    o->cmsg_type = type;
    o->cmsg_len = CMSG_LEN(sizeof value);
    std::memcpy(CMSG_DATA(o), &value, sizeof value);
  }

  // Copies the destination of a query (its packet-info control message, present only on wildcard
  // sockets) into the reply's header as its source; without one the kernel chooses as before.
  static void replyFrom(msghdr& in, msghdr& out, Control& ctrl) {
    out.msg_control = nullptr;
    out.msg_controllen = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&in); c != nullptr; c = CMSG_NXTHDR(&in, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo got;
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        // ipi_spec_dst is the local address the datagram was for (for a broadcast, the receiving
        // interface's address); interface 0 lets routing choose the way out.
        in_pktinfo send{};
        send.ipi_spec_dst = got.ipi_spec_dst;
        setControl(out, ctrl, IPPROTO_IP, IP_PKTINFO, send);
        return;
      }
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo got;
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        if (IN6_IS_ADDR_MULTICAST(&got.ipi6_addr)) return;  // not a source address
        in6_pktinfo send{};
        send.ipi6_addr = got.ipi6_addr;
        // A link-local address is only unique with its interface; others route freely.
        if (IN6_IS_ADDR_LINKLOCAL(&got.ipi6_addr)) send.ipi6_ifindex = got.ipi6_ifindex;
        setControl(out, ctrl, IPPROTO_IPV6, IPV6_PKTINFO, send);
        return;
      }
    }
  }

  void run() {
    UdpBuffers& b = *buffers_;
    int used = kBatch;  // headers the last recvmmsg wrote into (all of them before the first)
    while (!stop_.load(std::memory_order_relaxed)) {
      domain_.quiescent(*slot_);  // no query is in progress at the top of a batch
      // The kernel rewrote the name length, control length and flags of the datagrams it filled.
      for (int i = 0; i < used; ++i) {
        msghdr& h = b.in_msgs[i].msg_hdr;
        h.msg_namelen = sizeof(sockaddr_storage);
        h.msg_controllen = pktinfo_ ? sizeof(Control) : 0;
        h.msg_flags = 0;
      }
      // MSG_WAITFORONE: block for the first datagram only, then take what else is queued.
      const int n = ::recvmmsg(fd_, b.in_msgs, kBatch, MSG_WAITFORONE, nullptr);
      // < 0: the receive timeout (EAGAIN, a quiescent point is due), EINTR, or a transient error.
      // After shutdown() the kernel reports an empty "datagram" (length 0) rather than none, so
      // a batch that returns once stopping is not answered (nor counted as dropped queries).
      used = n > 0 ? n : 0;
      if (n > 0 && !stop_.load(std::memory_order_relaxed)) answer(b, n);
    }
    domain_.leave(slot_);
    slot_ = nullptr;
  }

  static uint64_t monotonicNs() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
  }

  void answer(UdpBuffers& b, int n) {
    // The answer latency histogram: one clock read before and one after the batch (vDSO, no
    // system call), every answer counted with the batch's time.
    const uint64_t received = monotonicNs();
    int m = 0;
    for (int i = 0; i < n; ++i) {
      const msghdr& in = b.in_msgs[i].msg_hdr;
      if (in.msg_flags & MSG_TRUNC) continue;  // larger than any sane query
      const size_t len = handler_.handle(b.in[i], b.in_msgs[i].msg_len, b.out[m], kMaxReply,
                                         Transport::kUdp, peerOf(b.addrs[i]));
      if (len == 0) {
        if (handler_.outcome() == Outcome::kPending) park(b, i);
        continue;
      }
      msghdr& out = b.out_msgs[m].msg_hdr;
      b.out_iov[m] = iovec{b.out[m], len};
      out.msg_name = &b.addrs[i];
      out.msg_namelen = in.msg_namelen;
      if (pktinfo_) replyFrom(b.in_msgs[i].msg_hdr, out, b.out_ctrl[m]);
      ++m;
    }
    if (m > 0) handler_.observeLatency(monotonicNs() - received, static_cast<uint64_t>(m));
    int sent = 0;
    while (sent < m) {
      const int r = ::sendmmsg(fd_, b.out_msgs + sent, static_cast<unsigned>(m - sent), 0);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        // A full socket buffer or an unreachable client: the reply is lost as UDP allows; skip
        // the datagram that failed and carry on with the rest.
        ++sent;
        continue;
      }
      sent += r;
    }
  }

  // A recursive question: its own copy of the query, the client's address and the reply's source
  // go to the Recursor, which answers from its thread on this socket; the batch slot is reused by
  // the next recvmmsg. The socket outlives the Recursor's sends (Server::stop stops it first).
  void park(UdpBuffers& b, int i) {
    const msghdr& in = b.in_msgs[i].msg_hdr;
    auto p = parkQuery(handler_.snapshot(), b.in[i], b.in_msgs[i].msg_len, Transport::kUdp,
                       peerOf(b.addrs[i]));
    p->udp_fd = fd_;
    std::memcpy(&p->client, &b.addrs[i], sizeof p->client);
    p->client_len = in.msg_namelen;
    if (pktinfo_) {
      msghdr src{};
      Control ctrl;
      replyFrom(b.in_msgs[i].msg_hdr, src, ctrl);
      static_assert(sizeof(Control) <= sizeof p->control);
      if (src.msg_controllen > 0) std::memcpy(p->control, &ctrl, src.msg_controllen);
      p->control_len = src.msg_controllen;
    }
    recursor_.submit(std::move(p));
  }

  QuiescentDomain& domain_;
  QuiescentDomain::Slot* slot_ = nullptr;
  QueryHandler handler_;
  Recursor& recursor_;
  int fd_ = -1;
  bool pktinfo_ = false;  // a wildcard address: datagrams carry their destination
  std::atomic<bool> stop_{false};
  std::unique_ptr<UdpBuffers> buffers_ = makeUdpBuffers();
  std::thread thread_;
};

}  // namespace

// Input carried over between reads of one TCP connection: the start of a message whose end has
// not arrived, or (while the client is not reading its replies) complete queries not answered yet.
// A query split by the network fits the inline part, so a connection holds no heap memory for its
// input unless a message larger than kInline arrives in pieces or its output is blocked; the heap
// part is released as soon as it is empty again.
class TcpCarry {
 public:
  [[nodiscard]] const uint8_t* data() const { return heap_ ? heap_.get() : inline_; }
  [[nodiscard]] size_t size() const { return len_; }
  [[nodiscard]] bool empty() const { return len_ == 0; }
  // Room for n more octets at the end; commit() the ones written.
  uint8_t* tail(size_t n) {
    if (len_ + n > cap_) {
      const size_t cap = len_ + n;
      auto grown = std::make_unique_for_overwrite<uint8_t[]>(cap);
      std::memcpy(grown.get(), data(), len_);
      heap_ = std::move(grown);
      cap_ = cap;
    }
    return (heap_ ? heap_.get() : inline_) + len_;
  }
  void commit(size_t n) { len_ += n; }
  void append(const uint8_t* p, size_t n) {
    std::memcpy(tail(n), p, n);
    commit(n);
  }
  // Drops the first n octets.
  void consume(size_t n) {
    if (n >= len_) {
      clear();
      return;
    }
    uint8_t* base = heap_ ? heap_.get() : inline_;
    std::memmove(base, base + n, len_ - n);
    len_ -= n;
    if (heap_ && len_ <= kInline) {
      std::memcpy(inline_, heap_.get(), len_);
      heap_.reset();
      cap_ = kInline;
    }
  }
  void clear() {
    len_ = 0;
    heap_.reset();
    cap_ = kInline;
  }

 private:
  // Queries are rarely longer than this (a name of 255 octets, OPT with a cookie and ECS, a TSIG).
  static constexpr size_t kInline = 512;
  uint8_t inline_[kInline];
  std::unique_ptr<uint8_t[]> heap_;
  size_t cap_ = kInline;
  size_t len_ = 0;
};

// One accepted TCP connection, owned by its worker. It sits in exactly one of the worker's two
// lists while open: `idle` (nothing in progress: no partial message, no unsent output) or `busy`
// (a message partly received, or output the client has not taken). Each list is ordered by
// `since`, the time the connection entered its state, so the head is the first to time out and the
// head of `idle` is the oldest idle connection.
struct TcpConn {
  explicit TcpConn(tcp::socket s) : sock(std::move(s)) {}
  tcp::socket sock;
  Peer peer;
  TcpConn* prev = nullptr;
  TcpConn* next = nullptr;
  std::chrono::steady_clock::time_point since;
  bool busy = false;     // in the busy list (else the idle one)
  bool waiting = false;  // an async_wait or a posted handler refers to this object
  bool closed = false;   // socket closed; freed when no handler refers to it any more
  bool eof = false;      // the client sent FIN (or a zero-length message): close once flushed
  bool failed = false;   // a socket error: close at once
  // Recursive questions parked on the Recursor whose replies have not come back: the object
  // stays (closed or not) until each has, so a reply never lands on freed memory.
  unsigned pending = 0;
  TcpCarry in;
  std::unique_ptr<uint8_t[]> out;  // output the socket would not take yet
  size_t out_len = 0, out_off = 0;
};

// Intrusive doubly-linked list of connections; O(1) push at the back and removal.
struct TcpConnList {
  TcpConn* head = nullptr;
  TcpConn* tail = nullptr;
  void pushBack(TcpConn* c) {
    c->prev = tail;
    c->next = nullptr;
    (tail ? tail->next : head) = c;
    tail = c;
  }
  void remove(TcpConn* c) {
    (c->prev ? c->prev->next : head) = c->next;
    (c->next ? c->next->prev : tail) = c->prev;
    c->prev = c->next = nullptr;
  }
};

class Server::Worker {
 public:
  Worker(const Published<ServingState>& state, const ServerSettings& settings, Recursor& recursor)
      : state_(state),
        settings_(settings),
        recursor_(recursor),
        domain_(state.domain()),
        handler_(state),
        quiescent_timer_(io_),
        idle_timeout_(settings.tcp_idle_timeout_ms),
        io_timeout_(settings.tcp_io_timeout_ms),
        tcp_limit_(std::max(1u, (settings.tcp_max_connections + settings.threads - 1) /
                                    std::max(1u, settings.threads))) {}

  ~Worker() {
    // run() returns only when no handler is outstanding, so every connection left is in a list.
    for (TcpConnList* l : {&idle_, &busy_}) {
      while (TcpConn* c = l->head) {
        l->remove(c);
        delete c;
      }
    }
    domain_.leave(slot_);
  }

  Result<void> bind() {
    // Registered before the thread starts (a slot taken early only makes reclamation wait): from
    // here on the control side frees an old snapshot only after this worker passed a quiescent
    // point (core/snapshot.h).
    if (slot_ == nullptr) slot_ = domain_.enter();
    if (slot_ == nullptr) return Error{"more worker threads than snapshot reader slots"};
    for (const auto& la : settings_.listen) {
      udp_.push_back(std::make_unique<UdpThread>(state_, recursor_));
      auto r = udp_.back()->bind(la);
      if (!r) return r;

      boost::system::error_code ec;
      const bool v6 = la.address.is_v6();
      auto a = std::make_unique<tcp::acceptor>(io_);
      a->open(v6 ? tcp::v6() : tcp::v4(), ec);
      if (!ec && v6) a->set_option(asio::ip::v6_only(true), ec);
      if (!ec) a->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) reusePort(a->native_handle());
      if (!ec) a->bind(tcp::endpoint(la.address, la.port), ec);
      if (!ec) a->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) return Error{bindError(la, "TCP", ec)};
      tcp_.push_back(std::move(a));
      accept_pause_.push_back(std::make_unique<asio::steady_timer>(io_));
    }
    return {};
  }

  // The UDP threads, before this worker's own loop runs on the calling thread.
  void startUdp() {
    for (auto& u : udp_) u->start();
  }

  void run() {
    armQuiescent();
    for (size_t i = 0; i < tcp_.size(); ++i) accept(i);
    io_.run();
    domain_.leave(slot_);
    slot_ = nullptr;
  }

  // Called from the control thread: stop the UDP threads, close listening sockets and every
  // connection; run() returns once the handlers still referring to them have run, joinUdp() once
  // the UDP threads have finished their batch.
  void drain() {
    for (auto& u : udp_) u->requestStop();
    asio::post(io_, [this] {
      draining_ = true;
      boost::system::error_code ec;
      for (auto& a : tcp_) a->close(ec);
      quiescent_timer_.cancel();
      for (auto& t : accept_pause_) t->cancel();
      sweep_.cancel();
      while (idle_.head) close(*idle_.head, false);
      while (busy_.head) close(*busy_.head, false);
    });
  }

  void joinUdp() {
    for (auto& u : udp_) u->join();
  }

  // Before the threads start: one dnstap Sink for the TCP handler and one per UDP thread, from
  // `next` on; returns the index after the last one taken.
  size_t setDnstap(dnstap::Writer& writer, size_t next) {
    dnstap::Sink* tcp = writer.sink(next++);
    if (settings_.listen.size() == 1) tcp->setLocal(dnstapEndpoint(settings_.listen[0]));
    handler_.setDnstap(tcp);
    for (size_t i = 0; i < udp_.size(); ++i)
      udp_[i]->setDnstap(writer.sink(next++), settings_.listen[i]);
    return next;
  }

  void addTotals(CounterTotals& t) const {
    addCounters(t, handler_.counters());
    for (const auto& u : udp_) addCounters(t, u->counters());
    t.tcp_connections += tcp_accepted_.load(std::memory_order_relaxed);
    t.tcp_evicted += tcp_evicted_.load(std::memory_order_relaxed);
    t.tcp_io_timeouts += tcp_io_timeouts_.load(std::memory_order_relaxed);
    t.tcp_refused += tcp_refused_.load(std::memory_order_relaxed);
  }

 private:
  using Clock = std::chrono::steady_clock;

  // The worker's loop passes a quiescent point from a timer when its TCP work alone would not
  // bring it there: between two handlers of this loop no snapshot is held.
  void armQuiescent() {
    domain_.quiescent(*slot_);
    quiescent_timer_.expires_after(std::chrono::milliseconds(kQuiescentMs));
    quiescent_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec && !draining_) armQuiescent();
    });
  }

  // ---- TCP (RFC 7766) -------------------------------------------------------------------
  //
  // Readiness-driven, without coroutines: a connection waits for "readable" (or, with output
  // blocked, "writable"), then serve() reads what is there into the worker's scratch buffer,
  // answers every complete message into the worker's reply scratch and writes the replies in one
  // send. Only what is left over (the start of a message, output the client has not taken) is
  // kept on the connection, so an idle connection holds no buffer at all. Timeouts are swept from
  // the two ordered lists by one timer per worker, so answering a query arms no timer.

  // One read takes up to a largest message and its length prefix; a pipelined burst beyond it is
  // read in further rounds. Replies collect in tx_ until it could not hold another largest one.
  static constexpr size_t kRxSize = dns::kMaxMessageSize + 2;
  static constexpr size_t kTxSize = 2 * (dns::kMaxMessageSize + 2);
  // Reads per readiness event before the connection yields the loop to the others (64 KiB each).
  static constexpr int kTcpReadsPerWake = 4;
  // How long accepting pauses when the process is out of descriptors and no idle connection can
  // be closed for one: long enough not to spin on EMFILE, short next to any client's retry.
  static constexpr std::chrono::milliseconds kAcceptPause{100};

  void accept(size_t i) {
    tcp_[i]->async_accept([this, i](const boost::system::error_code& ec, tcp::socket sock) {
      if (draining_ || ec == asio::error::operation_aborted) return;
      if (!ec) {
        admit(std::move(sock));
      } else if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                 ec.value() == ENFILE) {
        // Out of descriptors: an idle connection gives its one back; otherwise wait a little
        // rather than spin on a listening socket that stays readable.
        if (idle_.head) {
          close(*idle_.head, false);
          tcp_evicted_.fetch_add(1, std::memory_order_relaxed);
        } else {
          accept_pause_[i]->expires_after(kAcceptPause);
          accept_pause_[i]->async_wait([this, i](const boost::system::error_code& e) {
            if (!e && !draining_) accept(i);
          });
          return;
        }
      }
      accept(i);
    });
  }

  // RFC 7766 §6.2.3 lets a server close idle connections to free resources: at the limit, the
  // connection idle for longest makes room, so a flood of idle connections cannot lock out new
  // clients. Connections in the middle of a message or of output are never closed for it; they
  // are bounded by the I/O timeout instead.
  void admit(tcp::socket sock) {
    if (tcp_count_ >= tcp_limit_) {
      if (idle_.head) {
        close(*idle_.head, false);
        tcp_evicted_.fetch_add(1, std::memory_order_relaxed);
      } else {
        boost::system::error_code ignored;
        sock.close(ignored);
        tcp_refused_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    boost::system::error_code ec;
    sock.non_blocking(true, ec);
    if (ec) return;
    auto* c = new TcpConn(std::move(sock));
    const auto remote = c->sock.remote_endpoint(ec);
    c->peer = ec ? Peer{} : peerOf(remote.address(), remote.port());
    ++tcp_count_;
    tcp_accepted_.fetch_add(1, std::memory_order_relaxed);
    const auto now = Clock::now();
    c->since = now;
    idle_.pushBack(c);
    if (idle_timeout_.count() > 0) armSweep(now + idle_timeout_);
    waitReadable(*c);
  }

  // Moves c (in one of the lists) to the back of the idle or busy list with `since` = now.
  void enter(TcpConn& c, bool busy, Clock::time_point now) {
    (c.busy ? busy_ : idle_).remove(&c);
    c.busy = busy;
    c.since = now;
    (busy ? busy_ : idle_).pushBack(&c);
    const auto timeout = busy ? io_timeout_ : idle_timeout_;
    if (timeout.count() > 0) armSweep(now + timeout);
  }

  void armSweep(Clock::time_point at) {
    if (sweep_armed_ && sweep_at_ <= at) return;
    sweep_armed_ = true;
    sweep_at_ = at;
    sweep_.expires_at(at);
    sweep_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || draining_) return;  // re-armed earlier (operation_aborted), or stopping
      sweep_armed_ = false;
      sweepNow();
    });
  }

  void sweepNow() {
    const auto now = Clock::now();
    while (idle_.head && idle_timeout_.count() > 0 && idle_.head->since + idle_timeout_ <= now) {
      close(*idle_.head, false);
    }
    // Knot's tcp-io-timeout: a message that does not arrive, or output the client does not read,
    // within the I/O timeout resets the connection (RST, so the kernel drops the unsent octets
    // too).
    while (busy_.head && io_timeout_.count() > 0 && busy_.head->since + io_timeout_ <= now) {
      tcp_io_timeouts_.fetch_add(1, std::memory_order_relaxed);
      close(*busy_.head, true);
    }
    if (idle_.head && idle_timeout_.count() > 0) armSweep(idle_.head->since + idle_timeout_);
    if (busy_.head && io_timeout_.count() > 0) armSweep(busy_.head->since + io_timeout_);
  }

  // Every handler that refers to a connection starts here: it no longer does, and a connection
  // closed meanwhile is freed now. True when the connection is still open.
  static bool settle(TcpConn& c) {
    c.waiting = false;
    if (!c.closed) return true;
    if (c.pending == 0) delete &c;
    return false;
  }

  // Waits until the socket is readable (then serve()) or writable (then sendPending()).
  void await(TcpConn& c, tcp::socket::wait_type what) {
    c.waiting = true;
    c.sock.async_wait(what, [this, &c, what](const boost::system::error_code& ec) {
      if (!settle(c)) return;
      if (ec == asio::error::operation_aborted && c.out) {
        waitWritable(c);  // a recursive reply blocked the output (deliver): wait for writable
      } else if (ec) {
        close(c, false);
      } else if (what == tcp::socket::wait_read) {
        serve(c);
      } else {
        sendPending(c);
      }
    });
  }
  void waitReadable(TcpConn& c) { await(c, tcp::socket::wait_read); }
  void waitWritable(TcpConn& c) { await(c, tcp::socket::wait_write); }

  // The connection yielded after kTcpReadsPerWake reads with data possibly left: continue after
  // the other ready handlers.
  void resumeLater(TcpConn& c) {
    c.waiting = true;
    asio::post(io_, [this, &c] {
      if (settle(c)) serve(c);
    });
  }

  // Closes the socket; the object goes once no handler refers to it. `reset`: abortive close
  // (SO_LINGER 0), so a client that reads nothing does not keep kernel buffers either.
  void close(TcpConn& c, bool reset) {
    if (c.closed) return;
    c.closed = true;
    (c.busy ? busy_ : idle_).remove(&c);
    --tcp_count_;
    boost::system::error_code ignored;
    if (reset) {
      c.sock.set_option(asio::socket_base::linger(true, 0), ignored);
    } else {
      c.sock.shutdown(tcp::socket::shutdown_both, ignored);
    }
    c.sock.close(ignored);  // cancels the pending wait, whose handler then frees c
    c.in.clear();
    c.out.reset();
    if (!c.waiting && c.pending == 0) delete &c;
  }

  // Writes tx_ to c. False when the socket did not take it all (the rest moves to c.out) or failed.
  bool flush(TcpConn& c) {
    size_t off = 0;
    while (off < tx_len_) {
      const ssize_t w = ::send(c.sock.native_handle(), tx_ + off, tx_len_ - off, MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c.out_len = tx_len_ - off;
        c.out_off = 0;
        c.out = std::make_unique_for_overwrite<uint8_t[]>(c.out_len);
        std::memcpy(c.out.get(), tx_ + off, c.out_len);
      } else {
        c.failed = true;
      }
      tx_len_ = 0;
      return false;
    }
    tx_len_ = 0;
    return true;
  }

  // Answers the complete messages at the start of [p, p + n) into tx_ and returns the octets they
  // took. Stops early when output blocks (c.out) or fails, or at a zero-length message.
  size_t answer(TcpConn& c, const uint8_t* p, size_t n) {
    size_t off = 0;
    while (n - off >= 2) {
      const size_t len = dns::readU16(p + off);
      if (len == 0) {  // no DNS message is empty: treat it as the end of the conversation
        c.eof = true;
        return n;
      }
      if (n - off < 2 + len) break;
      if (tx_len_ + 2 + dns::kMaxMessageSize > kTxSize && !flush(c)) return off;
      const size_t r = handler_.handle(p + off + 2, len, tx_ + tx_len_ + 2, dns::kMaxMessageSize,
                                       Transport::kTcp, c.peer);
      if (r > 0) {
        dns::writeU16(tx_ + tx_len_, static_cast<uint16_t>(r));
        tx_len_ += 2 + r;
      } else if (handler_.outcome() == Outcome::kPending) {
        park(c, p + off + 2, len);
      }
      off += 2 + len;
    }
    return off;
  }

  [[nodiscard]] static bool stalled(const TcpConn& c) { return c.out != nullptr || c.failed; }

  // A recursive question on c: parked on the Recursor, whose reply comes back through deliver()
  // on this loop, written whenever it arrives (RFC 7766 §6.2.1.1: replies may be out of order).
  void park(TcpConn& c, const uint8_t* msg, size_t len) {
    auto p = parkQuery(handler_.snapshot(), msg, len, Transport::kTcp, c.peer);
    ++c.pending;
    p->deliver = [this, conn = &c](const uint8_t* reply, size_t n) {
      // On the Recursor's thread: copy, and hand over to this worker's loop.
      auto bytes = std::make_shared<std::vector<uint8_t>>(n + 2);
      dns::writeU16(bytes->data(), static_cast<uint16_t>(n));
      std::memcpy(bytes->data() + 2, reply, n);
      asio::post(io_, [this, conn, bytes] { deliver(*conn, *bytes); });
    };
    recursor_.submit(std::move(p));
  }

  // A recursive reply (length-prefixed) for c, on this loop. A connection closed meanwhile only
  // drops it (and goes once nothing else refers to it); blocked output queues it behind the rest.
  void deliver(TcpConn& c, const std::vector<uint8_t>& msg) {
    --c.pending;
    if (c.closed) {
      if (!c.waiting && c.pending == 0) delete &c;
      return;
    }
    if (c.out) {
      const size_t left = c.out_len - c.out_off;
      auto grown = std::make_unique_for_overwrite<uint8_t[]>(left + msg.size());
      std::memcpy(grown.get(), c.out.get() + c.out_off, left);
      std::memcpy(grown.get() + left, msg.data(), msg.size());
      c.out = std::move(grown);
      c.out_len = left + msg.size();
      c.out_off = 0;
      return;  // a wait for writable (or the serve() that starts one) is under way
    }
    std::memcpy(tx_, msg.data(), msg.size());
    tx_len_ = msg.size();
    if (flush(c)) return;
    if (c.failed) {
      close(c, true);
      return;
    }
    // Blocked: the I/O timeout runs; the read wait is cancelled so that its handler waits for
    // writable instead (a posted resumeLater()'s serve() does the same).
    enter(c, true, Clock::now());
    boost::system::error_code ignored;
    if (c.waiting) c.sock.cancel(ignored);
  }

  // The connection is readable, or its blocked output has just drained: answer what it sent.
  void serve(TcpConn& c) {
    if (c.out) {  // a recursive reply blocked the output since this was scheduled
      settle(c, false, false);
      return;
    }
    bool answered = false;  // a message completed (a partial one left now started afresh)
    bool more = false;      // stopped after kTcpReadsPerWake reads, data may be left
    // Complete queries held back while the output was blocked come first, in order.
    if (!c.in.empty()) {
      const size_t before = c.in.size();
      c.in.consume(answer(c, c.in.data(), c.in.size()));
      answered = c.in.size() != before;
    }
    const int fd = c.sock.native_handle();
    for (int round = 0; !stalled(c) && !c.eof; ++round) {
      if (round == kTcpReadsPerWake) {
        more = true;
        break;
      }
      ssize_t r;
      if (!c.in.empty()) {
        // Complete the message begun earlier; read exactly the octets it still needs (prefix
        // first), so what follows it in the stream is read into the scratch buffer next round.
        const size_t have = c.in.size();
        const size_t need = have < 2 ? 2 - have : 2 + dns::readU16(c.in.data()) - have;
        r = ::recv(fd, c.in.tail(need), need, 0);
        if (r > 0) {
          c.in.commit(static_cast<size_t>(r));
          const size_t before = c.in.size();
          c.in.consume(answer(c, c.in.data(), c.in.size()));
          answered = answered || c.in.size() != before;
          continue;
        }
      } else {
        r = ::recv(fd, rx_, kRxSize, 0);
        if (r > 0) {
          const size_t got = static_cast<size_t>(r);
          const size_t used = answer(c, rx_, got);
          answered = answered || used > 0;
          if (used < got && !c.failed) c.in.append(rx_ + used, got - used);
          if (got < kRxSize) break;  // drained for now; the wait re-checks readiness anyway
          continue;
        }
      }
      if (r == 0) {
        c.eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        c.failed = true;
      }
      break;
    }
    if (tx_len_ > 0) flush(c);
    settle(c, answered, more);
  }

  // After serving: close, or wait for the socket, in the state the connection is now in.
  void settle(TcpConn& c, bool answered, bool more) {
    if (c.failed) {
      close(c, true);
      return;
    }
    const auto now = Clock::now();
    if (c.out) {
      // Blocked output: the I/O timeout runs from when the socket stopped taking it and is not
      // extended by partial progress, so a client reading a trickle is still cut off.
      if (!c.busy || answered) enter(c, true, now);
      waitWritable(c);
      return;
    }
    if (c.eof || draining_) {
      close(c, false);
      return;
    }
    if (!c.in.empty()) {
      // The first octets of a message: it must be complete within the I/O timeout (slowloris).
      if (!c.busy || answered) enter(c, true, now);
    } else {
      enter(c, false, now);
    }
    if (more) {
      resumeLater(c);
    } else {
      waitReadable(c);
    }
  }

  // The socket became writable with c.out pending.
  void sendPending(TcpConn& c) {
    while (c.out_off < c.out_len) {
      const ssize_t w = ::send(c.sock.native_handle(), c.out.get() + c.out_off,
                               c.out_len - c.out_off, MSG_NOSIGNAL);
      if (w > 0) {
        c.out_off += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        waitWritable(c);
        return;
      }
      close(c, true);
      return;
    }
    c.out.reset();
    c.out_len = c.out_off = 0;
    // Drained: carry on with the queries held back, then the socket, from a fresh state.
    if (c.busy) {
      busy_.remove(&c);
      c.busy = false;
      idle_.pushBack(&c);
    }
    serve(c);
  }

  const Published<ServingState>& state_;
  const ServerSettings& settings_;
  Recursor& recursor_;
  QuiescentDomain& domain_;
  QuiescentDomain::Slot* slot_ = nullptr;
  asio::io_context io_{1};
  QueryHandler handler_;
  asio::steady_timer quiescent_timer_;
  const std::chrono::milliseconds idle_timeout_;
  const std::chrono::milliseconds io_timeout_;
  const unsigned tcp_limit_;  // this worker's share of tcp_max_connections
  unsigned tcp_count_ = 0;
  std::atomic<uint64_t> tcp_accepted_{0}, tcp_evicted_{0}, tcp_io_timeouts_{0}, tcp_refused_{0};
  std::vector<std::unique_ptr<UdpThread>> udp_;  // one per listen address
  std::vector<std::unique_ptr<tcp::acceptor>> tcp_;
  std::vector<std::unique_ptr<asio::steady_timer>> accept_pause_;
  TcpConnList idle_, busy_;
  asio::steady_timer sweep_{io_};
  bool sweep_armed_ = false;
  Clock::time_point sweep_at_{};
  bool draining_ = false;
  // Per-worker TCP scratch: the read buffer every connection reads into and the replies of one
  // serve() before they are sent (RFC 1035 §4.2.2: messages up to 65535 octets).
  std::unique_ptr<uint8_t[]> rx_buf_ = std::make_unique_for_overwrite<uint8_t[]>(kRxSize);
  std::unique_ptr<uint8_t[]> tx_buf_ = std::make_unique_for_overwrite<uint8_t[]>(kTxSize);
  uint8_t* const rx_ = rx_buf_.get();
  uint8_t* const tx_ = tx_buf_.get();
  size_t tx_len_ = 0;
};

Server::Server(const Published<ServingState>& state, ServerSettings settings)
    : state_(state), settings_(std::move(settings)), recursor_(std::make_unique<Recursor>()) {}

Server::~Server() {
  stop();
}

namespace {

// Knot's tcp-max-clients default: half the open-file limit, leaving the other half to the UDP
// sockets, listeners, zone files, health checks and the control side.
unsigned defaultTcpLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1000;
  // RLIM_INFINITY or a huge limit: a million connections is already more than memory allows.
  const rlim_t soft = std::min<rlim_t>(rl.rlim_cur, 2000000);
  return std::max<unsigned>(1, static_cast<unsigned>(soft / 2));
}

}  // namespace

Result<void> Server::start() {
  for (auto& la : settings_.listen) {
    auto r = claimAddress(la);
    if (!r) return r;
  }
  settings_.threads = std::max(1u, settings_.threads);
  if (settings_.tcp_max_connections == 0) {
    settings_.tcp_max_connections = defaultTcpLimit();
    log::info("tcp: at most " + std::to_string(settings_.tcp_max_connections) +
              " connections (half the open-file limit)");
  } else {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        settings_.tcp_max_connections >= rl.rlim_cur) {
      log::warning("server.tcp_max_connections " + std::to_string(settings_.tcp_max_connections) +
                   " is not below the open-file limit " + std::to_string(rl.rlim_cur) +
                   ": accepting will fail with EMFILE before the limit is reached");
    }
  }
  for (unsigned i = 0; i < settings_.threads; ++i) {
    auto w = std::make_unique<Worker>(state_, settings_, *recursor_);
    auto r = w->bind();
    if (!r) {
      workers_.clear();
      return r;
    }
    workers_.push_back(std::move(w));
  }
  if (settings_.dnstap.enabled()) {
    // One Sink (one fstrm input queue) per QueryHandler: a worker's TCP one and its UDP threads'.
    auto writer =
        dnstap::Writer::open(settings_.dnstap, settings_.threads * (settings_.listen.size() + 1));
    if (!writer) {
      workers_.clear();
      return writer.error();
    }
    dnstap_ = std::move(*writer);
    size_t next = 0;
    for (auto& w : workers_) next = w->setDnstap(*dnstap_, next);
    log::info("dnstap: writing to " + (settings_.dnstap.socket_path.empty()
                                           ? settings_.dnstap.file_path
                                           : "unix socket " + settings_.dnstap.socket_path));
  }
  recursor_->start();
  for (auto& w : workers_) {
    w->startUdp();
    threads_.emplace_back([wp = w.get()] { wp->run(); });
  }
  return {};
}

void Server::stop() {
  recursor_->stop();  // its replies go out on the workers' sockets: first, while they are open
  for (auto& w : workers_) w->drain();
  for (auto& w : workers_) w->joinUdp();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  dnstap_.reset();  // after every handler stopped: flushes the queued messages, ends the stream
}

CounterTotals Server::totals() const {
  CounterTotals t;
  for (const auto& w : workers_) w->addTotals(t);
  t.recursion = recursor_->totals();
  return t;
}

}  // namespace meridian::server
