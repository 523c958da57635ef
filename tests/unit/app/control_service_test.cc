// app::ControlService on a running app::Runtime (real zone files in a temporary directory, the
// runtime's control loop on its own thread, every call posted to it): a hand-edited zone file
// reloaded becomes a ZoneDiff for the change listeners and getZone() returns the new content; a
// file that no longer loads keeps the old content and serving zone and tells no listener; override
// requests are validated; explain uses the live state; the socket's health table is the
// Monitor's own text.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "app/config.h"
#include "app/control_service.h"
#include "app/control_socket.h"
#include "app/runtime.h"
#include "control/audit.h"
#include "control_client.h"
#include "healthcheck/monitor.h"
#include "steering_fixture.h"
#include "zones/content.h"
#include "zones/diff.h"
#include "zones/edit.h"
#include "zones/loader.h"

using namespace meridian;
namespace fs = std::filesystem;
using Kind = app::ServiceError::Kind;

namespace {

std::string zoneText(int serial, const std::string& www = "192.0.2.10",
                     const std::string& extra = "") {
  return "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 300\n@ IN NS ns\nns IN A 192.0.2.1\nwww IN A " + www + "\n" + extra;
}

using test::writeFile;

bool connectable(const std::string& path) {
  const int fd = test::connectControl(path);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

const std::string kSteering = test::twoRegionSteering({.policy = R"(["up", "geo"])"});

// A runtime serving a.test. (and, with `steering`, the service svc.a.test.) on its own thread.
struct Harness {
  fs::path dir;
  fs::path zone;
  std::string socket;
  std::unique_ptr<app::Runtime> runtime;
  std::thread thread;
  int rc = -1;
  std::atomic<bool> ended{false};

  app::CommandLine cmd;

  // state: control.state_dir set (DIR/state), so edits keep their journal there and are audited.
  // zone_keys: a.test. is a [[zone]] of the configuration file with these extra keys (else
  // --zone).
  explicit Harness(const std::string& steering = "", bool state = false,
                   const std::string& zone_keys = "") {
    char tmpl[] = "/tmp/meridian-service-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    zone = dir / "a.test.zone";
    socket = (dir / "ctl.sock").string();
    // A steered service needs its fallback RRset in the zone.
    writeFile(zone, zoneText(1, "192.0.2.10", steering.empty() ? "" : "svc IN A 192.0.2.99\n"));
    std::string toml = steering;
    if (!zone_keys.empty()) {
      toml += "\n[[zone]]\nname = \"a.test.\"\nfile = \"" + zone.string() + "\"\n" + zone_keys;
    } else {
      cmd.zones = {"a.test.=" + zone.string()};
    }
    if (!toml.empty()) {
      writeFile(dir / "meridian.toml", toml);
      cmd.config_file = (dir / "meridian.toml").string();
    }
    cmd.listen = {"127.0.0.1:0"};
    cmd.threads = 1;
    cmd.sets = {"control.socket=" + socket};
    if (state) cmd.sets.push_back("control.state_dir=" + (dir / "state").string());
    start();
  }
  // A runtime on the same files and state (after stop(): a restart).
  void start() {
    auto config = app::loadConfig(cmd);
    REQUIRE(config.has_value());
    ended = false;
    runtime = std::make_unique<app::Runtime>(cmd, std::move(*config));
    thread = std::thread([this] {
      rc = runtime->run();
      ended = true;
    });
    // Start-up binds the control socket once its first load is published.
    while (!connectable(socket) && !ended) std::this_thread::yield();
    if (ended) thread.join();  // start-up failed (the log says why)
    REQUIRE_FALSE(ended);
  }
  void stop() {
    if (!runtime) return;
    runtime->requestStop();
    thread.join();
    runtime.reset();
  }
  ~Harness() {
    stop();
    fs::remove_all(dir);
  }

  // Runs f(service) on the control loop and returns its result.
  template <typename F>
  auto call(F f) {
    using R = decltype(f(runtime->control()));
    std::promise<R> p;
    runtime->post([&] { p.set_value(f(runtime->control())); });
    return p.get_future().get();
  }
  // patchZone() on the control loop; the result once served.
  app::ServiceResult<app::PatchResult> patch(const std::string& zone,
                                             const zones::ChangeRequest& request) {
    std::promise<app::ServiceResult<app::PatchResult>> p;
    runtime->post([&] {
      runtime->control().patchZone(zone, request, app::Actor{"ops", "127.0.0.1:5000"},
                                   [&](app::ServiceResult<app::PatchResult> r) { p.set_value(r); });
    });
    return p.get_future().get();
  }
  app::ReloadResult reload() {
    std::promise<app::ReloadResult> p;
    runtime->post(
        [&] { runtime->control().reload([&](const app::ReloadResult& r) { p.set_value(r); }); });
    return p.get_future().get();
  }
};

// What a listener saw (called on the control loop; read after the reload's reply, which follows).
struct Changes {
  std::vector<app::ZoneChange> seen;
  void subscribe(Harness& h) {
    h.call([this](app::ControlService& s) {
      return s.onZoneChange([this](const app::ZoneChange& c) { seen.push_back(c); });
    });
  }
};

zones::ZoneContent contentOf(const std::string& text) {
  auto c = zones::loadZoneContentText("a.test.", text);
  REQUIRE(c.has_value());
  return std::move(c->content);
}

}  // namespace

TEST_CASE("a hand-edited zone reloaded reaches the listeners as a diff", "[service]") {
  Harness h;
  Changes changes;
  changes.subscribe(h);
  const std::string edited = zoneText(2, "192.0.2.20", "new IN A 192.0.2.30\n");
  writeFile(h.zone, edited);
  const auto r = h.reload();
  CHECK(r.report.loaded == 1);
  CHECK(r.report.failed == 0);
  CHECK(formatReload(r) == "ok 1 zone(s) loaded, 0 unchanged, 0 failed\n");

  REQUIRE(changes.seen.size() == 1);
  const app::ZoneChange& c = changes.seen[0];
  CHECK(c.origin == "a.test.");
  CHECK(c.file == h.zone.string());
  REQUIRE(c.diff);
  CHECK(c.diff->old_serial == 1);
  CHECK(c.diff->new_serial == 2);
  // SOA and www changed (removed whole, added whole); `new` is added.
  CHECK(c.diff->removed.rrsetCount() == 2);
  CHECK(c.diff->added.rrsetCount() == 3);
  zones::ZoneContent before = contentOf(zoneText(1));
  REQUIRE(zones::apply(before, *c.diff).has_value());
  CHECK(before == contentOf(edited));

  // getZone: the reloaded content and its serving zone's figures; any case, dot optional.
  auto z = h.call([](app::ControlService& s) { return s.getZone("A.Test"); });
  REQUIRE(z.has_value());
  CHECK(*z->content == contentOf(edited));
  CHECK(z->info.serial == 2);
  CHECK(z->info.records == 5);
  CHECK(z->info.served);
  CHECK(z->info.error.empty());
  CHECK(z->info.loaded_at > 0);
  auto missing = h.call([](app::ControlService& s) { return s.getZone("b.test."); });
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().kind == Kind::kNotFound);

