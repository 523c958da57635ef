// The API's request and response types and its router: routes are a method, a path pattern with
// parameters (`/api/v1/servers/{server}/zones/{zone}`), the access they need from the caller's key
// and a handler. HttpServer asks the router for a match: an unknown path is 404, a known path with
// another method 405 (PowerDNS 4.7 answers the same codes; it checks the key before the method, and
// so does the server). A route whose pattern has a `{zone}` parameter is refused (403) to a key
// that does not list that zone. Control loop only.
#pragma once

#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"

namespace meridian::api {

namespace http = boost::beast::http;

struct Request {
  const http::request<http::string_body>& message;
  std::string path;                                        // the target before '?', as sent
  std::string query;                                       // after '?', "" when none
  std::map<std::string, std::string, std::less<>> params;  // pattern parameters, %-decoded
  const ApiKey* key = nullptr;                             // the caller's, once authenticated
  std::string remote;                                      // "127.0.0.1:41234"
  [[nodiscard]] std::string_view header(std::string_view name) const;
  [[nodiscard]] const std::string& body() const { return message.body(); }
  // A query parameter, %-decoded; "" when absent.
  [[nodiscard]] std::string queryParam(std::string_view name) const;
};

// The far end of a streaming response (text/event-stream): bytes are queued and written in order.
// A subscriber that does not read its stream is dropped: once more than the server's
// stream_buffer_bytes wait unsent, send() closes the connection and returns false.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual bool send(std::string bytes) = 0;
  [[nodiscard]] virtual bool closed() const = 0;
  virtual void close() = 0;
};

struct Response {
  unsigned status = 200;
  std::string body;  // JSON text (or the content_type's)
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  // A streaming response: the server writes the status line and headers (no length; the body
  // ends when the connection does), then calls this with the connection's Stream.
  std::function<void(std::shared_ptr<Stream>)> stream;
  // An answer that comes later: the server calls this with the function that delivers it (once,
  // on the control loop) and waits, keeping the connection.
  std::function<void(std::function<void(Response)>)> later;

  [[nodiscard]] static Response json(unsigned status, const boost::json::value& v);
  // PowerDNS's error shape: {"error": "MESSAGE"} with the status code.
  [[nodiscard]] static Response error(unsigned status, std::string_view message);
};

using Handler = std::function<Response(Request&)>;

struct Route {
  http::verb method;
  std::vector<std::string> segments;  // "{name}" is a parameter
  Access access;
  Handler handler;
  bool zone_scoped = false;  // has a {zone} parameter
};

class Router {
 public:
  // `pattern` starts with '/'; a segment written {name} matches any one non-empty segment.
  void add(http::verb method, std::string_view pattern, Access access, Handler handler);

  struct Match {
    const Route* route = nullptr;  // null: no route for this method
    bool path_known = false;       // some route has this path (so: 405, not 404)
    std::map<std::string, std::string, std::less<>> params;
  };
  // HEAD matches a GET route.
  [[nodiscard]] Match match(http::verb method, std::string_view path) const;

 private:
  std::vector<Route> routes_;
};

// %XX decoding of a path segment or query value ('+' stays '+' in a path and is a space in a
// query); a malformed escape is kept as written.
[[nodiscard]] std::string percentDecode(std::string_view s, bool plus_is_space = false);

}  // namespace meridian::api
