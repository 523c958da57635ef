// Meridian's own API resources (app/api_meridian.h) on a running app::Runtime with [api] on a
// loopback port: health and overrides (read-write key needed, 422 naming the field or with the
// service's message), explain (400 naming a missing parameter), reload answered once published,
// /metrics (Prometheus text with the API's status classes; without a key only when configured),
// services and regions, and the `override` and `health` events of GET /api/v1/events.
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "api/auth.h"
#include "app/config.h"
#include "app/control_socket.h"
#include "app/runtime.h"
#include "control_client.h"
#include "steering_fixture.h"
#include "tests/unit/api/api_test_util.h"

using namespace meridian;
namespace fs = std::filesystem;
namespace json = boost::json;
using test::kReadOnlySecret;
using test::kReadWriteSecret;

namespace {

// A port nothing listens on right now (the kernel's pick, released).
uint16_t freePort() {
  test::asio::io_context io;
  test::tcp::acceptor a(io, {test::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// svc.a.test with the geo filter; eu has coordinates (GET /api/v1/regions shows them), us none.
const std::string kSteering = test::twoRegionSteering(
    {.policy = R"(["up", "geo"])", .eu_position = "latitude = 50.1\nlongitude = 8.7\n"});

// A TCP check of a loopback port nothing listens on: down after its first probe.
std::string deadCheck(uint16_t port) {
  return R"(
[[service]]
name = "dead.a.test"
check = "dead"

[[service.pool]]
region = "eu"
endpoints = ["127.0.0.1"]

[[check]]
name = "dead"
type = "tcp"
port = )" +
         std::to_string(port) +
         R"(
interval_ms = 200
timeout_ms = 200
fall = 1
)";
}

struct ApiHarness {
  fs::path dir;
  fs::path zone;
  uint16_t port = 0;
  std::unique_ptr<app::Runtime> runtime;
  std::thread thread;
  std::atomic<bool> ended{false};
  test::asio::io_context io;

  explicit ApiHarness(const std::string& extra_api = "", const std::string& extra = "") {
    char tmpl[] = "/tmp/meridian-api-meridian-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    zone = dir / "a.test.zone";
    test::writeFile(zone,
                    "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n"
                    "@ IN NS ns\nns IN A 192.0.2.1\nsvc IN A 192.0.2.99\ndead IN A 192.0.2.98\n"
                    "www IN CNAME svc\n");
    port = freePort();
    const std::string conf =
        "[api]\nlisten = [\"127.0.0.1:" + std::to_string(port) + "\"]\n" + extra_api +
        "\n[[api.key]]\nname = \"ops\"\nhash = \"" + api::hashSecret(kReadWriteSecret) +
        "\"\nscope = \"read-write\"\n\n[[api.key]]\nname = \"viewer\"\n"
        "hash = \"" +
        api::hashSecret(kReadOnlySecret) + "\"\nscope = \"read-only\"\n" + kSteering + extra;
    test::writeFile(dir / "meridian.toml", conf);
    app::CommandLine cmd;
    cmd.config_file = (dir / "meridian.toml").string();
    cmd.zones = {"a.test.=" + zone.string()};
    cmd.listen = {"127.0.0.1:0"};
    cmd.threads = 1;
    cmd.sets = {"control.socket=" + (dir / "ctl.sock").string()};
    auto config = app::loadConfig(cmd);
    if (!config) FAIL(config.error().message);
    runtime = std::make_unique<app::Runtime>(cmd, std::move(*config));
    thread = std::thread([this] {
      (void)runtime->run();
      ended = true;
    });
    // The API listens once the first load is published.
    while (!ended && !connectable()) std::this_thread::yield();
    if (ended) thread.join();
    REQUIRE_FALSE(ended);
  }
  ~ApiHarness() {
    runtime->requestStop();
    thread.join();
    runtime.reset();
    fs::remove_all(dir);
  }
  bool connectable() {
    boost::system::error_code ec;
    test::tcp::socket s(io);
    s.connect({test::asio::ip::make_address("127.0.0.1"), port}, ec);
    return !ec;
  }
  test::http::response<test::http::string_body> call(test::http::verb method,
                                                     const std::string& target, const char* key,
                                                     std::string body = "") {
    auto s = test::connectTo(io, port);
    auto req = test::makeRequest(method, target, key, std::move(body));
    if (method == test::http::verb::put && !req.body().empty()) req.prepare_payload();
    return test::roundTrip(s, req);
  }
  json::value get(const std::string& target) {
    auto res = call(test::http::verb::get, target, kReadOnlySecret);
    REQUIRE(res.result_int() == 200);
    return json::parse(res.body());
  }
};

using test::http::verb;

}  // namespace

TEST_CASE("api: health lists every slot with where it is used", "[api_meridian]") {
  ApiHarness h;
  const auto v = h.get("/api/v1/health");
  const auto& eps = v.at("endpoints").as_array();
  REQUIRE(eps.size() == 3);
  const auto& first = eps[0].as_object();
  CHECK(first.at("label") == "eu/198.51.100.1");
  CHECK(first.at("address") == "198.51.100.1");
  CHECK(first.at("checked") == false);
  CHECK(first.at("verdict") == "up");
  CHECK(first.at("override") == "none");
  CHECK(first.at("usable") == true);
  const auto& where = first.at("where").as_array();
  REQUIRE(where.size() == 1);
  CHECK(where[0].at("service") == "svc.a.test.");
  CHECK(where[0].at("region") == "eu");

  // One slot by label (its '/' escaped), by id, by address; an unknown one is 404.
  CHECK(h.get("/api/v1/health/us%2F198.51.100.3").at("id") == 2);
  CHECK(h.get("/api/v1/health/1").at("label") == "eu/198.51.100.2");
  CHECK(h.get("/api/v1/health/198.51.100.3").at("label") == "us/198.51.100.3");
  auto missing = h.call(verb::get, "/api/v1/health/203.0.113.9", kReadOnlySecret);
  CHECK(missing.result_int() == 404);
  CHECK(test::errorOf(missing) == "no health slot '203.0.113.9'");
}

TEST_CASE("api: overrides need a read-write key and valid fields", "[api_meridian]") {
  ApiHarness h;
  const std::string body = R"({"what": "region:eu", "mode": "drain"})";
  CHECK(h.call(verb::put, "/api/v1/overrides", nullptr, body).result_int() == 401);
  auto ro = h.call(verb::put, "/api/v1/overrides", kReadOnlySecret, body);
  CHECK(ro.result_int() == 403);
  CHECK(test::errorOf(ro) == "API key 'viewer' is read-only");

  auto bad_json = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret, "{nope");
  CHECK(bad_json.result_int() == 400);
  auto no_mode = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret, R"({"what": "x"})");
  CHECK(no_mode.result_int() == 422);
  CHECK(test::errorOf(no_mode) == "mode: a string is required");
  auto bad_mode = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret,
                         R"({"what": "region:eu", "mode": "sideways"})");
  CHECK(bad_mode.result_int() == 422);
  CHECK(test::errorOf(bad_mode) == "override mode must be force-up, force-down, drain or none");
  auto nothing = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret,
                        R"({"what": "region:mars", "mode": "drain"})");
  CHECK(nothing.result_int() == 422);
  CHECK(test::errorOf(nothing) == "nothing matches 'region:mars' (see meridianctl health)");
  // The path form: an unknown target is 404 there.
  CHECK(h.call(verb::put, "/api/v1/overrides/203.0.113.9", kReadWriteSecret, R"({"mode":"drain"})")
            .result_int() == 404);

  auto ok = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret, body);
  REQUIRE(ok.result_int() == 200);
  const auto r = json::parse(ok.body());
  CHECK(r.at("mode") == "drain");
  CHECK(r.at("changes").as_array().size() == 2);
  const auto list = h.get("/api/v1/overrides").at("overrides").as_array();
  REQUIRE(list.size() == 2);
  CHECK(list[0].at("label") == "eu/198.51.100.1");
  CHECK(list[0].at("override") == "drain");
  CHECK(list[0].at("usable") == false);
  // The steering sees it: explain answers from us now.
  const auto e = h.get("/api/v1/explain?name=svc.a.test&client=192.0.2.7");
  CHECK(e.at("answer").as_array() == json::array{"us/198.51.100.3"});

  // DELETE of one slot clears its override.
  auto del = h.call(verb::delete_, "/api/v1/overrides/198.51.100.1", kReadWriteSecret);
  CHECK(del.result_int() == 200);
  CHECK(h.get("/api/v1/overrides").at("overrides").as_array().size() == 1);
}