  // A file rewritten with the same records loads again but changes nothing: no listener call.
  writeFile(h.zone, edited + "; a comment\n");
  CHECK(h.reload().report.loaded == 1);
  CHECK(changes.seen.size() == 1);
}

TEST_CASE("a zone file that no longer loads keeps its content and tells no listener", "[service]") {
  Harness h;
  Changes changes;
  changes.subscribe(h);
  writeFile(h.zone, zoneText(2, "not-an-address"));
  const auto r = h.reload();
  CHECK(r.report.failed == 1);
  REQUIRE(r.errors.count("a.test.") == 1);
  CHECK(r.errors.at("a.test.").find("a.test.zone:") != std::string::npos);
  CHECK(formatReload(r).rfind("error 0 zone(s) loaded, 0 unchanged, 1 failed\n  a.test.: ", 0) ==
        0);
  CHECK(changes.seen.empty());

  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(*z->content == contentOf(zoneText(1)));
  CHECK(z->info.serial == 1);
  CHECK(z->info.served);
  CHECK(z->info.error.find("a.test.zone:") != std::string::npos);
  const auto stats = h.call([](app::ControlService& s) { return s.stats(); });
  REQUIRE(stats.zones.size() == 1);
  CHECK(stats.zones[0].serial == 1);  // still served

  // Fixed: the diff is taken from the version that kept serving, not from the broken file.
  writeFile(h.zone, zoneText(3));
  CHECK(h.reload().report.failed == 0);
  REQUIRE(changes.seen.size() == 1);
  CHECK(changes.seen[0].diff->old_serial == 1);
  CHECK(changes.seen[0].diff->new_serial == 3);
  CHECK(changes.seen[0].diff->removed.rrsetCount() == 1);  // the SOA alone
  CHECK(changes.seen[0].diff->added.rrsetCount() == 1);
  const auto zones = h.call([](app::ControlService& s) { return s.listZones(); });
  REQUIRE(zones.size() == 1);
  CHECK(zones[0].error.empty());
  CHECK(zones[0].serial == 3);
}

