// The SSE hub: replay after Last-Event-ID, the reset event when events left the ring, dropping a
// subscriber that falls behind; and a real stream over loopback.
#include <boost/json/object.hpp>
#include <catch2/catch.hpp>
#include <cstdint>

#include "tests/unit/api/api_test_util.h"

using namespace meridian;
using namespace meridian::test;

namespace {

// A Stream that keeps what it is sent, up to `limit` bytes (then it is "dropped").
struct FakeStream : api::Stream {
  explicit FakeStream(size_t limit = SIZE_MAX) : limit(limit) {}
  bool send(std::string bytes) override {
    if (closed_ || text.size() + bytes.size() > limit) {
      closed_ = true;
      return false;
    }
    text += bytes;
    return true;
  }
  [[nodiscard]] bool closed() const override { return closed_; }
  void close() override { closed_ = true; }
  size_t limit;
  std::string text;
  bool closed_ = false;
};

void publishN(api::EventHub& hub, int n) {
  for (int i = 0; i < n; ++i) hub.publish("reload", boost::json::object{{"n", i}});
}

}  // namespace

TEST_CASE("EventHub formats events as SSE and sends them to subscribers", "[api][events]") {
  api::EventHub hub(8);
  auto s = std::make_shared<FakeStream>();
  hub.subscribe(s, std::nullopt);
  CHECK(hub.publish("reload", boost::json::object{{"serial", 7}}) == 1);
  CHECK(s->text == "id: 1\nevent: reload\ndata: {\"serial\":7}\n\n");
}

TEST_CASE("Last-Event-ID replays the events after it", "[api][events]") {
  api::EventHub hub(8);
  publishN(hub, 5);
  auto s = std::make_shared<FakeStream>();
  hub.subscribe(s, 3);
  CHECK(s->text.find("id: 3\n") == std::string::npos);
  CHECK(s->text.find("id: 4\n") != std::string::npos);
  CHECK(s->text.find("id: 5\n") != std::string::npos);
  CHECK(s->text.find("reset") == std::string::npos);
  // Up to date: nothing replayed.
  auto current = std::make_shared<FakeStream>();
  hub.subscribe(current, 5);
  CHECK(current->text.empty());
}

TEST_CASE("a Last-Event-ID that fell out of the ring gets a reset event first", "[api][events]") {
  api::EventHub hub(4);
  publishN(hub, 10);  // the ring keeps 7..10
  auto s = std::make_shared<FakeStream>();
  hub.subscribe(s, 2);
  REQUIRE(s->text.rfind("id: 6\nevent: reset\ndata: ", 0) == 0);
  CHECK(s->text.find("\"oldest_kept\":7") != std::string::npos);
  CHECK(s->text.find("id: 7\nevent: reload") != std::string::npos);
  CHECK(s->text.find("id: 10\nevent: reload") != std::string::npos);
  // An id from an earlier run of the server (beyond the newest) is a reset too.
  auto later = std::make_shared<FakeStream>();
  hub.subscribe(later, 99);
  CHECK(later->text.rfind("id: 10\nevent: reset", 0) == 0);
}

TEST_CASE("a subscriber that falls behind is dropped", "[api][events]") {
  api::EventHub hub(4);
  auto slow = std::make_shared<FakeStream>(200);
  auto fine = std::make_shared<FakeStream>();
  hub.subscribe(slow, std::nullopt);
  hub.subscribe(fine, std::nullopt);
  publishN(hub, 10);
  CHECK(slow->closed());
  CHECK(hub.subscribers() == 1);
  CHECK(fine->text.find("id: 10\n") != std::string::npos);
}

TEST_CASE("SSE over HTTP: an event arrives, and a reconnect resumes with Last-Event-ID",
          "[api][events][http]") {
  ApiFixture f;
  asio::io_context cio;
  std::string last_id;
  {
    auto s = connectTo(cio, f.port);
    http::write(s, makeRequest(http::verb::get, "/api/v1/events", kReadOnlySecret));
    std::string got;
    REQUIRE(readUntil(s, got, ": meridian events"));
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(got.find("Content-Type: text/event-stream\r\n") != std::string::npos);
    REQUIRE(f.onLoop([&] { return f.hub.subscribers(); }) == 1);
    f.onLoop([&] { return f.hub.publish("reload", boost::json::object{{"serial", 1}}); });
    REQUIRE(readUntil(s, got, "data: {\"serial\":1}\n\n"));
    CHECK(got.find("id: 1\nevent: reload\n") != std::string::npos);
    last_id = "1";
  }
  f.onLoop([&] {
    f.hub.publish("reload", boost::json::object{{"serial", 2}});
    return f.hub.publish("reload", boost::json::object{{"serial", 3}});
  });
  auto s = connectTo(cio, f.port);
  auto req = makeRequest(http::verb::get, "/api/v1/events", kReadOnlySecret);
  req.set("Last-Event-ID", last_id);
  http::write(s, req);
  std::string got;
  REQUIRE(readUntil(s, got, "data: {\"serial\":3}\n\n"));
  CHECK(got.find("id: 2\nevent: reload\ndata: {\"serial\":2}") != std::string::npos);
  CHECK(got.find("\"serial\":1") == std::string::npos);
  // Without a key the stream is refused like any route.
  auto anon = connectTo(cio, f.port);
  CHECK(roundTrip(anon, makeRequest(http::verb::get, "/api/v1/events", nullptr)).result_int() ==
        401);
}

TEST_CASE("a stream subscriber that never reads is dropped by the server, a reading one stays",
          "[api][events][http]") {
  api::Limits limits;
  limits.stream_buffer_bytes = 1024 * 1024;
  ApiFixture f(limits);
  asio::io_context cio;
  auto subscribe = [&](tcp::socket& s) {
    http::write(s, makeRequest(http::verb::get, "/api/v1/events", kReadOnlySecret));
    std::string got;
    return readUntil(s, got, ": meridian events");
  };
  auto slow = connectTo(cio, f.port);
  slow.set_option(asio::socket_base::receive_buffer_size(4096));
  REQUIRE(subscribe(slow));
  auto fast = connectTo(cio, f.port);
  REQUIRE(subscribe(fast));
  std::thread reader([&] {
    char chunk[65536];
    boost::system::error_code ec;
    while (!ec) fast.read_some(asio::buffer(chunk), ec);
  });
  REQUIRE(f.onLoop([&] { return f.hub.subscribers(); }) == 2);
  // 16 KB per turn of the loop, far below the buffer, until one subscriber is gone (64 MB at
  // most): only the one that does not read can fall a whole buffer behind.
  const std::string pad(4096, 'p');
  size_t left = 2;
  for (int i = 0; i < 4096 && left == 2; ++i) {
    left = f.onLoop([&] {
      for (int j = 0; j < 4; ++j) f.hub.publish("pad", boost::json::object{{"p", pad}});
      return f.hub.subscribers();
    });
  }
  CHECK(left == 1);
  CHECK(f.counters().dropped_streams == 1);
  boost::system::error_code ignored;
  fast.shutdown(tcp::socket::shutdown_both, ignored);
  reader.join();
}

TEST_CASE("an idle event stream gets keep-alive comments", "[api][events][http]") {
  api::Limits limits;
  limits.stream_keepalive_ms = 100;
  ApiFixture f(limits);
  asio::io_context cio;
  auto s = connectTo(cio, f.port);
  http::write(s, makeRequest(http::verb::get, "/api/v1/events", kReadOnlySecret));
  std::string got;
  REQUIRE(readUntil(s, got, ": keep-alive\n\n"));
  CHECK(got.find("event:") == std::string::npos);
}
