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
#include <optional>
#include <string>
#include <thread>

#include "api/auth.h"
#include "app/config.h"
#include "app/control_socket.h"
#include "app/runtime.h"
#include "app/service_store.h"
#include "control/audit.h"
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

  fs::path state;  // control.state_dir, when `store` is given

  // `store`: run with control.state_dir (dir/state), and STATE/services.toml holding this text
  // when it is not empty.
  explicit ApiHarness(const std::string& extra_api = "", const std::string& extra = "",
                      std::optional<std::string> store = std::nullopt) {
    char tmpl[] = "/tmp/meridian-api-meridian-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    zone = dir / "a.test.zone";
    test::writeFile(zone,
                    "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns hostmaster 1 3600 600 86400 300\n"
                    "@ IN NS ns\nns IN A 192.0.2.1\nsvc IN A 192.0.2.99\ndead IN A 192.0.2.98\n"
                    "www IN CNAME svc\nnew IN A 192.0.2.50\nsub IN NS ns.elsewhere.test.\n");
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
    if (store) {
      state = dir / "state";
      fs::create_directories(state);
      if (!store->empty()) test::writeFile(state / "services.toml", *store);
      cmd.sets.push_back("control.state_dir=" + state.string());
    }
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

namespace {

// new.a.test (whose fallback is 192.0.2.50): eu for everyone but 10.1.0.0/16, which gets us.
const char* kNewService = R"({
  "ttl": 10,
  "policy": ["up", "geo"],
  "geo": {"default": ["eu", "us"], "cidr": {"10.1.0.0/16": ["us"]}},
  "pool": [{"region": "eu", "endpoints": ["198.51.100.7", "198.51.100.9"]},
           {"region": "us", "endpoints": ["198.51.100.8"]}]
})";

// Whether `text` is `pattern`, a '*' in it standing for any text: the pieces between the stars
// appear in order, the first at the start and the last at the end unless a star is there.
bool globMatch(const std::string& pattern, const std::string& text) {
  std::vector<std::string> pieces{""};
  for (char ch : pattern) {
    if (ch == '*') {
      pieces.emplace_back();
    } else {
      pieces.back().push_back(ch);
    }
  }
  if (text.rfind(pieces.front(), 0) != 0) return false;
  size_t at = pieces.front().size();
  for (size_t i = 1; i < pieces.size(); ++i) {
    at = text.find(pieces[i], at);
    if (at == std::string::npos) return false;
    at += pieces[i].size();
  }
  if (pieces.size() == 1) return text == pattern;
  const std::string& last = pieces.back();  // empty when the pattern ends in '*'
  return last.empty() || (text.size() >= last.size() &&
                          text.compare(text.size() - last.size(), last.size(), last) == 0);
}

json::array answerFor(ApiHarness& h, const std::string& name, const std::string& client) {
  const auto e = h.get("/api/v1/explain?name=" + name + "&client=" + client);
  if (e.at("steered") != true) return {};
  return e.at("answer").as_array();
}

}  // namespace