TEST_CASE("a removed listener is not called", "[service]") {
  Harness h;
  int calls = 0;
  const size_t id = h.call([&](app::ControlService& s) {
    return s.onZoneChange([&](const app::ZoneChange&) { ++calls; });
  });
  h.call([&](app::ControlService& s) {
    s.removeZoneListener(id);
    return 0;
  });
  writeFile(h.zone, zoneText(2));
  CHECK(h.reload().report.loaded == 1);
  CHECK(calls == 0);
}

TEST_CASE("override requests are validated before anything changes", "[service]") {
  SECTION("without steered endpoints") {
    Harness h;
    auto bad_mode =
        h.call([](app::ControlService& s) { return s.setOverride("192.0.2.1", "sideways"); });
    REQUIRE_FALSE(bad_mode.has_value());
    CHECK(bad_mode.error().kind == Kind::kInvalid);
    CHECK(bad_mode.error().message == "override mode must be force-up, force-down, drain or none");
    auto none = h.call([](app::ControlService& s) { return s.setOverride("192.0.2.1", "drain"); });
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error().kind == Kind::kUnavailable);
    CHECK(h.call([](app::ControlService& s) { return s.health(); }).empty());
  }
  SECTION("with steered endpoints") {
    Harness h(kSteering);
    auto expect = [&](const std::string& what, const std::string& mode, Kind kind,
                      const std::string& message) {
      auto r = h.call([&](app::ControlService& s) { return s.setOverride(what, mode); });
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().kind == kind);
      CHECK(r.error().message == message);
    };
    expect("198.51.100.1", "up", Kind::kInvalid,
           "override mode must be force-up, force-down, drain or none");
    expect("pool:svc.a.test", "drain", Kind::kInvalid,
           "a pool is named pool:SERVICE/REGION, e.g. pool:www.example.com/eu");
    expect("region:", "drain", Kind::kInvalid,
           "'region:' names nothing; give a region or service name");
    expect("region:nowhere", "drain", Kind::kNotFound,
           "nothing matches 'region:nowhere' (see meridianctl health)");
    expect("203.0.113.9", "drain", Kind::kNotFound,
           "nothing matches '203.0.113.9' (see meridianctl health)");
    // None of those changed an override.
    for (const auto& e : h.call([](app::ControlService& s) { return s.health(); }))
      CHECK(e.override == healthcheck::Override::kNone);

    auto ok =
        h.call([](app::ControlService& s) { return s.setOverride("region:eu", "force-down"); });
    REQUIRE(ok.has_value());
    CHECK(ok->mode == healthcheck::Override::kForceDown);
    CHECK(ok->changes.size() == 2);
    const auto health = h.call([](app::ControlService& s) { return s.health(); });
    REQUIRE(health.size() == 3);
    for (const auto& e : health) {
      const bool eu = e.label.rfind("eu/", 0) == 0;
      CHECK(e.override == (eu ? healthcheck::Override::kForceDown : healthcheck::Override::kNone));
      CHECK(e.usable == !eu);
      CHECK_FALSE(e.checked);
    }
    // explain sees the live overrides: the eu pool is down, so the answer is the us endpoint.
    auto e = h.call([](app::ControlService& s) {
      return s.explain({"SVC.a.test", "A", "192.0.2.55"});
    });
    REQUIRE(e.has_value());
    CHECK(e->steered);
    CHECK(e->service == "svc.a.test.");
    CHECK(e->policy == std::vector<std::string>{"up", "geo"});
    CHECK(e->answer == std::vector<std::string>{"us/198.51.100.3"});
    CHECK_FALSE(e->from_ecs);
    auto plain = h.call([](app::ControlService& s) {
      return s.explain({"ns.a.test.", "A", "192.0.2.55"});
    });
    REQUIRE(plain.has_value());
    CHECK_FALSE(plain->steered);
    auto bad = h.call([](app::ControlService& s) {
      return s.explain({"svc.a.test", "A", "nope/24"});
    });
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == Kind::kInvalid);
    auto bad_type = h.call([](app::ControlService& s) {
      return s.explain({"svc.a.test", "MX", "192.0.2.1"});
    });
    REQUIRE_FALSE(bad_type.has_value());
    CHECK(bad_type.error().kind == Kind::kInvalid);
  }
}

