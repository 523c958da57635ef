// The management API's HTTP/1.1 server (Boost.Beast), on the control loop's io_context: never on
// a DNS worker. Everything is asynchronous, so a slow or malicious client costs the loop one
// pending operation and a timer, never a wait:
//  - a new connection (and its TLS handshake) must deliver its first request within
//    read_timeout_ms; a kept-alive one may stay silent idle_timeout_ms, and once a request's first
//    byte is in, the whole request must arrive within read_timeout_ms; a response (or a stream's
//    queued events) the client does not read is dropped after write_timeout_ms. Each ends in a
//    close.
//  - request line and headers over header_bytes: 431; a body over body_bytes: 413 (read from
//    Content-Length before the body is read); any other malformed request: 400; each then closes.
//  - at max_connections open connections a new one is answered 503 {"error": "Too many
//    connections"} and closed (the open ones are not disturbed).
//  - optional TLS (boost::asio::ssl) with a PEM certificate chain and key.
// Every response is JSON (application/json) except a stream; errors are PowerDNS's
// {"error": "..."}. A request is routed (Router), then authenticated by its X-API-Key
// (Authenticator): 401 {"error": "Unauthorized"} for a missing or wrong key, 403 for a key whose
// scope or zones do not cover the route.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/router.h"
#include "api/settings.h"
#include "core/result.h"
#include "server/server.h"

namespace meridian::api {

struct HttpCounters {
  uint64_t connections = 0;  // accepted
  uint64_t requests = 0;
  uint64_t refused = 0;   // 503 at max_connections
  uint64_t timeouts = 0;  // closed by a read, idle or write timeout
  uint64_t rejected = 0;  // 400 / 413 / 431
  uint64_t dropped_streams = 0;
  // Responses by status class: [0] 1xx .. [4] 5xx (an event stream counts as its 200).
  uint64_t responses[5] = {};
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpSettings settings, Router router, Authenticator keys);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS files, binds and listens on every address, starts accepting. An error names the
  // address or file.
  [[nodiscard]] Result<void> start();
  // Closes the listeners and every connection (streams included).
  void stop();
  // The bound addresses (port 0 resolved), in the order configured.
  [[nodiscard]] std::vector<boost::asio::ip::tcp::endpoint> endpoints() const;
  // A reload's new key set: the next requests are checked against it.
  void setKeys(Authenticator keys);
  [[nodiscard]] HttpCounters counters() const;
  [[nodiscard]] size_t openConnections() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace meridian::api