TEST_CASE("api: services are created, re-policied, replaced and deleted", "[api_meridian]") {
  ApiHarness h("", "", "");
  auto events = test::connectTo(h.io, h.port);
  test::http::write(events, test::makeRequest(verb::get, "/api/v1/events", kReadOnlySecret));
  std::string got;
  REQUIRE(test::readUntil(events, got, ": meridian events"));

  auto created = h.call(verb::put, "/api/v1/services/New.A.test", kReadWriteSecret, kNewService);
  REQUIRE(created.result_int() == 201);
  const auto c = json::parse(created.body());
  CHECK(c.at("name") == "new.a.test.");
  CHECK(c.at("zone") == "a.test.");
  CHECK(c.at("ttl") == 10);
  CHECK(c.at("source") == "api");
  CHECK(c.at("file").as_string() == (h.state / "services.toml").string());
  CHECK(c.at("definition").at("ttl") == 10);
  // Steered as soon as the answer is in: by the geo map's default, and by the client's subnet.
  CHECK(answerFor(h, "new.a.test", "192.0.2.7") ==
        json::array{"eu/198.51.100.7", "eu/198.51.100.9"});
  CHECK(answerFor(h, "new.a.test", "10.1.2.0%2F24") == json::array{"us/198.51.100.8"});
  REQUIRE(test::readUntil(events, got, "event: service\n"));
  CHECK(got.find(R"(data: {"name":"new.a.test.","op":"create"})") != std::string::npos);
  // The store is TOML an operator can read, and reads back as the same service.
  const std::string stored = test::readFile(h.state / "services.toml");
  CHECK(stored.find("[[service]]") != std::string::npos);
  CHECK(stored.find("New.A.test") != std::string::npos);
  auto back = app::readServiceStore((h.state / "services.toml").string());
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 1);
  CHECK(back->at(0).config.ttl == 10);
  CHECK(back->at(0).config.pools.size() == 2);

  // GET one service, and the list names where each comes from.
  const auto one = h.get("/api/v1/services/new.a.test.");
  CHECK(one.at("definition").at("policy").as_array() == json::array{"up", "geo"});
  const auto list = h.get("/api/v1/services").as_array();
  REQUIRE(list.size() == 2);  // by name
  CHECK(list[0].at("name") == "new.a.test.");
  CHECK(list[0].at("source") == "api");
  CHECK(list[1].at("name") == "svc.a.test.");
  CHECK(list[1].at("source") == "config");
  CHECK(list[1].at("file").as_string() == (h.dir / "meridian.toml").string());
  CHECK_FALSE(list[1].as_object().contains("definition"));

  // The policy alone: first_n keeps one address, the rest of the service as it was.
  auto pol = h.call(verb::put, "/api/v1/services/new.a.test/policy", kReadWriteSecret,
                    R"({"policy": ["up", "geo", "first_n"], "first_n": 1})");
  REQUIRE(pol.result_int() == 200);
  CHECK(json::parse(pol.body()).at("policy").as_array() == json::array{"up", "geo", "first_n"});
  CHECK(answerFor(h, "new.a.test", "192.0.2.7").size() == 1);
  CHECK(answerFor(h, "new.a.test", "10.1.2.0%2F24") == json::array{"us/198.51.100.8"});
  REQUIRE(test::readUntil(events, got, R"("op":"policy")"));
  // The geo map is a policy parameter too.
  REQUIRE(h.call(verb::put, "/api/v1/services/new.a.test/policy", kReadWriteSecret,
                 R"({"geo": {"default": ["us"]}})")
              .result_int() == 200);
  CHECK(answerFor(h, "new.a.test", "192.0.2.7") == json::array{"us/198.51.100.8"});

  // A whole PUT replaces it (200, not 201).
  auto replaced =
      h.call(verb::put, "/api/v1/services/new.a.test", kReadWriteSecret,
             R"({"policy": ["up"], "pool": [{"region": "us", "endpoints": ["198.51.100.10"]}]})");
  REQUIRE(replaced.result_int() == 200);
  CHECK(answerFor(h, "new.a.test", "192.0.2.7") == json::array{"us/198.51.100.10"});
  REQUIRE(test::readUntil(events, got, R"("op":"replace")"));

  auto del = h.call(verb::delete_, "/api/v1/services/new.a.test", kReadWriteSecret);
  CHECK(del.result_int() == 204);
  // The zone file's RRset answers it again.
  CHECK(h.get("/api/v1/explain?name=new.a.test&client=192.0.2.7").at("steered") == false);
  CHECK(h.call(verb::get, "/api/v1/services/new.a.test", kReadOnlySecret).result_int() == 404);
  CHECK(h.call(verb::delete_, "/api/v1/services/new.a.test", kReadWriteSecret).result_int() == 404);
  REQUIRE(test::readUntil(events, got, R"("op":"delete")"));
  auto empty = app::readServiceStore((h.state / "services.toml").string());
  REQUIRE(empty.has_value());
  CHECK(empty->empty());

  // Every change is audited under the key and the client's address.
  auto audit = control::readEntries((h.state / "audit.log").string(), {});
  REQUIRE(audit.has_value());
  std::vector<std::string> ops;
  for (const auto& e : *audit) {
    ops.push_back(e.operation);
    CHECK(e.key == "ops");
    CHECK(e.source.rfind("127.0.0.1:", 0) == 0);
    CHECK(e.zone == "a.test.");
    CHECK(e.detail == "new.a.test.");
  }
  CHECK(ops == std::vector<std::string>{"service-create", "service-policy", "service-policy",
                                        "service-replace", "service-delete"});
  CHECK(audit->front().added.size() > 0);
  CHECK(audit->back().added.empty());
}