TEST_CASE("the socket's health table is the Monitor's own description", "[service]") {
  boost::asio::io_context io;
  healthcheck::CheckSpec tcp;
  tcp.kind = healthcheck::CheckSpec::Kind::kTcp;
  tcp.port = 80;
  healthcheck::CheckSpec http = tcp;
  http.kind = healthcheck::CheckSpec::Kind::kHttp;
  http.port = 8080;
  http.path = "/health";
  std::vector<healthcheck::Target> targets = {
      {0, "192.0.2.10 (web)", boost::asio::ip::make_address("192.0.2.10"), http, true},
      {1, "eu/192.0.2.11", boost::asio::ip::make_address("192.0.2.11"), {}, false},
      {2, "eu/cdn.example.net.", {}, {}, false},
      {3, "2001:db8::1 (tcp)", boost::asio::ip::make_address("2001:db8::1"), tcp, true}};
  healthcheck::Monitor monitor(io, targets);
  healthcheck::TargetState down;
  down.up = false;
  down.opposing = 1;
  down.consecutive = 3;
  down.rtt_us = 1234;
  down.probes = 9;
  down.failures = 4;
  down.last_error = "connection refused";
  REQUIRE(monitor.adoptState(3, down).has_value());
  REQUIRE(monitor.setOverride(1, healthcheck::Override::kDrain).has_value());
  const auto health = app::endpointHealth(monitor);
  REQUIRE(health.size() == 4);
  CHECK(health[3].address == "2001:db8::1");
  CHECK(health[3].port == 80);
  CHECK(health[3].last_error == "connection refused");
  CHECK(app::formatHealth(health) == monitor.describe());
}

namespace {

// A REPLACE of OWNER (relative to a.test.) A with the addresses given.
zones::RRsetChange replaceA(const std::string& owner, std::vector<std::array<uint8_t, 4>> addrs,
                            uint32_t ttl = 300) {
  zones::RRsetChange c;
  REQUIRE(dns::fromText(owner + ".a.test.", c.rrset.owner));
  c.rrset.type = 1;
  c.rrset.ttl = ttl;
  for (const auto& a : addrs) c.rrset.rdata.emplace_back(a.begin(), a.end());
  return c;
}

zones::ChangeRequest request(std::vector<zones::RRsetChange> changes) {
  return zones::ChangeRequest{std::move(changes)};
}

}  // namespace

TEST_CASE("patchZone commits, publishes, journals and audits a change", "[service][edit]") {
  Harness h("", true);
  Changes changes;
  changes.subscribe(h);
  auto r = h.patch("A.TEST", request({replaceA("www", {{192, 0, 2, 77}})}));
  REQUIRE(r.has_value());
  CHECK(r->changed);
  CHECK(r->old_serial == 1);
  CHECK(r->new_serial == 2);
  // Served (the published zone's serial), the content changed, the file written back.
  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(z->info.serial == 2);
  auto www = z->content->find(replaceA("www", {}).rrset.owner.data, 1);
  REQUIRE(www.has_value());
  CHECK(std::vector<uint8_t>((*www->rdata().begin()).begin(), (*www->rdata().begin()).end()) ==
        std::vector<uint8_t>{192, 0, 2, 77});
  auto file = zones::loadZoneContentFile("a.test.", h.zone.string());
  REQUIRE(file.has_value());
  CHECK(file->content == *z->content);
  // The listeners are told, as by a reload, with who made it.
  REQUIRE(changes.seen.size() == 1);
  CHECK(changes.seen[0].operation == "patch");
  CHECK(changes.seen[0].who.key == "ops");
  // The journal is in the state directory and has the diff.
  CHECK(fs::exists(h.dir / "state" / "journal" / "a.test.journal"));
  // The audit log has the entry with the diff's lines.
  auto entries = control::readEntries((h.dir / "state" / "audit.log").string());
  REQUIRE(entries.has_value());
  REQUIRE(entries->size() == 1);
  const control::AuditEntry& e = entries->front();
  CHECK(e.operation == "patch");
  CHECK(e.key == "ops");
  CHECK(e.source == "127.0.0.1:5000");
  CHECK(e.zone == "a.test.");
  CHECK(e.old_serial == 1);
  CHECK(e.new_serial == 2);
  CHECK(std::any_of(e.added.begin(), e.added.end(), [](const std::string& l) {
    return l.find("192.0.2.77") != std::string::npos;
  }));
  CHECK(std::any_of(e.removed.begin(), e.removed.end(), [](const std::string& l) {
    return l.find("192.0.2.10") != std::string::npos;
  }));
  // The written-back file is what is served: a reload finds it unchanged.
  const auto reload = h.reload();
  CHECK(reload.report.loaded == 0);
  CHECK(reload.report.unchanged == 1);
  // A request that changes nothing writes nothing.
  auto same = h.patch("a.test", request({replaceA("www", {{192, 0, 2, 77}})}));
  REQUIRE(same.has_value());
  CHECK_FALSE(same->changed);
  CHECK(changes.seen.size() == 1);
}

