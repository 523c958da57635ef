// The API's HTTP/1.1 connections (http_server.h): one C++20 coroutine per connection on the
// control loop, over a plain or a TLS Beast stream. Timeouts are the stream's own (each read or
// write is armed with tcp_stream::expires_after), so no operation can wait for a client forever.
#include "api/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>
#include <optional>

#include "core/log.h"

namespace meridian::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// What a connection reads from the socket at a time while it waits for a request to begin.
constexpr size_t kReadChunk = 4096;
// After an error answer (400, 413, 431, 503) the rest of what the client sends is read and thrown
// away, up to this much, before the close, so that the close does not reset the connection
// (RFC 9112 §9.6) and lose the answer before the client has read it.
constexpr size_t kDrainBytes = 256 * 1024;

using Plain = beast::tcp_stream;
using Tls = beast::ssl_stream<beast::tcp_stream>;

template <typename S>
constexpr bool kIsTls = std::is_same_v<S, Tls>;

}  // namespace

struct HttpServer::State {
  State(asio::io_context& io_, HttpSettings s, Router r, Authenticator k)
      : io(io_), settings(std::move(s)), router(std::move(r)), keys(std::move(k)) {}
  asio::io_context& io;
  HttpSettings settings;
  Router router;
  Authenticator keys;
  std::optional<asio::ssl::context> tls;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  // The open connections (not the ones being refused), each with what closes it.
  std::map<uint64_t, std::function<void()>> open;
  uint64_t next_id = 0;
  size_t refusing = 0;
  bool stopped = false;
  HttpCounters counters;
};

namespace {

using State = HttpServer::State;

// A streaming response's end of the connection (router.h, Stream).
class Sink final : public Stream {
 public:
  Sink(asio::io_context& io, size_t limit, std::function<void()> closer)
      : wake(io), limit_(limit), closer_(std::move(closer)) {}
  bool send(std::string bytes) override {
    if (closed_) return false;
    if (pending.size() + bytes.size() > limit_) {
      dropped = true;
      close();
      return false;
    }
    pending += bytes;
    wake.cancel();
    return true;
  }
  [[nodiscard]] bool closed() const override { return closed_; }
  void close() override {
    if (closed_) return;
    closed_ = true;
    wake.cancel();
    if (closer_) closer_();
  }
  std::string pending;
  asio::steady_timer wake;
  bool dropped = false;

 private:
  size_t limit_;
  std::function<void()> closer_;
  bool closed_ = false;
};

void countStatus(State& st, unsigned status) {
  if (status >= 100 && status < 600) ++st.counters.responses[status / 100 - 1];
}

Response dispatch(State& st, Request& req) {
  Router::Match m = st.router.match(req.message.method(), req.path);
  if (!m.path_known) return Response::error(404, "Not Found");
  // An open route (Access::kOpen) needs no key; a key sent with it is not looked at.
  const bool open = m.route != nullptr && m.route->access == Access::kOpen;
  // PowerDNS 4.7 checks the key before the method (a DELETE of /api/v1/servers without a key is
  // 401, with one 405), and answers 401 whether the key is missing or wrong.
  const std::string_view secret = req.header("X-API-Key");
  const ApiKey* key = secret.empty() || open ? nullptr : st.keys.find(secret);
  if (key == nullptr && !open) {
    Response r = Response::error(401, "Unauthorized");
    r.headers.emplace_back("WWW-Authenticate", "X-API-Key realm=\"Meridian\"");
    return r;
  }
  if (m.route == nullptr) return Response::error(405, "Method Not Allowed");
  req.key = key;
  req.params = std::move(m.params);
  if (!open && !key->allows(m.route->access)) {
    return Response::error(403, "API key '" + key->name() + "' is read-only");
  }
  if (!open && m.route->zone_scoped) {
    const auto zone = req.params.find("zone");
    if (zone != req.params.end() && !key->allowsZone(zone->second)) {
      return Response::error(403,
                             "API key '" + key->name() + "' may not touch zone " + zone->second);
    }
  }
  try {
    return m.route->handler(req);
  } catch (const std::exception& e) {
    log::error("api: " + std::string(req.message.method_string()) + " " + req.path + ": " +
               e.what());
    return Response::error(500, e.what());
  }
}

http::response<http::string_body> toMessage(Response& r, unsigned version, bool keep_alive,
                                            bool head) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "Meridian");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  // HEAD: the GET's Content-Length, no body.
  if (head) res.body().clear();
  return res;
}

