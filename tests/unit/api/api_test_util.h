// A loopback fixture for the API server tests: an HttpServer on its own io_context thread (the
// "control loop"), a few routes and keys, and a blocking Beast client. Every client socket has a
// receive timeout (SO_RCVTIMEO) so that a broken server fails the test instead of hanging it; no
// assertion depends on a duration.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "api/events.h"
#include "api/http_server.h"

namespace meridian::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr const char* kReadWriteSecret = "rw-secret-0123456789";
constexpr const char* kReadOnlySecret = "ro-secret-0123456789";
constexpr const char* kZonedSecret = "zoned-secret-0123456789";

inline api::Authenticator testKeys() {
  std::vector<api::KeyConfig> keys{
      {"ops", api::hashSecret(kReadWriteSecret), api::Scope::kReadWrite, {}},
      {"viewer", api::hashSecret(kReadOnlySecret), api::Scope::kReadOnly, {}},
      {"acme", api::hashSecret(kZonedSecret), api::Scope::kReadWrite, {"Example.com"}},
  };
  return api::Authenticator::make(keys).value();
}

struct ApiFixture {
  explicit ApiFixture(api::Limits limits = {}, std::string cert = "", std::string key = "") {
    api::Router r;
    r.add(http::verb::get, "/api/v1/servers", api::Access::kRead,
          [](api::Request&) { return api::Response::json(200, boost::json::array{"localhost"}); });
    r.add(http::verb::get, "/api/v1/servers/{server}/zones/{zone}", api::Access::kRead,
          [](api::Request& q) {
            return api::Response::json(200, boost::json::object{{"server", q.params["server"]},
                                                                {"zone", q.params["zone"]}});
          });
    r.add(http::verb::patch, "/api/v1/servers/{server}/zones/{zone}", api::Access::kWrite,
          [](api::Request& q) {
            return api::Response::json(200, boost::json::object{{"bytes", q.body().size()}});
          });
    // A big answer, for a client that does not read it.
    r.add(http::verb::get, "/big", api::Access::kRead, [](api::Request&) {
      api::Response res;
      res.body = "\"" + std::string(32 * 1024 * 1024, 'x') + "\"";
      return res;
    });
    r.add(http::verb::get, "/api/v1/events", api::Access::kRead, hub.handler());
    // An answer that comes later, from another turn of the loop (as a reload's would).
    r.add(http::verb::get, "/later", api::Access::kRead, [this](api::Request&) {
      api::Response res;
      res.later = [this](std::function<void(api::Response)> answer) {
        asio::post(io, [answer] {
          answer(api::Response::json(202, boost::json::object{{"done", true}}));
        });
      };
      return res;
    });
    api::HttpSettings s;
    s.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
    s.limits = limits;
    s.tls_certificate = std::move(cert);
    s.tls_key = std::move(key);
    server = std::make_unique<api::HttpServer>(io, s, std::move(r), testKeys());
    auto started = server->start();
    if (!started) throw std::runtime_error(started.error().message);
    port = server->endpoints().at(0).port();
    thread = std::thread([this] { io.run(); });
  }
  // Runs `f` on the server's loop and returns its result.
  template <typename F>
  auto onLoop(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(io, [&task] { task(); });
    return fut.get();
  }
  ~ApiFixture() {
    onLoop([this] {
      server->stop();
      return 0;
    });
    work.reset();
    io.stop();
    thread.join();
  }
  api::HttpCounters counters() {
    return onLoop([this] { return server->counters(); });
  }

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  api::EventHub hub{4};
  std::unique_ptr<api::HttpServer> server;
  uint16_t port = 0;
  std::thread thread;
};

// A blocking client socket with a receive timeout (a guard against a hang, not a measurement).
inline tcp::socket connectTo(asio::io_context& io, uint16_t port) {
  tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  timeval tv{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return s;
}

inline http::request<http::string_body> makeRequest(http::verb method, const std::string& target,
                                                    const char* key, std::string body = "") {
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "localhost");
  if (key != nullptr) req.set("X-API-Key", key);
  if (!body.empty() || method == http::verb::patch) {
    req.body() = std::move(body);
    req.set(http::field::content_type, "application/json");
    req.prepare_payload();
  }
  return req;
}

template <typename S>
http::response<http::string_body> roundTrip(S& s, const http::request<http::string_body>& req) {
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return res;
}

// Reads until the peer closes (or the guard timeout): what arrived, and whether it was a close.
inline std::string readToClose(tcp::socket& s, bool& closed) {
  std::string out;
  char chunk[4096];
  for (;;) {
    boost::system::error_code ec;
    const size_t n = s.read_some(asio::buffer(chunk), ec);
    out.append(chunk, n);
    if (ec) {
      closed = ec == asio::error::eof || ec == asio::error::connection_reset;
      return out;
    }
  }
}

// Reads from a stream until `want` appears in what arrived; false at a close or the guard timeout.
inline bool readUntil(tcp::socket& s, std::string& got, const std::string& want) {
  char chunk[4096];
  while (got.find(want) == std::string::npos) {
    boost::system::error_code ec;
    const size_t n = s.read_some(asio::buffer(chunk), ec);
    if (ec) return false;
    got.append(chunk, n);
  }
  return true;
}

inline std::string errorOf(const http::response<http::string_body>& res) {
  return std::string(boost::json::parse(res.body()).at("error").as_string());
}

}  // namespace meridian::test