TEST_CASE("patchZone refuses what would break the zone, an unknown zone and a racing hand edit",
          "[service][edit]") {
  Harness h("", true);
  // A CNAME beside the A at www: 422-kind, nothing changed.
  zones::RRsetChange cname;
  REQUIRE(dns::fromText("www.a.test.", cname.rrset.owner));
  cname.rrset.type = 5;
  cname.rrset.ttl = 300;
  dns::NameBuf target;
  REQUIRE(dns::fromText("ns.a.test.", target));
  cname.rrset.rdata.emplace_back(target.data, target.data + target.length);
  auto bad = h.patch("a.test.", request({cname}));
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().kind == Kind::kInvalid);
  CHECK_FALSE(bad.error().message.empty());
  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  CHECK(z->info.serial == 1);

  auto unknown = h.patch("b.test.", request({replaceA("www", {{192, 0, 2, 1}})}));
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().kind == Kind::kNotFound);

  // A hand edit after a change and before the next one: refused, the edit stays in the file.
  REQUIRE(h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 78}})})).has_value());
  const std::string edited = zoneText(10, "192.0.2.99");
  writeFile(h.zone, edited);
  auto raced = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 79}})}));
  REQUIRE_FALSE(raced.has_value());
  CHECK(raced.error().kind == Kind::kConflict);
  CHECK(contentOf(test::readFile(h.zone)) == contentOf(edited));
  // Reloaded, the edit is served and the next change goes through (on top of it).
  CHECK(h.reload().report.loaded == 1);
  auto after = h.patch("a.test.", request({replaceA("new", {{192, 0, 2, 80}})}));
  REQUIRE(after.has_value());
  CHECK(after->old_serial == 10);
  CHECK(after->new_serial == 11);
}

TEST_CASE("a hand edit between the load and the first change is a conflict", "[service][edit]") {
  Harness h;  // no state directory: the journal goes beside the zone file
  writeFile(h.zone, zoneText(5, "192.0.2.55"));
  auto raced = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 1}})}));
  REQUIRE_FALSE(raced.has_value());
  CHECK(raced.error().kind == Kind::kConflict);
  CHECK(contentOf(test::readFile(h.zone)) == contentOf(zoneText(5, "192.0.2.55")));
  CHECK(h.reload().report.loaded == 1);
  REQUIRE(h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 1}})})).has_value());
  CHECK(fs::exists(h.zone.string() + ".journal"));
}