TEST_CASE("api: a bad service changes nothing and names the field", "[api_meridian]") {
  const std::string limited =
      "\n[[api.key]]\nname = \"elsewhere\"\nhash = \"" + api::hashSecret("limited-secret") +
      "\"\nscope = \"read-write\"\nzones = [\"other.test\"]\n\n[[api.key]]\nname = \"a-only\"\n"
      "hash = \"" +
      api::hashSecret("a-secret") + "\"\nscope = \"read-write\"\nzones = [\"a.test\"]\n";
  ApiHarness h("", limited, "");
  const std::string path = "/api/v1/services/new.a.test";
  struct Bad {
    std::string path, body;
    unsigned status;
    std::string error;  // the message; '*' stands for any text
  };
  for (const Bad& b : {
           Bad{path, "{", 400, "the body must be a JSON object"},
           Bad{path, R"({"ttl": "long"})", 422, "request: service.ttl must be an integer*"},
           Bad{path, R"({"ttl": 10, "colour": "red"})", 422, "request: service.colour*"},
           Bad{path, R"({"name": "other.a.test"})", 422,
               "request: service.name 'other.a.test' differs from the name in the path "
               "(new.a.test.)"},
           Bad{path, R"({"ttl": null})", 422,
               "request: service.ttl is null (leave the key out for its default)"},
           Bad{path, R"({"pool": [{"region": "mars", "endpoints": ["198.51.100.7"]}]})", 422,
               "request: service*mars*"},
           Bad{path, R"({"check": "nope", "pool": [{"region": "eu", "endpoints": ["192.0.2.1"]}]})",
               422, "*nope*"},
           Bad{"/api/v1/services/www.b.test",
               R"({"pool": [{"region": "eu", "endpoints": ["198.51.100.7"]}]})", 422,
               "*www.b.test. is not inside any served zone"},
           Bad{"/api/v1/services/nothing.a.test",
               R"({"pool": [{"region": "eu", "endpoints": ["198.51.100.7"]}]})", 422,
               "*has no records in zone a.test.*"},
           Bad{"/api/v1/services/x.sub.a.test",
               R"({"pool": [{"region": "eu", "endpoints": ["198.51.100.7"]}]})", 422,
               "*below a delegation*"},
           Bad{"/api/v1/services/svc.a.test", R"({"ttl": 5})", 409,
               "service svc.a.test. is defined in " + (h.dir / "meridian.toml").string() +
                   "; the API changes only the services it made (edit the file and reload)"},
           Bad{"/api/v1/services/svc.a.test/policy", R"({"first_n": 2})", 409,
               "service svc.a.test. is defined in*"},
           Bad{"/api/v1/services/nope.a.test/policy", R"({"first_n": 2})", 404,
               "no service nope.a.test."},
       }) {
    INFO(b.path << " " << b.body);
    auto res = h.call(verb::put, b.path, kReadWriteSecret, b.body);
    CHECK(res.result_int() == b.status);
    const std::string e = test::errorOf(res);
    INFO(e);
    CHECK(globMatch(b.error, e));
  }
  CHECK(h.call(verb::delete_, "/api/v1/services/svc.a.test", kReadWriteSecret).result_int() == 409);
  // Keys: none, read-only, limited to other zones.
  CHECK(h.call(verb::put, path, nullptr, kNewService).result_int() == 401);
  auto ro = h.call(verb::put, path, kReadOnlySecret, kNewService);
  CHECK(ro.result_int() == 403);
  CHECK(test::errorOf(ro) == "API key 'viewer' is read-only");
  auto elsewhere = h.call(verb::put, path, "limited-secret", kNewService);
  CHECK(elsewhere.result_int() == 403);
  CHECK(test::errorOf(elsewhere) ==
        "API key 'elsewhere' may not touch service new.a.test. (outside its zones)");
  CHECK(h.call(verb::get, "/api/v1/services/svc.a.test", "limited-secret").result_int() == 403);
  auto none = h.call(verb::get, "/api/v1/services", "limited-secret");
  CHECK(json::parse(none.body()).as_array().empty());

  // Nothing changed: one service, no store written.
  CHECK(h.get("/api/v1/services").as_array().size() == 1);
  CHECK_FALSE(fs::exists(h.state / "services.toml"));
  CHECK(h.get("/api/v1/explain?name=new.a.test&client=192.0.2.7").at("steered") == false);

  // A policy PUT takes policy keys only.
  REQUIRE(h.call(verb::put, path, "a-secret", kNewService).result_int() == 201);
  auto not_policy = h.call(verb::put, path + "/policy", kReadWriteSecret, R"({"ttl": 5})");
  CHECK(not_policy.result_int() == 422);
  CHECK(test::errorOf(not_policy) ==
        "request: service.ttl is not a policy key (policy, first_n, when_all_down, "
        "weighted_prefix_v4, weighted_prefix_v6, geo); PUT the whole service to change it");
  auto bad_n = h.call(verb::put, path + "/policy", kReadWriteSecret, R"({"first_n": 0})");
  CHECK(bad_n.result_int() == 422);
  CHECK_THAT(test::errorOf(bad_n), Catch::StartsWith("request: service.first_n"));
  CHECK(h.get("/api/v1/services/new.a.test").at("definition").as_object().count("first_n") == 0);
}