std::string streamHead(const Response& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    std::string(http::obsolete_reason(static_cast<http::status>(r.status))) +
                    "\r\nServer: Meridian\r\nContent-Type: " + r.content_type + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  // No length: the body ends with the connection (RFC 9112 §6.3, item 8).
  out += "Connection: close\r\n\r\n";
  return out;
}

void countTimeout(State& st, const boost::system::error_code& ec) {
  if (ec == beast::error::timeout) ++st.counters.timeouts;
}

template <typename S>
asio::awaitable<bool> writeMessage(State& st, S& s, http::response<http::string_body>& res) {
  beast::get_lowest_layer(s).expires_after(milliseconds(st.settings.limits.write_timeout_ms));
  auto [ec, n] = co_await http::async_write(s, res, kTuple);
  countTimeout(st, ec);
  co_return !ec;
}

// Ends a connection. After an error answer (`drain`), half-closes and reads what the client still
// sends (bounded in bytes and by the read timeout) so that its answer is not lost to a reset.
template <typename S>
asio::awaitable<void> finish(State& st, S& s, bool drain) {
  auto& low = beast::get_lowest_layer(s);
  boost::system::error_code ignored;
  if constexpr (kIsTls<S>) {
    low.expires_after(milliseconds(st.settings.limits.write_timeout_ms));
    co_await s.async_shutdown(kTuple);
  } else {
    low.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (drain) {
      low.expires_after(milliseconds(st.settings.limits.read_timeout_ms));
      char scratch[kReadChunk];
      for (size_t total = 0; total < kDrainBytes;) {
        auto [ec, n] = co_await low.async_read_some(asio::buffer(scratch), kTuple);
        if (ec) break;
        total += n;
      }
    }
  }
  low.close();
}

template <typename S>
asio::awaitable<void> rejectWith(State& st, S& s, unsigned status, std::string_view message) {
  ++st.counters.rejected;
  countStatus(st, status);
  Response r = Response::error(status, message);
  auto res = toMessage(r, 11, false, false);
  if (co_await writeMessage(st, s, res)) co_await finish(st, s, true);
}

bool isParseError(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// Streams a Response::stream to the client until it or the server closes.
template <typename S>
asio::awaitable<void> serveStream(State& st, S& s, Response& r, std::function<void()> closer) {
  const Limits& limits = st.settings.limits;
  auto sink = std::make_shared<Sink>(st.io, limits.stream_buffer_bytes, std::move(closer));
  sink->pending = streamHead(r);
  r.stream(sink);
  auto& low = beast::get_lowest_layer(s);
  std::string out;
  while (!sink->closed()) {
    if (sink->pending.empty()) {
      sink->wake.expires_after(milliseconds(limits.stream_keepalive_ms));
      auto [ec] = co_await sink->wake.async_wait(kTuple);
      if (sink->closed()) break;
      // The timer ran out with nothing sent meanwhile: a comment line keeps the stream alive.
      if (!ec && sink->pending.empty()) sink->pending = ": keep-alive\n\n";
      continue;
    }
    out.swap(sink->pending);
    low.expires_after(milliseconds(limits.write_timeout_ms));
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(out), kTuple);
    out.clear();
    if (ec) {
      countTimeout(st, ec);
      break;
    }
  }
  if (sink->dropped) ++st.counters.dropped_streams;
  sink->close();
}