TEST_CASE("createZone serves a zone from the state directory; deleteZone removes it",
          "[service][edit]") {
  Harness h("", true);
  auto content = zones::loadZoneContentText(
      "b.test.",
      "$ORIGIN b.test.\n@ 300 IN SOA ns hm 7 3600 600 86400 300\n@ 300 IN NS ns\n"
      "ns 300 IN A 192.0.2.2\n");
  REQUIRE(content.has_value());
  auto create = [&] {
    std::promise<app::ServiceResult<app::ZoneDetail>> p;
    h.runtime->post([&] {
      h.runtime->control().createZone(
          content->content, {}, [&](app::ServiceResult<app::ZoneDetail> r) { p.set_value(r); });
    });
    return p.get_future().get();
  };
  auto c = create();
  REQUIRE(c.has_value());
  CHECK(c->info.serial == 7);
  CHECK(fs::exists(h.dir / "state" / "zones" / "b.test.zone"));
  // Created again: a conflict; a configured zone cannot be deleted.
  auto a = create();
  REQUIRE_FALSE(a.has_value());
  CHECK(a.error().kind == Kind::kConflict);
  // A reload keeps it (its file is in the state directory, not the configuration).
  CHECK(h.reload().report.failed == 0);
  CHECK(h.call([](app::ControlService& s) { return s.getZone("b.test."); }).has_value());
  auto remove = [&](const std::string& zone) {
    std::promise<app::ServiceResult<void>> p;
    h.runtime->post([&] {
      h.runtime->control().deleteZone(zone, {},
                                      [&](app::ServiceResult<void> r) { p.set_value(r); });
    });
    return p.get_future().get();
  };
  auto configured = remove("a.test.");
  REQUIRE_FALSE(configured.has_value());
  CHECK(configured.error().kind == Kind::kInvalid);
  REQUIRE(remove("b.test.").has_value());
  CHECK_FALSE(h.call([](app::ControlService& s) { return s.getZone("b.test."); }).has_value());
  CHECK_FALSE(fs::exists(h.dir / "state" / "zones" / "b.test.zone"));
}

TEST_CASE("patchZone moves the serial by the zone's serial_policy, or the policy set for it",
          "[service][edit][serial]") {
  Harness h("", true, "serial_policy = \"date\"\n");
  constexpr int64_t kNoon = 1796126400;  // 2026-12-01 12:00 UTC
  static_assert(zones::utcDate(kNoon) == 20261201u);
  std::atomic<int64_t> now{kNoon};
  h.call([&](app::ControlService& s) {
    s.setClock([&] { return now.load(); });
    return 0;
  });
  auto policy = [&] {
    auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
    REQUIRE(z.has_value());
    return std::pair{z->info.serial_policy, z->info.serial_policy_set};
  };
  CHECK(policy() == std::pair{zones::SerialPolicy::kDate, false});
  // date: YYYYMMDD00 of the UTC day, then +1 within the day (RFC 1912 §2.2).
  auto first = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 70}})}));
  REQUIRE(first.has_value());
  CHECK(first->new_serial == 2026120100u);
  auto second = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 71}})}));
  REQUIRE(second.has_value());
  CHECK(second->new_serial == 2026120101u);
  // The next day: its 00.
  now = kNoon + 86400;
  auto third = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 72}})}));
  REQUIRE(third.has_value());
  CHECK(third->new_serial == 2026120200u);

  // A policy set for the zone (the API's soa_edit_api) wins: unixtime, the clock when it is
  // newer (RFC 1982), else +1.
  h.call([](app::ControlService& s) {
    s.setSerialPolicy("a.test.", zones::SerialPolicy::kUnixtime);
    return 0;
  });
  CHECK(policy() == std::pair{zones::SerialPolicy::kUnixtime, true});
  now = 2100000000;
  auto unix = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 73}})}));
  REQUIRE(unix.has_value());
  CHECK(unix->new_serial == 2100000000u);
  auto same_second = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 74}})}));
  REQUIRE(same_second.has_value());
  CHECK(same_second->new_serial == 2100000001u);
  // Back to the configuration's date: the serial is ahead of any date, so +1.
  h.call([](app::ControlService& s) {
    s.setSerialPolicy("a.test.", std::nullopt);
    return 0;
  });
  CHECK(policy() == std::pair{zones::SerialPolicy::kDate, false});
  auto ahead = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 75}})}));
  REQUIRE(ahead.has_value());
  CHECK(ahead->new_serial == 2100000002u);
}

