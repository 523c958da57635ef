// The HTTP server's settings ([api] in the configuration; http_server.h says what each does). A
// header of its own, without Beast, so that app/config.h stays light.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "server/server.h"

namespace meridian::api {

struct Limits {
  size_t header_bytes = 16 * 1024;      // request line + headers (Beast's default is 8 KB)
  size_t body_bytes = 8 * 1024 * 1024;  // a PATCH of a few thousand records fits
  unsigned read_timeout_ms = 10000;
  unsigned idle_timeout_ms = 60000;
  unsigned write_timeout_ms = 10000;
  unsigned max_connections = 64;
  // Unsent bytes a stream subscriber may fall behind by before it is dropped.
  size_t stream_buffer_bytes = 1024 * 1024;
  // A comment line on an idle stream, so proxies and clients see it alive.
  unsigned stream_keepalive_ms = 15000;
};

struct HttpSettings {
  // Loopback by default: the API is for the operator's host unless configured otherwise.
  std::vector<server::ListenAddress> listen{{boost::asio::ip::make_address_v4("127.0.0.1"), 8053}};
  std::string tls_certificate;  // PEM chain; with tls_key, TLS on every address
  std::string tls_key;
  Limits limits;
};

}  // namespace meridian::api