TEST_CASE("api: explain names a missing or bad parameter", "[api_meridian]") {
  ApiHarness h;
  auto no_name = h.call(verb::get, "/api/v1/explain?client=192.0.2.7", kReadOnlySecret);
  CHECK(no_name.result_int() == 400);
  CHECK(test::errorOf(no_name) == "name: the query parameter is required");
  auto no_client = h.call(verb::get, "/api/v1/explain?name=svc.a.test", kReadOnlySecret);
  CHECK(no_client.result_int() == 400);
  CHECK(test::errorOf(no_client) == "client: the query parameter is required");
  auto bad_type = h.call(verb::get, "/api/v1/explain?name=svc.a.test&type=MX&client=192.0.2.7",
                         kReadOnlySecret);
  CHECK(bad_type.result_int() == 422);
  CHECK(test::errorOf(bad_type) == "type must be A, AAAA or CNAME");
  auto bad_client =
      h.call(verb::get, "/api/v1/explain?name=svc.a.test&client=not-an-ip", kReadOnlySecret);
  CHECK(bad_client.result_int() == 422);
  CHECK(test::errorOf(bad_client).rfind("client: ", 0) == 0);

  // Through the zone's CNAME, with ECS.
  const auto e = h.get("/api/v1/explain?name=www.a.test&type=A&client=192.0.2.0%2F24");
  CHECK(e.at("steered") == true);
  CHECK(e.at("service") == "svc.a.test.");
  CHECK(e.at("from_ecs") == true);
  CHECK(e.at("decision") == "answer");
  CHECK(e.at("policy").as_array() == json::array{"up", "geo"});
  REQUIRE(e.at("cnames").as_array().size() == 1);
  CHECK(e.at("cnames").as_array()[0].at("to") == "svc.a.test.");
  CHECK(e.at("answer").as_array() == json::array{"eu/198.51.100.1", "eu/198.51.100.2"});
  // A name no service steers: the zone data answers it.
  CHECK(h.get("/api/v1/explain?name=ns.a.test&client=192.0.2.7").at("steered") == false);
}