TEST_CASE(
    "a zone with a journal is recovered at start: a file behind it, temporaries, a broken file",
    "[service][edit][recovery]") {
  Harness h("", true);
  const std::string original = test::readFile(h.zone);
  // Killed while writing the first journal (or a created zone's file): the temporary is removed
  // at the next start, though no journal exists yet.
  h.stop();
  const fs::path first = h.dir / "state" / "journal" / ".a.test.journal.tmp.Zz99Yy";
  fs::create_directories(first.parent_path());
  writeFile(first, "MRDNJ");
  h.start();
  CHECK_FALSE(fs::exists(first));
  REQUIRE(h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 77}})})).has_value());
  h.stop();
  // Killed after the journal's fsync, before the rename: the file is still the old one, and the
  // temporary file of the write-back is left beside it.
  writeFile(h.zone, original);
  const fs::path temporary = h.dir / ".a.test.zone.tmp.Ab12Cd";
  writeFile(temporary, "half a zone");
  h.start();
  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(z->info.serial == 2);  // the journal's version, not the file's serial 1
  CHECK(contentOf(test::readFile(h.zone)) == *z->content);  // the file rewritten from it
  CHECK_FALSE(fs::exists(temporary));
  // The change path goes on from there: no 409 for a file "changed since it was loaded".
  auto next = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 78}})}));
  REQUIRE(next.has_value());
  CHECK(next->old_serial == 2);
  CHECK(next->new_serial == 3);
  // A reload finds the file as written: nothing to do.
  CHECK(h.reload().report.unchanged == 1);

  // A file broken while stopped: the last good version is served from the journal; changes are
  // refused until the file is fixed and reloaded.
  h.stop();
  writeFile(h.zone, "this is not a zone file\n");
  h.start();
  z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(z->info.serial == 3);
  auto refused = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 79}})}));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == Kind::kConflict);
  CHECK(test::readFile(h.zone) == "this is not a zone file\n");
  writeFile(h.zone, zoneText(10, "192.0.2.90"));
  CHECK(h.reload().report.loaded == 1);
  auto fixed = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 91}})}));
  REQUIRE(fixed.has_value());
  CHECK(fixed->old_serial == 10);
  CHECK(fixed->new_serial == 11);
}