// Waits for a Response::later to deliver its answer.
asio::awaitable<Response> awaitLater(State& st, Response r) {
  struct Waiter {
    explicit Waiter(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::optional<Response> answer;
  };
  auto w = std::make_shared<Waiter>(st.io);
  w->timer.expires_at(asio::steady_timer::time_point::max());
  r.later([w](Response answer) {
    w->answer = std::move(answer);
    w->timer.cancel();
  });
  while (!w->answer) co_await w->timer.async_wait(kTuple);
  co_return std::move(*w->answer);
}

template <typename S>
asio::awaitable<void> connection(std::shared_ptr<State> st, std::shared_ptr<S> s,
                                 std::string remote, bool refuse) {
  const Limits& limits = st->settings.limits;
  auto& low = beast::get_lowest_layer(*s);
  const uint64_t id = st->next_id++;
  std::weak_ptr<S> weak = s;
  auto closer = [weak] {
    if (auto p = weak.lock()) beast::get_lowest_layer(*p).close();
  };
  if (refuse) {
    ++st->refusing;
  } else {
    st->open.emplace(id, closer);
  }
  struct Leave {
    State& st;
    uint64_t id;
    bool refuse;
    ~Leave() {
      if (refuse)
        --st.refusing;
      else
        st.open.erase(id);
    }
  } leave{*st, id, refuse};

  if constexpr (kIsTls<S>) {
    low.expires_after(milliseconds(limits.read_timeout_ms));
    auto [ec] = co_await s->async_handshake(asio::ssl::stream_base::server, kTuple);
    if (ec) {
      countTimeout(*st, ec);
      co_return;
    }
  }
  if (refuse) {
    ++st->counters.refused;
    co_await rejectWith(*st, *s, 503, "Too many connections");
    co_return;
  }

  beast::flat_buffer buf;
  for (bool first = true;; first = false) {
    // Waiting for a request to begin: the first within the read timeout, a later one within the
    // idle timeout.
    if (buf.size() == 0) {
      low.expires_after(milliseconds(first ? limits.read_timeout_ms : limits.idle_timeout_ms));
      auto [ec, n] = co_await s->async_read_some(buf.prepare(kReadChunk), kTuple);
      if (ec) {
        countTimeout(*st, ec);
        co_return;
      }
      buf.commit(n);
    }
    low.expires_after(milliseconds(limits.read_timeout_ms));
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(limits.header_bytes));
    parser.body_limit(limits.body_bytes);
    auto [ec, n] = co_await http::async_read_header(*s, buf, parser, kTuple);
    if (!ec && !parser.is_done()) {
      const auto expect = parser.get()[http::field::expect];
      if (beast::iequals(expect, "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await asio::async_write(*s, asio::buffer(kContinue), kTuple);
        ec = wec;
      }
      if (!ec) std::tie(ec, n) = co_await http::async_read(*s, buf, parser, kTuple);
    }
    if (ec == http::error::header_limit) {
      co_await rejectWith(*st, *s, 431, "Request Header Fields Too Large");
      co_return;
    }
    if (ec == http::error::body_limit) {
      co_await rejectWith(*st, *s, 413, "Request Entity Too Large");
      co_return;
    }
    if (isParseError(ec)) {
      co_await rejectWith(*st, *s, 400, "Bad Request");
      co_return;
    }
    if (ec) {
      countTimeout(*st, ec);
      co_return;
    }

    ++st->counters.requests;
    const auto& msg = parser.get();
    const std::string_view target(msg.target().data(), msg.target().size());
    const size_t q = target.find('?');
    Request req{msg,
                std::string(target.substr(0, q)),
                q == std::string_view::npos ? std::string() : std::string(target.substr(q + 1)),
                {},
                nullptr,
                remote};
    Response res = dispatch(*st, req);
    if (res.later) res = co_await awaitLater(*st, std::move(res));
    if (st->stopped) co_return;
    countStatus(*st, res.status);
    if (res.stream) {
      co_await serveStream(*st, *s, res, closer);
      co_return;
    }
    const bool keep_alive = msg.keep_alive();
    auto out = toMessage(res, msg.version(), keep_alive, msg.method() == http::verb::head);
    if (!co_await writeMessage(*st, *s, out)) co_return;
    if (!keep_alive) {
      co_await finish(*st, *s, false);
      co_return;
    }
  }
}

std::string endpointText(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

asio::awaitable<void> acceptLoop(std::shared_ptr<State> st, tcp::acceptor* acceptor) {
  asio::steady_timer backoff(st->io);
  for (;;) {
    auto [ec, sock] = co_await acceptor->async_accept(kTuple);
    if (st->stopped) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors (EMFILE) and the like: wait a little rather than spin.
      log::warning("api: accept: " + ec.message());
      backoff.expires_after(milliseconds(100));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    ++st->counters.connections;
    boost::system::error_code pec;
    const auto peer = sock.remote_endpoint(pec);
    std::string remote = pec ? std::string("?") : endpointText(peer);
    const bool refuse = st->open.size() >= st->settings.limits.max_connections;
    // Refusals are bounded too: past as many again, a new connection is closed unanswered.
    if (refuse && st->refusing >= st->settings.limits.max_connections) {
      ++st->counters.refused;
      continue;
    }
    if (st->tls) {
      auto s = std::make_shared<Tls>(beast::tcp_stream(std::move(sock)), *st->tls);
      asio::co_spawn(st->io, connection(st, std::move(s), std::move(remote), refuse),
                     asio::detached);
    } else {
      auto s = std::make_shared<Plain>(std::move(sock));
      asio::co_spawn(st->io, connection(st, std::move(s), std::move(remote), refuse),
                     asio::detached);
    }
  }
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpSettings settings, Router router,
                       Authenticator keys)
    : state_(std::make_shared<State>(io, std::move(settings), std::move(router), std::move(keys))) {
}

HttpServer::~HttpServer() {
  stop();
}

Result<void> HttpServer::start() {
  State& st = *state_;
  const HttpSettings& s = st.settings;
  if (s.tls_certificate.empty() != s.tls_key.empty()) {
    return Error{"api: give both tls_certificate and tls_key, or neither"};
  }
  if (!s.tls_certificate.empty()) {
    try {
      st.tls.emplace(asio::ssl::context::tls_server);
      st.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      st.tls->use_certificate_chain_file(s.tls_certificate);
      st.tls->use_private_key_file(s.tls_key, asio::ssl::context::pem);
    } catch (const std::exception& e) {
      st.tls.reset();
      return Error{"api: TLS certificate " + s.tls_certificate + " / key " + s.tls_key + ": " +
                   e.what()};
    }
  }
  for (const auto& la : s.listen) {
    auto acc = std::make_unique<tcp::acceptor>(st.io);
    const tcp::endpoint ep(la.address, la.port);
    boost::system::error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && la.address.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      stop();
      return Error{"api: cannot listen on " + la.text() + ": " + ec.message()};
    }
    st.acceptors.push_back(std::move(acc));
  }
  for (auto& acc : st.acceptors) {
    asio::co_spawn(st.io, acceptLoop(state_, acc.get()), asio::detached);
  }
  return {};
}

void HttpServer::stop() {
  State& st = *state_;
  st.stopped = true;
  for (auto& acc : st.acceptors) {
    boost::system::error_code ignored;
    acc->close(ignored);
  }
  // Closing a connection ends its coroutine later, which then leaves `open`: close copies.
  auto open = st.open;
  for (auto& [id, close] : open) close();
}

std::vector<tcp::endpoint> HttpServer::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& acc : state_->acceptors) {
    boost::system::error_code ec;
    const auto ep = acc->local_endpoint(ec);
    if (!ec) out.push_back(ep);
  }
  return out;
}

void HttpServer::setKeys(Authenticator keys) {
  state_->keys = std::move(keys);
}

HttpCounters HttpServer::counters() const {
  return state_->counters;
}

size_t HttpServer::openConnections() const {
  return state_->open.size();
}

}  // namespace meridian::api