TEST_CASE("api: reload answers once published; services and regions", "[api_meridian]") {
  ApiHarness h;
  CHECK(h.call(verb::post, "/api/v1/reload", kReadOnlySecret).result_int() == 403);
  test::writeFile(h.zone,
                  "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns hostmaster 2 3600 600 86400 300\n"
                  "@ IN NS ns\nns IN A 192.0.2.1\nsvc IN A 192.0.2.99\ndead IN A 192.0.2.98\n");
  auto res = h.call(verb::post, "/api/v1/reload", kReadWriteSecret);
  REQUIRE(res.result_int() == 200);
  const auto r = json::parse(res.body());
  CHECK(r.at("loaded") == 1);
  CHECK(r.at("unchanged") == 0);
  CHECK(r.at("failed") == 0);
  CHECK(r.at("warnings").as_array().empty());
  CHECK(r.at("errors").as_object().empty());
  // The reload is published before the answer: www's CNAME is gone.
  CHECK(h.get("/api/v1/explain?name=www.a.test&client=192.0.2.7").at("steered") == false);

  const auto services = h.get("/api/v1/services").as_array();
  REQUIRE(services.size() == 1);
  CHECK(services[0].at("name") == "svc.a.test.");
  CHECK(services[0].at("zone") == "a.test.");
  const auto& pools = services[0].at("pools").as_array();
  REQUIRE(pools.size() == 2);
  CHECK(pools[1].at("region") == "us");
  CHECK(pools[1].at("endpoints").as_array()[0].at("health").at("verdict") == "up");
  const auto regions = h.get("/api/v1/regions").as_array();
  REQUIRE(regions.size() == 2);
  CHECK(regions[0].at("name") == "eu");
  CHECK(regions[0].at("latitude").as_double() == 50.1);
  CHECK_FALSE(regions[1].as_object().contains("latitude"));
}