namespace {

// patchZone() posted to the control loop without waiting; the future gets the result once served.
std::future<app::ServiceResult<app::PatchResult>> patchAsync(Harness& h, const std::string& zone,
                                                             zones::ChangeRequest req) {
  auto p = std::make_shared<std::promise<app::ServiceResult<app::PatchResult>>>();
  auto f = p->get_future();
  h.runtime->post([&h, zone, req = std::move(req), p] {
    h.runtime->control().patchZone(
        zone, req, app::Actor{"ops", "127.0.0.1:5000"},
        [p](app::ServiceResult<app::PatchResult> r) { p->set_value(r); });
  });
  return f;
}

template <typename T>
bool ready(const std::future<T>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("a zone change is applied on the pool while the control loop keeps answering",
          "[service][edit][pool]") {
  Harness h("", true);
  // The first change's job blocks in the hook until released; later ones note whether the change
  // before them was already written back when they started.
  std::promise<void> entered;
  std::promise<void> released;
  std::shared_future<void> release_f = released.get_future().share();
  std::atomic<int> commits{0};
  std::atomic<std::thread::id> job_thread;
  std::atomic<bool> second_saw_first{false};
  const fs::path zone_file = h.zone;
  h.call([&](app::ControlService&) {
    h.runtime->setCommitHook([&, zone_file](const std::string&) {
      const int n = commits.fetch_add(1);
      if (n == 0) {
        job_thread.store(std::this_thread::get_id());
        entered.set_value();
        release_f.wait();
      } else if (n == 1) {
        second_saw_first = test::readFile(zone_file).find("192.0.2.71") != std::string::npos;
      }
    });
    return 0;
  });
  const auto loop_thread = h.call([](app::ControlService&) { return std::this_thread::get_id(); });

  auto first = patchAsync(h, "a.test.", request({replaceA("www", {{192, 0, 2, 71}})}));
  entered.get_future().wait();
  // The change is held on a pool thread: the control loop answers a read, the control socket's
  // status and queues a second change and a reload behind it, none of which can finish yet.
  CHECK(job_thread.load() != loop_thread);
  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(z->info.serial == 1);
  const int fd = test::connectControl(h.socket);
  REQUIRE(fd >= 0);
  const std::string line = "status\n";
  REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  std::string status;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) status.append(buf, static_cast<size_t>(n));
  ::close(fd);
  CHECK(status.find("zone a.test. serial 1 ") != std::string::npos);
  auto second = patchAsync(h, "a.test.", request({replaceA("two", {{192, 0, 2, 72}})}));
  std::promise<app::ReloadResult> reload_p;
  auto reload_f = reload_p.get_future();
  h.runtime->post([&] {
    h.runtime->control().reload([&](const app::ReloadResult& r) { reload_p.set_value(r); });
  });
  CHECK(h.call([](app::ControlService& s) { return s.getZone("a.test.")->info.serial; }) == 1);
  CHECK_FALSE(ready(first));
  CHECK_FALSE(ready(second));
  CHECK_FALSE(ready(reload_f));
  CHECK(commits.load() == 1);  // the second change waits for the first (the zone's lane)

  released.set_value();
  auto r1 = first.get();
  auto r2 = second.get();
  const auto reload = reload_f.get();
  REQUIRE(r1.has_value());
  REQUIRE(r2.has_value());
  CHECK(r1->old_serial == 1);
  CHECK(r1->new_serial == 2);
  CHECK(r2->old_serial == 2);
  CHECK(r2->new_serial == 3);
  CHECK(second_saw_first.load());
  // The reload looked at the file after the changes before it: nothing read by hand.
  CHECK(reload.report.failed == 0);
  CHECK(reload.report.loaded == 0);
  auto after = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(after.has_value());
  CHECK(after->info.serial == 3);
  auto file = zones::loadZoneContentFile("a.test.", h.zone.string());
  REQUIRE(file.has_value());
  CHECK(file->content == *after->content);
}

TEST_CASE("a storm of changes to one zone from several clients keeps every one, in order",
          "[service][edit][pool]") {
  Harness h("", true);
  constexpr int kClients = 4;
  constexpr int kEach = 8;
  std::mutex mutex;
  std::vector<app::PatchResult> acks;  // in the order the answers came
  std::atomic<int> refused{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const uint8_t last = static_cast<uint8_t>(c * kEach + i + 1);
        const std::string owner = std::string(1, 'c').append(std::to_string(c)).append(1, '-').append(std::to_string(i));
        std::promise<void> answered;
        h.runtime->post([&, owner, last] {
          h.runtime->control().patchZone("a.test.", request({replaceA(owner, {{192, 0, 2, last}})}),
                                         app::Actor{}, [&](app::ServiceResult<app::PatchResult> r) {
                                           {
                                             std::lock_guard<std::mutex> lock(mutex);
                                             if (r) {
                                               acks.push_back(*r);
                                             } else {
                                               ++refused;
                                             }
                                           }
                                           answered.set_value();
                                         });
        });
        answered.get_future().wait();  // a client sends its next change after the answer
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(refused.load() == 0);
  REQUIRE(acks.size() == kClients * kEach);
  for (size_t i = 0; i < acks.size(); ++i) {
    CHECK(acks[i].changed);
    // Strictly serialised: each change starts from the serial the one acknowledged before it
    // left, and the answers come in that order.
    CHECK(acks[i].old_serial == (i == 0 ? 1u : acks[i - 1].new_serial));
    CHECK(acks[i].new_serial == acks[i].old_serial + 1);
  }
  auto z = h.call([](app::ControlService& s) { return s.getZone("a.test."); });
  REQUIRE(z.has_value());
  CHECK(z->info.serial == 1 + kClients * kEach);
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < kEach; ++i) {
      const std::string owner = std::string(1, 'c').append(std::to_string(c)).append(1, '-').append(std::to_string(i));
      CHECK(z->content->find(replaceA(owner, {}).rrset.owner.data, 1).has_value());
    }
  }
  auto file = zones::loadZoneContentFile("a.test.", h.zone.string());
  REQUIRE(file.has_value());
  CHECK(file->content == *z->content);
  // The audit log has them all, serials strictly increasing.
  auto entries = control::readEntries((h.dir / "state" / "audit.log").string());
  REQUIRE(entries.has_value());
  REQUIRE(entries->size() == acks.size());
  for (size_t i = 1; i < entries->size(); ++i)
    CHECK((*entries)[i].new_serial == (*entries)[i - 1].new_serial + 1);
}

TEST_CASE("a hand edit that changes no record, reloaded, does not block the next change",
          "[service][edit][pool]") {
  Harness h("", true);
  REQUIRE(h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 81}})})).has_value());
  // The written-back file with a comment added: same records, another hash.
  writeFile(h.zone, test::readFile(h.zone) + "; checked by hand\n");
  const auto reload = h.reload();
  CHECK(reload.report.loaded == 1);
  CHECK(reload.report.failed == 0);
  // The zone's EditableZone took the file's new hash with the reload: no 409.
  auto r = h.patch("a.test.", request({replaceA("www", {{192, 0, 2, 82}})}));
  REQUIRE(r.has_value());
  CHECK(r->new_serial == 3);
}
