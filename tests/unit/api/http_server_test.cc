// The API's HTTP server over loopback with a Beast client: keep-alive, the error codes and bodies
// (401/403/404/405/413/431/400), timeouts that close a slow client, the connection cap, TLS.
#include <unistd.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "tests/unit/api/api_test_util.h"

using namespace meridian;
using namespace meridian::test;

namespace {

bool servedOnNewConnection(asio::io_context& cio, uint16_t port) {
  auto s = connectTo(cio, port);
  return roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret))
             .result_int() == 200;
}

}  // namespace

TEST_CASE("a kept-alive connection serves several requests", "[api][http]") {
  ApiFixture f;
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  for (int i = 0; i < 3; ++i) {
    auto res = roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret));
    CHECK(res.result_int() == 200);
    CHECK(res[http::field::content_type] == "application/json");
    CHECK(res.keep_alive());
    CHECK(res.body() == R"(["localhost"])");
  }
  const auto c = f.counters();
  CHECK(c.connections == 1);
  CHECK(c.requests == 3);
}

TEST_CASE("unknown paths, wrong methods and keys get PowerDNS's codes as JSON", "[api][http]") {
  ApiFixture f;
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  struct Case {
    http::verb method;
    const char* target;
    const char* key;
    unsigned status;
    const char* error;
  };
  const Case cases[] = {
      {http::verb::get, "/api/v1/nothing", kReadWriteSecret, 404, "Not Found"},
      {http::verb::get, "/api/v1/nothing", nullptr, 404, "Not Found"},
      {http::verb::get, "/api/v1/servers", nullptr, 401, "Unauthorized"},
      {http::verb::get, "/api/v1/servers", "wrong-key", 401, "Unauthorized"},
      // PowerDNS checks the key before the method.
      {http::verb::delete_, "/api/v1/servers", nullptr, 401, "Unauthorized"},
      {http::verb::delete_, "/api/v1/servers", kReadWriteSecret, 405, "Method Not Allowed"},
      {http::verb::patch, "/api/v1/servers/localhost/zones/example.com.", kReadOnlySecret, 403,
       "API key 'viewer' is read-only"},
      {http::verb::get, "/api/v1/servers/localhost/zones/other.org.", kZonedSecret, 403,
       "API key 'acme' may not touch zone other.org."},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target, c.status);
    auto res = roundTrip(s, makeRequest(c.method, c.target, c.key));
    CHECK(res.result_int() == c.status);
    CHECK(res[http::field::content_type] == "application/json");
    CHECK(errorOf(res) == c.error);
    if (c.status == 401)
      CHECK(res[http::field::www_authenticate] == "X-API-Key realm=\"Meridian\"");
  }
  // The zoned key on its own zone (any case, %-escaped), and a read-write key writing.
  auto own = roundTrip(
      s,
      makeRequest(http::verb::get, "/api/v1/servers/localhost/zones/EXAMPLE%2Ecom", kZonedSecret));
  CHECK(own.result_int() == 200);
  CHECK(boost::json::parse(own.body()).at("zone").as_string() == "EXAMPLE.com");
  auto patch =
      roundTrip(s, makeRequest(http::verb::patch, "/api/v1/servers/localhost/zones/example.com.",
                               kReadWriteSecret, R"({"rrsets": []})"));
  CHECK(patch.result_int() == 200);
  CHECK(boost::json::parse(patch.body()).at("bytes").to_number<int>() == 14);
  CHECK(f.counters().connections == 1);  // every error above kept the connection
}

