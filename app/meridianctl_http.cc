// meridianctl's HTTP(S) client (meridianctl_http.h): C++20 coroutines on a private io_context, a
// Beast tcp_stream or ssl_stream over it, every step under the target's timeout. TLS checks the
// server's certificate (chain and name: SSL_set1_host for a host name, the IP address SAN for an
// address) against --cacert or the system's roots; there is no way to turn that off.
#include "app/meridianctl_http.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <csignal>
#include <optional>
#include <type_traits>

namespace meridian::app::ctl {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
using Plain = beast::tcp_stream;
using Tls = beast::ssl_stream<beast::tcp_stream>;

// A zone with a few million records is a few hundred MB of JSON; more is not an answer we want.
constexpr uint64_t kBodyLimit = 1024ull * 1024 * 1024;
// The event stream's keep-alive comes every 15 s by default (api.stream_keepalive_ms): six missed
// ones mean the connection is gone even when TCP has not noticed.
constexpr std::chrono::seconds kStreamSilence{90};
constexpr std::chrono::seconds kFirstRetry{1};
constexpr std::chrono::seconds kMaxRetry{10};

std::string where(const ApiTarget& t) {
  const bool v6 = t.host.find(':') != std::string::npos;
  return (v6 ? "[" + t.host + "]" : t.host) + ":" + t.port;
}

std::string why(const error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  if (ec == http::error::end_of_stream || ec == asio::error::eof)
    return "the connection was closed";
  return ec.message();
}

// A TLS client context: TLS 1.2 and later, the peer's chain verified.
std::optional<ssl::context> tlsContext(const ApiTarget& t, std::string& error) {
  std::optional<ssl::context> ctx(std::in_place, ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx->set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (t.cacert.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(t.cacert, ec);
  }
  if (ec) {
    error =
        (t.cacert.empty() ? std::string("the system's CA certificates") : "--cacert " + t.cacert) +
        ": " + ec.message();
    return std::nullopt;
  }
  return ctx;
}

// Resolves, connects and (TLS) shakes hands; the error text, empty when open.
template <typename S>
asio::awaitable<std::string> openStream(S& s, const ApiTarget& t) {
  auto& low = beast::get_lowest_layer(s);
  tcp::resolver resolver(low.get_executor());
  low.expires_after(t.timeout);
  auto [rec, results] = co_await resolver.async_resolve(t.host, t.port, kTuple);
  if (rec) co_return "cannot resolve " + t.host + ": " + rec.message();
  low.expires_after(t.timeout);
  auto [cec, ep] = co_await low.async_connect(results, kTuple);
  if (cec) co_return "cannot connect to " + where(t) + ": " + why(cec);
  if constexpr (std::is_same_v<S, Tls>) {
    SSL* h = s.native_handle();
    error_code aec;
    (void)asio::ip::make_address(t.host, aec);
    if (aec) {
      // A host name: sent as SNI (RFC 6066 §3) and matched against the certificate's names.
      SSL_set_tlsext_host_name(h, t.host.c_str());
      SSL_set1_host(h, t.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(h), t.host.c_str());
    }
    low.expires_after(t.timeout);
    auto [hec] = co_await s.async_handshake(ssl::stream_base::client, kTuple);
    if (hec) {
      std::string text = "TLS handshake with " + where(t) + " failed: " + why(hec);
      if (const long v = SSL_get_verify_result(h); v != X509_V_OK) {
        text += std::string(" (") + X509_verify_cert_error_string(v) +
                "; --cacert FILE names the CA that signed the server's certificate)";
      }
      co_return text;
    }
  }
  co_return std::string();
}

http::request<http::string_body> makeRequest(const ApiTarget& t, http::verb method,
                                             const std::string& target) {
  http::request<http::string_body> req{method, t.prefix + target, 11};
  req.set(http::field::host, t.host);
  req.set("X-API-Key", t.key);
  req.set(http::field::user_agent, "meridianctl/" MERIDIAN_VERSION);
  return req;
}

template <typename S>
asio::awaitable<void> exchange(S& s, const ApiTarget& t, http::request<http::string_body>& req,
                               HttpReply& out) {
  out.error = co_await openStream(s, t);
  if (!out.error.empty()) co_return;
  auto& low = beast::get_lowest_layer(s);
  low.expires_after(t.timeout);
  auto [wec, wn] = co_await http::async_write(s, req, kTuple);
  if (wec) {
    out.error = "sending the request to " + where(t) + ": " + why(wec);
    co_return;
  }
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  low.expires_after(t.timeout);
  auto [rec, rn] = co_await http::async_read(s, buf, parser, kTuple);
  if (rec) {
    out.error = "reading the answer from " + where(t) + ": " + why(rec);
    co_return;
  }
  out.connected = true;
  out.status = parser.get().result_int();
  out.body = std::move(parser.get().body());
}

// Runs `make` (a coroutine) on a fresh io_context; an exception it throws comes out here.
template <typename F>
void run(asio::io_context& io, F make) {
  asio::co_spawn(io, std::move(make), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}

// The event stream's lines (WHATWG HTML §9.2.6): "field: value", a blank line dispatches, ':'
// starts a comment; lines end with LF, CRLF or CR.
class SseParser {
 public:
  // Feeds text; false when on_event asked to stop.
  bool feed(std::string_view text, const std::function<bool(const SseEvent&)>& on_event) {
    for (const char c : text) {
      if (c == '\n' && after_cr_) {
        after_cr_ = false;
        continue;
      }
      after_cr_ = c == '\r';
      if (c != '\n' && c != '\r') {
        line_ += c;
        continue;
      }
      if (!line(on_event)) return false;
      line_.clear();
    }
    return true;
  }
  [[nodiscard]] const std::string& lastId() const { return last_id_; }

 private:
  bool line(const std::function<bool(const SseEvent&)>& on_event) {
    if (line_.empty()) {
      bool go = true;
      if (has_data_) {
        event_.id = last_id_;
        go = on_event(event_);
      }
      event_ = SseEvent{};
      has_data_ = false;
      return go;
    }
    if (line_[0] == ':') return true;
    const size_t colon = line_.find(':');
    std::string field = line_.substr(0, colon);
    std::string value;
    if (colon != std::string::npos) {
      value = line_.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (field == "data") {
      if (has_data_) event_.data += '\n';
      event_.data += value;
      has_data_ = true;
    } else if (field == "event") {
      event_.type = value;
    } else if (field == "id" && value.find('\0') == std::string::npos) {
      last_id_ = value;
    }
    return true;
  }

  std::string line_;
  bool after_cr_ = false;
  SseEvent event_;
  bool has_data_ = false;
  std::string last_id_;
};

enum class Outcome { kStop, kRefused, kUnreachable, kDropped };

struct Follow {
  const ApiTarget& t;
  const std::function<bool(const SseEvent&)>& on_event;
  const std::function<void(const std::string&)>& on_note;
  HttpReply& failure;
  SseParser parser;
  bool opened_once = false;     // a 200 was had at least once
  bool stopping = false;        // a signal came
  std::function<void()> abort;  // closes the current connection
  std::string reason;           // why the last connection ended
};

template <typename S>
asio::awaitable<Outcome> followOnce(S& s, Follow& f) {
  auto& low = beast::get_lowest_layer(s);
  f.abort = [&low] { low.close(); };
  const std::string opened = co_await openStream(s, f.t);
  if (!opened.empty()) {
    f.reason = opened;
    co_return Outcome::kUnreachable;
  }
  auto req = makeRequest(f.t, http::verb::get, "/api/v1/events");
  req.set(http::field::accept, "text/event-stream");
  if (!f.parser.lastId().empty()) req.set("Last-Event-ID", f.parser.lastId());
  low.expires_after(f.t.timeout);
  auto [wec, wn] = co_await http::async_write(s, req, kTuple);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> head;
  head.body_limit(kBodyLimit);
  error_code ec = wec;
  if (!ec) {
    low.expires_after(f.t.timeout);
    auto [hec, hn] = co_await http::async_read_header(s, buf, head, kTuple);
    ec = hec;
  }
  if (ec) {
    f.reason = "the event stream of " + where(f.t) + ": " + why(ec);
    co_return f.opened_once ? Outcome::kDropped : Outcome::kUnreachable;
  }
  if (head.get().result_int() != 200) {
    low.expires_after(f.t.timeout);
    auto [bec, bn] = co_await http::async_read(s, buf, head, kTuple);
    f.failure.connected = true;
    f.failure.status = head.get().result_int();
    f.failure.body = bec ? std::string() : head.get().body();
    co_return Outcome::kRefused;
  }
  f.opened_once = true;
  f.on_note("following " + f.t.url + "/api/v1/events" +
            (f.parser.lastId().empty() ? "" : " from event " + f.parser.lastId()));
  // The body has no length and ends with the connection: read it raw (what the header read left
  // in `buf` first).
  for (;;) {
    const auto data = buf.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    if (!f.parser.feed(text, f.on_event)) co_return Outcome::kStop;
    buf.consume(buf.size());
    low.expires_after(kStreamSilence);
    auto [rec, n] = co_await s.async_read_some(buf.prepare(16384), kTuple);
    buf.commit(n);
    if (rec) {
      if (n > 0 &&
          !f.parser.feed(std::string_view(static_cast<const char*>(buf.cdata().data()), buf.size()),
                         f.on_event))
        co_return Outcome::kStop;
      f.reason = rec == beast::error::timeout ? "no data for 90 s" : why(rec);
      co_return Outcome::kDropped;
    }
  }
}

}  // namespace

bool parseApiUrl(const std::string& url, ApiTarget& out, std::string& error) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
    out.tls = false;
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    out.tls = true;
  } else {
    error = "--api: the URL must start with http:// or https:// ('" + url + "')";
    return false;
  }
  out.url = url;
  if (const size_t slash = rest.find('/'); slash != std::string::npos) {
    out.prefix = rest.substr(slash);
    rest.resize(slash);
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  out.port = "8053";
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) {
      error = "--api: unterminated [address] in '" + url + "'";
      return false;
    }
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') {
        error = "--api: unexpected text after ']' in '" + url + "'";
        return false;
      }
      out.port = rest.substr(close + 2);
    }
  } else if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    error = "--api: no host, or no numeric port, in '" + url + "'";
    return false;
  }
  return true;
}

