// meridianctl's HTTP(S) client for the management API: one request per call (a fresh connection,
// plain or TLS), and the Server-Sent Events reader behind `meridianctl watch`. Blocking for the
// caller (each call runs its own io_context); used by meridianctl_api.cc only, never by the server.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace meridian::app::ctl {

// Exit statuses, one scheme for every meridianctl mode (docs/operations.md "meridianctl").
enum Exit : int {
  kExitOk = 0,
  kExitRefused =
      1,           // the server refused (4xx/5xx, its `error` on stderr), or a failure it reported
  kExitUsage = 2,  // bad command line or bad input (nothing was sent)
  kExitUnreachable = 3,  // no connection: resolve, connect, TLS handshake or transport failure
};

// Where the API is and how to reach it.
struct ApiTarget {
  std::string url;  // as given, for messages
  bool tls = false;
  std::string host, port, prefix;  // prefix: a path before /api/v1 (a reverse proxy), no '/' last
  std::string key;
  std::string cacert;                // PEM file of trusted CAs; empty: the system's roots
  std::chrono::seconds timeout{60};  // per step (connect, handshake, write, read)
};

// http[s]://HOST[:PORT][/PREFIX] into `out` (port 8053 by default, the API's); false with a
// message otherwise.
[[nodiscard]] bool parseApiUrl(const std::string& url, ApiTarget& out, std::string& error);

struct HttpReply {
  bool connected = false;  // false: no answer was had (`error` says why)
  std::string error;
  unsigned status = 0;
  std::string body;
};

// One request (`target` is the path and query, the prefix is added); `body` is sent as JSON when
// not empty.
[[nodiscard]] HttpReply httpRequest(const ApiTarget& t, boost::beast::http::verb method,
                                    const std::string& target, const std::string& body = {});

// One event of the stream (WHATWG HTML §9.2 "server-sent events": id, event, data lines).
struct SseEvent {
  std::string id;
  std::string type = "message";
  std::string data;
};

// Follows GET /api/v1/events: `on_event` for each event as it arrives (return false to stop).
// A connection that drops (or is silent for 90 s, six missed keep-alives at the server's default)
// is reopened after a pause (1 s, doubling to 10 s) with Last-Event-ID set to the last id seen, so
// no kept event is missed (the server sends a `reset` event when some were). `on_note` gets a
// line for stderr each time a stream opens and each time one is lost. SIGINT and SIGTERM end it
// cleanly. Returns an Exit: kExitOk (stopped by a signal or by on_event), kExitRefused (a non-200
// answer: `failure` holds it), kExitUnreachable (the first connection failed: `failure.error` says
// why).
[[nodiscard]] int followEvents(const ApiTarget& t,
                               const std::function<bool(const SseEvent&)>& on_event,
                               const std::function<void(const std::string&)>& on_note,
                               HttpReply& failure);

}  // namespace meridian::app::ctl