TEST_CASE("oversized bodies get 413, oversized headers 431, garbage 400", "[api][http]") {
  api::Limits limits;
  limits.body_bytes = 1024;
  limits.header_bytes = 2048;
  ApiFixture f(limits);
  asio::io_context cio;
  {
    auto s = connectTo(cio, f.port);
    auto res = roundTrip(s, makeRequest(http::verb::patch, "/api/v1/servers/localhost/zones/a.",
                                        kReadWriteSecret, std::string(1025, ' ')));
    CHECK(res.result_int() == 413);
    CHECK(errorOf(res) == "Request Entity Too Large");
    CHECK_FALSE(res.keep_alive());
  }
  {
    auto s = connectTo(cio, f.port);
    auto req = makeRequest(http::verb::get, "/api/v1/servers", kReadWriteSecret);
    req.set("X-Padding", std::string(4096, 'p'));
    auto res = roundTrip(s, req);
    CHECK(res.result_int() == 431);
    CHECK(errorOf(res) == "Request Header Fields Too Large");
  }
  {
    auto s = connectTo(cio, f.port);
    asio::write(s, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    CHECK(res.result_int() == 400);
    CHECK(errorOf(res) == "Bad Request");
  }
  // A body within the limit still passes.
  auto s = connectTo(cio, f.port);
  auto ok = roundTrip(s, makeRequest(http::verb::patch, "/api/v1/servers/localhost/zones/a.",
                                     kReadWriteSecret, std::string(1024, ' ')));
  CHECK(ok.result_int() == 200);
  CHECK(f.counters().rejected == 3);
}

TEST_CASE("a client that sends half a request is closed, and does not hold up others",
          "[api][http]") {
  api::Limits limits;
  limits.read_timeout_ms = 300;  // short, so the test is quick; nothing asserts a duration
  ApiFixture f(limits);
  asio::io_context cio;
  auto slow = connectTo(cio, f.port);
  asio::write(slow, asio::buffer(std::string("GET /api/v1/servers HTTP/1.1\r\nHost: x\r\n")));
  // Served meanwhile on another connection: the half request holds nothing.
  CHECK(servedOnNewConnection(cio, f.port));
  bool closed = false;
  const std::string got = readToClose(slow, closed);
  CHECK(closed);
  CHECK(got.empty());
  CHECK(f.counters().timeouts == 1);
}

TEST_CASE("a client that never reads its response is closed by the write timeout", "[api][http]") {
  api::Limits limits;
  limits.write_timeout_ms = 300;
  ApiFixture f(limits);
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  // A small receive buffer, so the 32 MB answer cannot all sit in the kernel.
  s.set_option(asio::socket_base::receive_buffer_size(4096));
  http::write(s, makeRequest(http::verb::get, "/big", kReadOnlySecret));
  // Wait (bounded) until the server gives up on the write.
  for (int i = 0; i < 200 && f.counters().timeouts == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(f.counters().timeouts == 1);
  CHECK(f.onLoop([&] { return f.server->openConnections(); }) == 0);
  CHECK(servedOnNewConnection(cio, f.port));
}

TEST_CASE("past max_connections a new connection gets 503 and the open ones stay", "[api][http]") {
  api::Limits limits;
  limits.max_connections = 2;
  ApiFixture f(limits);
  asio::io_context cio;
  auto a = connectTo(cio, f.port);
  auto b = connectTo(cio, f.port);
  CHECK(
      roundTrip(a, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret)).result_int() ==
      200);
  CHECK(
      roundTrip(b, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret)).result_int() ==
      200);
  auto c = connectTo(cio, f.port);
  auto refused = roundTrip(c, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret));
  CHECK(refused.result_int() == 503);
  CHECK(errorOf(refused) == "Too many connections");
  CHECK(
      roundTrip(a, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret)).result_int() ==
      200);
  CHECK(f.counters().refused == 1);
}

TEST_CASE("TLS: a request over HTTPS with a self-signed certificate", "[api][http][tls]") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("meridian-api-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string cert = (dir / "cert.pem").string();
  const std::string key = (dir / "key.pem").string();
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  {
    ApiFixture f({}, cert, key);
    asio::io_context cio;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.load_verify_file(cert);  // the self-signed certificate is its own CA
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<tcp::socket> s(connectTo(cio, f.port), ctx);
    s.handshake(asio::ssl::stream_base::client);
    auto res = roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret));
    CHECK(res.result_int() == 200);
    CHECK(res.body() == R"(["localhost"])");
    auto again = roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", nullptr));
    CHECK(again.result_int() == 401);
    // Plain HTTP to the TLS port gets no answer.
    auto plain = connectTo(cio, f.port);
    http::write(plain, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret));
    bool closed = false;
    CHECK(readToClose(plain, closed).find("200 OK") == std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("start() names the file of a bad TLS certificate", "[api][http][tls]") {
  asio::io_context io;
  api::HttpSettings s;
  s.listen = {{asio::ip::make_address("127.0.0.1"), 0}};
  s.tls_certificate = "/nonexistent/cert.pem";
  s.tls_key = "/nonexistent/key.pem";
  api::HttpServer server(io, s, api::Router{}, testKeys());
  auto r = server.start();
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("/nonexistent/cert.pem") != std::string::npos);
}

TEST_CASE("a kept-alive connection left idle is closed by the idle timeout", "[api][http]") {
  api::Limits limits;
  limits.idle_timeout_ms = 300;
  ApiFixture f(limits);
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  CHECK(
      roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret)).result_int() ==
      200);
  bool closed = false;
  CHECK(readToClose(s, closed).empty());
  CHECK(closed);
  CHECK(f.counters().timeouts == 1);
}

TEST_CASE("Expect: 100-continue is answered before the body is read", "[api][http]") {
  ApiFixture f;
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  const std::string body = R"({"rrsets": []})";
  asio::write(s, asio::buffer("PATCH /api/v1/servers/localhost/zones/a. HTTP/1.1\r\nHost: x\r\n"
                              "X-API-Key: " +
                              std::string(kReadWriteSecret) +
                              "\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n"));
  std::string got;
  REQUIRE(readUntil(s, got, "\r\n\r\n"));
  CHECK(got == "HTTP/1.1 100 Continue\r\n\r\n");
  asio::write(s, asio::buffer(body));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  CHECK(res.result_int() == 200);
  CHECK(res.body() == R"({"bytes":14})");
}

TEST_CASE("a Response::later answer is sent when it comes, on the same connection", "[api][http]") {
  ApiFixture f;
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  auto res = roundTrip(s, makeRequest(http::verb::get, "/later", kReadOnlySecret));
  CHECK(res.result_int() == 202);
  CHECK(res.body() == R"({"done":true})");
  CHECK(
      roundTrip(s, makeRequest(http::verb::get, "/api/v1/servers", kReadOnlySecret)).result_int() ==
      200);
}