HttpReply httpRequest(const ApiTarget& t, http::verb method, const std::string& target,
                      const std::string& body) {
  HttpReply out;
  auto req = makeRequest(t, method, target);
  req.set(http::field::accept, "application/json");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  asio::io_context io;
  std::optional<ssl::context> ctx;
  if (t.tls && !(ctx = tlsContext(t, out.error))) return out;
  run(io, [&]() -> asio::awaitable<void> {
    if (ctx) {
      Tls s(io, *ctx);
      co_await exchange(s, t, req, out);
    } else {
      Plain s(io);
      co_await exchange(s, t, req, out);
    }
  });
  return out;
}

int followEvents(const ApiTarget& t, const std::function<bool(const SseEvent&)>& on_event,
                 const std::function<void(const std::string&)>& on_note, HttpReply& failure) {
  asio::io_context io;
  std::optional<ssl::context> ctx;
  if (t.tls && !(ctx = tlsContext(t, failure.error))) return kExitUnreachable;
  Follow f{t, on_event, on_note, failure};
  asio::steady_timer pause(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& ec, int) {
    if (ec) return;
    f.stopping = true;
    if (f.abort) f.abort();
    pause.cancel();
  });
  int status = kExitOk;
  run(io, [&]() -> asio::awaitable<void> {
    std::chrono::seconds delay = kFirstRetry;
    while (!f.stopping) {
      Outcome o;
      if (ctx) {
        Tls s(io, *ctx);
        o = co_await followOnce(s, f);
      } else {
        Plain s(io);
        o = co_await followOnce(s, f);
      }
      f.abort = nullptr;
      if (f.stopping || o == Outcome::kStop) break;
      if (o == Outcome::kRefused) {
        status = kExitRefused;
        break;
      }
      if (o == Outcome::kUnreachable && !f.opened_once) {
        failure.error = f.reason;
        status = kExitUnreachable;
        break;
      }
      if (o == Outcome::kDropped) delay = kFirstRetry;
      on_note(f.reason + "; reconnecting in " + std::to_string(delay.count()) + " s" +
              (f.parser.lastId().empty() ? "" : " (from event " + f.parser.lastId() + ")"));
      pause.expires_after(delay);
      (void)co_await pause.async_wait(kTuple);
      delay = std::min(delay * 2, kMaxRetry);
    }
    signals.cancel();
  });
  return status;
}

}  // namespace meridian::app::ctl