TEST_CASE("api: without control.state_dir service writes are 503", "[api_meridian]") {
  ApiHarness h;
  auto res = h.call(verb::put, "/api/v1/services/new.a.test", kReadWriteSecret, kNewService);
  CHECK(res.result_int() == 503);
  CHECK(test::errorOf(res) == "services are kept in control.state_dir, which is not set");
  CHECK(h.call(verb::delete_, "/api/v1/services/new.a.test", kReadWriteSecret).result_int() == 503);
  CHECK(h.get("/api/v1/services").as_array().size() == 1);
}

TEST_CASE("api: API services are kept across a restart; a broken store keeps the config's",
          "[api_meridian]") {
  std::string store;
  {
    ApiHarness h("", "", "");
    REQUIRE(h.call(verb::put, "/api/v1/services/new.a.test", kReadWriteSecret, kNewService)
                .result_int() == 201);
    store = test::readFile(h.state / "services.toml");
  }
  {
    ApiHarness h("", "", store);
    CHECK(answerFor(h, "new.a.test", "10.1.2.0%2F24") == json::array{"us/198.51.100.8"});
    CHECK(h.get("/api/v1/services/new.a.test").at("source") == "api");
  }
  // A broken store: start-up goes on with the configuration's services, says why, and refuses
  // service writes (which would overwrite the file) until it loads.
  ApiHarness h("", "", "[[service]]\nname = \"new.a.test\"\nttl = \"x\"\n");
  CHECK(h.get("/api/v1/services").as_array().size() == 1);
  CHECK(answerFor(h, "svc.a.test", "192.0.2.7").size() == 2);
  auto res = h.call(verb::put, "/api/v1/services/new.a.test", kReadWriteSecret, kNewService);
  CHECK(res.result_int() == 503);
  CHECK_THAT(test::errorOf(res),
             Catch::StartsWith("the service store does not load (" +
                               (h.state / "services.toml").string() + ":3: service.ttl"));
}