TEST_CASE("api: /metrics is Prometheus text with the API's status classes", "[api_meridian]") {
  SECTION("a key is needed by default") {
    ApiHarness h;
    CHECK(h.call(verb::get, "/metrics", nullptr).result_int() == 401);
    CHECK(h.call(verb::get, "/api/v1/health/nope", kReadOnlySecret).result_int() == 404);
    auto res = h.call(verb::get, "/metrics", kReadOnlySecret);
    REQUIRE(res.result_int() == 200);
    CHECK(res[test::http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    const std::string& text = res.body();
    CHECK(text.find("# TYPE meridian_reloads_total counter") != std::string::npos);
    // Before this one: the 401 and the 404 (this response is counted after it is made).
    CHECK(text.find("meridian_api_responses_total{class=\"4xx\"} 2\n") != std::string::npos);
    CHECK(text.find("meridian_api_responses_total{class=\"2xx\"} 0\n") != std::string::npos);
    CHECK(text.find("meridian_api_requests_total 3\n") != std::string::npos);
  }
  SECTION("api.metrics_without_key = true") {
    ApiHarness h("metrics_without_key = true\n");
    auto res = h.call(verb::get, "/metrics", nullptr);
    CHECK(res.result_int() == 200);
    CHECK(res.body().find("meridian_api_requests_total 1\n") != std::string::npos);
    // Only /metrics: the rest still wants a key.
    CHECK(h.call(verb::get, "/api/v1/health", nullptr).result_int() == 401);
  }
}

TEST_CASE("api: an SSE client receives override and health events", "[api_meridian]") {
  const uint16_t dead = freePort();
  ApiHarness h("", deadCheck(dead));
  auto events = test::connectTo(h.io, h.port);
  test::http::write(events, test::makeRequest(verb::get, "/api/v1/events", kReadOnlySecret));
  std::string got;
  REQUIRE(test::readUntil(events, got, ": meridian events"));

  // The checked slot goes down after its first failed probe: a `health` event.
  REQUIRE(test::readUntil(events, got, "event: health\n"));
  const size_t at = got.find("event: health\ndata: ");
  const auto health = json::parse(got.substr(at + 20, got.find('\n', at + 20) - at - 20));
  CHECK(health.at("label") == "127.0.0.1 (dead)");
  CHECK(health.at("verdict") == "down");
  CHECK(health.at("checked") == true);

  // An override set through the API (the control socket's go the same way): an `override` event.
  auto put = h.call(verb::put, "/api/v1/overrides", kReadWriteSecret,
                    R"({"what": "us/198.51.100.3", "mode": "force-down"})");
  REQUIRE(put.result_int() == 200);
  REQUIRE(test::readUntil(events, got, "event: override\n"));
  const size_t o = got.find("event: override\ndata: ");
  const auto ov = json::parse(got.substr(o + 22, got.find('\n', o + 22) - o - 22));
  CHECK(ov.at("label") == "us/198.51.100.3");
  CHECK(ov.at("override") == "force-down");
  CHECK(ov.at("usable") == false);

  // Through the control socket's command (runControlCommand, what the socket runs) too.
  std::promise<std::string> reply;
  h.runtime->post([&] {
    app::runControlCommand(h.runtime->control(), "override eu/198.51.100.2 drain",
                           [&](std::string text) { reply.set_value(std::move(text)); });
  });
  CHECK(reply.get_future().get().rfind("ok\n", 0) == 0);
  REQUIRE(test::readUntil(events, got, "\"label\":\"eu/198.51.100.2\""));
}
