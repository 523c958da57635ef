// c-ares channels driven from one Asio io_context: c-ares tells us which sockets it wants watched
// (ARES_OPT_SOCK_STATE_CB), each gets an Asio descriptor whose readiness calls ares_process_fd,
// and one timer per channel follows ares_timeout() for retries and timeouts. c-ares owns the
// sockets: the descriptor is released (never closed by Asio) before c-ares closes one.
#include "resolver/forwarder.h"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <mutex>

#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::resolver {

namespace asio = boost::asio;

size_t buildUpstreamQuery(const ForwardQuestion& q, uint16_t payload, uint8_t* out) {
  std::memset(out, 0, dns::kHeaderSize);
  dns::writeU16(out + 2, dns::flag::kRD);
  dns::writeU16(out + 4, 1);   // QDCOUNT
  dns::writeU16(out + 10, 1);  // ARCOUNT: the OPT
  size_t n = dns::kHeaderSize;
  std::memcpy(out + n, q.qname, q.qname_len);
  n += q.qname_len;
  dns::writeU16(out + n, q.qtype);
  dns::writeU16(out + n + 2, q.qclass);
  n += 4;
  // RFC 6891 §6.1.2: root owner, TYPE OPT, CLASS = payload, TTL = ext-rcode/version/DO, RDLEN 0.
  out[n] = 0;
  dns::writeU16(out + n + 1, dns::rrtype::kOPT);
  dns::writeU16(out + n + 3, payload);
  dns::writeU32(out + n + 5, q.dnssec_ok ? 0x8000u : 0u);
  dns::writeU16(out + n + 9, 0);
  return n + 11;
}

namespace {

// One socket c-ares asked us to watch. Shared with the handlers waiting on it, which check
// `gone` before touching anything else: c-ares may close the socket (and the channel may go) while
// a wait is still queued.
struct Socket {
  Socket(asio::io_context& io, int fd) : fd(fd), d(io, fd) {}
  int fd;
  asio::posix::stream_descriptor d;
  bool want_read = false, want_write = false;
  bool read_armed = false, write_armed = false;
  bool gone = false;
};

std::string flightKey(const ForwardQuestion& q) {
  std::string key(reinterpret_cast<const char*>(q.qname), q.qname_len);
  for (char& c : key) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  key.push_back(static_cast<char>(q.qtype >> 8));
  key.push_back(static_cast<char>(q.qtype & 0xFF));
  key.push_back(static_cast<char>(q.qclass >> 8));
  key.push_back(static_cast<char>(q.qclass & 0xFF));
  key.push_back(q.dnssec_ok ? '1' : '0');
  return key;
}

std::once_flag ares_library;

// EDNS payload we offer upstream (RFC 6891 §6.2.5; DNS Flag Day 2020): larger answers come back
// with TC=1 and c-ares repeats the query over TCP.
constexpr uint16_t kUpstreamPayload = 1232;

}  // namespace

struct Forwarder::Flight {
  Channel* channel = nullptr;
  std::string key;
  std::vector<Callback> waiters;
};

struct Forwarder::Channel {
  Channel(Forwarder& f, asio::io_context& io) : owner(f), io(io), timer(io) {}
  ~Channel() {
    // ares_destroy completes every query in flight (ARES_EDESTRUCTION) through onReply, and
    // closes its sockets through the state callback; only then do the maps go.
    if (ch != nullptr) ares_destroy(ch);
    for (auto& [fd, s] : sockets) drop(*s);
  }

  static void drop(Socket& s) {
    s.gone = true;
    boost::system::error_code ignored;
    s.d.cancel(ignored);
    (void)s.d.release();  // c-ares closes the descriptor itself
  }

  static void onSocketState(void* data, ares_socket_t fd, int readable, int writable) {
    auto* c = static_cast<Channel*>(data);
    auto it = c->sockets.find(fd);
    if (!readable && !writable) {
      if (it != c->sockets.end()) {
        drop(*it->second);
        c->sockets.erase(it);
      }
      return;
    }
    if (it == c->sockets.end()) {
      it = c->sockets.emplace(fd, std::make_shared<Socket>(c->io, fd)).first;
    }
    it->second->want_read = readable != 0;
    it->second->want_write = writable != 0;
    c->arm(it->second);
  }

  void arm(const std::shared_ptr<Socket>& s) {
    watch(s, false);
    watch(s, true);
  }

  // Waits for the socket to become readable (or writable) when c-ares wants it, then lets c-ares
  // handle it.
  void watch(const std::shared_ptr<Socket>& s, bool write) {
    bool& armed = write ? s->write_armed : s->read_armed;
    if (!(write ? s->want_write : s->want_read) || armed) return;
    armed = true;
    const auto what =
        write ? asio::posix::descriptor_base::wait_write : asio::posix::descriptor_base::wait_read;
    s->d.async_wait(what, [this, s, write](const boost::system::error_code& ec) {
      (write ? s->write_armed : s->read_armed) = false;
      if (s->gone || ec) return;
      ares_process_fd(ch, write ? ARES_SOCKET_BAD : s->fd, write ? s->fd : ARES_SOCKET_BAD);
      after(s);
    });
  }

  // After c-ares ran: watch the socket again if it still wants it, and follow its next timeout.
  void after(const std::shared_ptr<Socket>& s) {
    if (!s->gone) arm(s);
    armTimer();
  }

  void armTimer() {
    timeval tv{};
    if (ares_timeout(ch, nullptr, &tv) == nullptr) {
      timer.cancel();
      return;
    }
    timer.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed, or the channel is going (this is not touched then)
      ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      armTimer();
    });
  }

  static void onReply(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* flight = static_cast<Flight*>(arg);
    Channel& c = *flight->channel;
    auto node = c.flights.extract(flight->key);  // a question asked from a callback starts anew
    ForwardResult r;
    if (status == ARES_SUCCESS && abuf != nullptr && alen >= static_cast<int>(dns::kHeaderSize)) {
      r.status = ForwardStatus::kAnswer;
      r.message = abuf;
      r.length = static_cast<size_t>(alen);
    } else if (status == ARES_ETIMEOUT) {
      r.status = ForwardStatus::kTimeout;
    } else {
      r.status = ForwardStatus::kNetworkError;
    }
    for (auto& cb : flight->waiters) cb(r);
  }

  Forwarder& owner;
  asio::io_context& io;
  ares_channel ch = nullptr;
  asio::steady_timer timer;
  std::map<int, std::shared_ptr<Socket>> sockets;
  std::map<std::string, std::unique_ptr<Flight>> flights;
};

Forwarder::Forwarder(asio::io_context& io, unsigned timeout_ms, unsigned tries)
    : io_(io), timeout_ms_(timeout_ms), tries_(tries) {
  std::call_once(ares_library, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

Forwarder::~Forwarder() = default;

std::vector<std::string> Forwarder::configure(const std::vector<ForwardZone>& zones) {
  std::vector<std::string> errors;
  if (zones == zones_) return errors;
  channels_.clear();  // in-flight questions complete with kNetworkError
  zones_ = zones;
  for (const ForwardZone& z : zones_) {
    auto c = std::make_unique<Channel>(*this, io_);
    ares_options opts{};
    // NOCHECKRESP: an upstream SERVFAIL or REFUSED is the answer we pass on, not a reason for
    // c-ares to try the next server and then report failure. TC=1 is retried over TCP by c-ares.
    opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
    opts.timeout = static_cast<int>(timeout_ms_);
    opts.tries = static_cast<int>(tries_);
    opts.sock_state_cb = &Channel::onSocketState;
    opts.sock_state_cb_data = c.get();
    const int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
    int rc = ares_init_options(&c->ch, &opts, mask);
    std::string csv;
    for (const auto& s : z.servers) csv += (csv.empty() ? "" : ",") + s;
    if (rc == ARES_SUCCESS) rc = ares_set_servers_ports_csv(c->ch, csv.c_str());
    if (rc != ARES_SUCCESS) {
      errors.push_back("forward zone " +
                       dns::toText(reinterpret_cast<const uint8_t*>(z.zone.data())) + ": " +
                       ares_strerror(rc));
      channels_.push_back(nullptr);
      continue;
    }
    channels_.push_back(std::move(c));
  }
  return errors;
}

Forwarder::Channel* Forwarder::channelFor(const uint8_t* qname_lower, size_t len) const {
  Channel* best = nullptr;
  size_t best_len = 0;
  for (size_t i = 0; i < zones_.size(); ++i) {
    const std::string& z = zones_[i].zone;
    const auto* apex = reinterpret_cast<const uint8_t*>(z.data());
    if ((best == nullptr || z.size() > best_len) && channels_[i] != nullptr &&
        dns::isSubdomain(qname_lower, len, apex, z.size())) {
      best = channels_[i].get();
      best_len = z.size();
    }
  }
  return best;
}

bool Forwarder::covers(const uint8_t* qname_lower, size_t len) const {
  return channelFor(qname_lower, len) != nullptr;
}

bool Forwarder::resolve(const ForwardQuestion& q, Callback cb) {
  std::string key = flightKey(q);
  Channel* c =
      channelFor(reinterpret_cast<const uint8_t*>(key.data()), q.qname_len);  // key starts lower
  if (c == nullptr) return false;
  auto it = c->flights.find(key);
  if (it != c->flights.end()) {
    ++shared_questions_;
    it->second->waiters.push_back(std::move(cb));
    return true;
  }
  auto flight = std::make_unique<Flight>();
  flight->channel = c;
  flight->key = key;
  flight->waiters.push_back(std::move(cb));
  Flight* f = flight.get();
  c->flights.emplace(std::move(key), std::move(flight));
  uint8_t query[dns::kHeaderSize + dns::kMaxNameLength + 4 + 11];
  const size_t n = buildUpstreamQuery(q, kUpstreamPayload, query);
  ++upstream_queries_;
  ares_send(c->ch, query, static_cast<int>(n), &Channel::onReply, f);
  c->armTimer();
  return true;
}

size_t Forwarder::inFlight() const {
  size_t n = 0;
  for (const auto& c : channels_) n += c ? c->flights.size() : 0;
  return n;
}

}  // namespace meridian::resolver
