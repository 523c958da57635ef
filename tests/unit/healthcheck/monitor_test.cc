// The Monitor on a ManualClock: time moves only when a test advances it, so the schedule (start
// jitter, interval from the start of the previous probe), timeouts, rise/fall counting, RTT
// smoothing and buckets, and state adopted by a rebuilt Monitor are checked at exact instants,
// with no sleeping and no real-time deadline. Most cases feed probe results through a scripted
// FakeTransport; the rest run the real probers (TCP, HTTP, HTTPS, DNS) against backends on
// 127.0.0.1 (port 0) served by the test's own io_context, and wait for events (a probe result, a
// query received), never for time.
#include <catch2/catch.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "healthcheck/clock.h"
#include "healthcheck/metrics.h"
#include "healthcheck/monitor.h"

using namespace meridian;
using namespace meridian::healthcheck;
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
const asio::ip::address kLoopback = asio::ip::make_address("127.0.0.1");

// Runs the loop until `done()` holds, one completion at a time. Only real sockets are waited for
// here (the clock is manual), and they answer on loopback at once: the one-minute bound only keeps
// a broken build from hanging the suite, it is not a measure of anything.
template <typename Pred>
bool runUntil(asio::io_context& io, Pred done) {
  while (!done()) {
    io.restart();
    if (io.run_one_for(60s) == 0) return done();
  }
  return true;
}

CheckSpec spec(CheckSpec::Kind kind, uint16_t port) {
  CheckSpec s;
  s.name = kindName(kind);
  s.kind = kind;
  s.port = port;
  s.interval_ms = 1000;
  s.timeout_ms = 300;
  s.rise = 2;
  s.fall = 3;
  return s;
}

// What one scripted attempt does: answer after `takes` of clock time (ok, or failing with
// `error`), or never (`hang`) so that only the timeout or stop() ends it.
struct Outcome {
  bool ok = true;
  milliseconds takes{0};
  std::string error = "scripted failure";
  bool hang = false;
};
const Outcome kOk{};
const Outcome kFail{false};
Outcome okAfter(milliseconds d) {
  return Outcome{true, d};
}
const Outcome kHang{false, 0ms, "", true};

// Stands in for the network. Each target (told apart by its check's port) plays its script in
// order, then repeats the last outcome; RTTs are the clock time an attempt took.
class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(std::shared_ptr<ManualClock> clock) : clock_(std::move(clock)) {}

  void script(uint16_t port, std::vector<Outcome> outcomes) {
    scripts_[port] = std::move(outcomes);
    next_[port] = 0;
  }
  // When each attempt against `port` began.
  [[nodiscard]] std::vector<Clock::TimePoint> starts(uint16_t port) const {
    const auto it = starts_.find(port);
    return it == starts_.end() ? std::vector<Clock::TimePoint>{} : it->second;
  }
  size_t in_flight = 0, abandoned = 0;

  asio::awaitable<ProbeResult> attempt(const CheckSpec& spec,
                                       const asio::ip::address& /*address*/) override {
    const Clock::TimePoint begun = clock_->now();
    starts_[spec.port].push_back(begun);
    const std::vector<Outcome>& script = scripts_[spec.port];
    const Outcome o =
        script.empty() ? kOk : script[std::min(next_[spec.port]++, script.size() - 1)];
    ++in_flight;
    if (o.hang || o.takes.count() > 0) {
      auto timer = clock_->makeTimer();
      const bool reached =
          co_await waitUntil(*timer, o.hang ? Clock::TimePoint::max() : begun + o.takes);
      if (!reached) {
        --in_flight;
        ++abandoned;
        co_return ProbeResult{false, 0, "abandoned"};
      }
    }
    --in_flight;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(clock_->now() - begun);
    if (!o.ok) co_return ProbeResult{false, 0, o.error};
    co_return ProbeResult{true, static_cast<uint32_t>(std::max<int64_t>(us.count(), 1)), {}};
  }

 private:
  std::shared_ptr<ManualClock> clock_;
  std::map<uint16_t, std::vector<Outcome>> scripts_;
  std::map<uint16_t, size_t> next_;
  std::map<uint16_t, std::vector<Clock::TimePoint>> starts_;
};

// An io_context, a ManualClock on it, and a FakeTransport; options() hands them to a Monitor
// (with `real` the Monitor uses the real probers but still the manual clock).
struct Harness {
  asio::io_context io;
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>(io);
  std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>(clock);

  [[nodiscard]] MonitorOptions options(bool initial_up, bool real = false) const {
    MonitorOptions o;
    o.initial_up = initial_up;
    o.max_start_jitter_ms = 0;
    o.clock = clock;
    if (!real) o.transport = fake;
    return o;
  }
  [[nodiscard]] Clock::TimePoint at(milliseconds since_start) const { return t0 + since_start; }
  void advance(milliseconds d) { clock->advance(d); }
  Clock::TimePoint t0 = clock->now();
};

// What the listener saw, one entry per probe or override.
struct Seen {
  uint32_t id;
  bool probe_ok, up, verdict_changed, from_override;
  uint32_t consecutive, opposing;
  std::string error;
  Clock::TimePoint when;
};

struct Recorder {
  std::vector<Seen> events;
  void attach(Monitor& m, const Clock& clock) {
    m.setListener([this, &clock](const Event& e) {
      events.push_back({e.id, e.probe_ok, e.state->up, e.verdict_changed, e.from_override,
                        e.state->consecutive, e.state->opposing, e.state->last_error, clock.now()});
    });
  }
  [[nodiscard]] size_t probes(uint32_t id, bool ok, size_t from = 0) const {
    size_t n = 0;
    for (size_t i = from; i < events.size(); ++i) {
      n += events[i].id == id && !events[i].from_override && events[i].probe_ok == ok;
    }
    return n;
  }
  [[nodiscard]] size_t probeCount() const {
    size_t n = 0;
    for (const Seen& e : events) n += !e.from_override;
    return n;
  }
};

TargetState stateOf(const Monitor& m, uint32_t id) {
  return m.states().at(id);
}

// Real probers on the manual clock: moves time to the next probe of `targets` targets and runs the
// loop until all their results are in.
bool probeRound(Harness& h, const Recorder& rec, size_t targets, milliseconds interval = 1000ms) {
  const size_t want = rec.probeCount() + targets;
  h.advance(interval);
  return runUntil(h.io, [&] { return rec.probeCount() >= want; });
}

// Accepts TCP connections, optionally behind TLS, and answers each with one HTTP response when
// `http` is set (or just closes it). close() and reopen() take the listening port away and back.
class Backend {
 public:
  Backend(asio::io_context& io, bool http, asio::ssl::context* tls = nullptr,
          asio::ip::address address = kLoopback)
      : io_(io), http_(http), tls_(tls), address_(address) {
    open(0);
  }

  [[nodiscard]] uint16_t port() const { return port_; }
  void close() { acceptor_->close(); }
  void reopen() { open(port_); }

  int status = 200;
  std::string body = "service ok";
  std::string last_host;  // Host header of the latest request
  size_t requests = 0;

 private:
  void open(uint16_t port) {
    acceptor_ = std::make_shared<tcp::acceptor>(io_);
    acceptor_->open(address_.is_v6() ? tcp::v6() : tcp::v4());
    acceptor_->set_option(tcp::acceptor::reuse_address(true));
    acceptor_->bind(tcp::endpoint(address_, port));
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(io_, acceptLoop(acceptor_), asio::detached);
  }

  asio::awaitable<void> acceptLoop(std::shared_ptr<tcp::acceptor> acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor->async_accept(kTuple);
      if (ec) co_return;     // closed
      if (!http_) continue;  // the socket closes here: a TCP check only needs the handshake
      if (tls_) {
        asio::co_spawn(io_, serveTls(std::move(socket)), asio::detached);
      } else {
        asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
      }
    }
  }

  asio::awaitable<void> serveTls(tcp::socket socket) {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kTuple);
    if (!ec) co_await serve(stream);
  }

  asio::awaitable<void> serve(tcp::socket socket) { co_await serve<tcp::socket>(socket); }

  template <typename Stream>
  asio::awaitable<void> serve(Stream& stream) {
    asio::streambuf in;
    auto [ec, n] = co_await asio::async_read_until(stream, in, "\r\n\r\n", kTuple);
    if (ec) co_return;
    const std::string request(static_cast<const char*>(in.data().data()), n);
    ++requests;
    const size_t h = request.find("\r\nHost: ");
    if (h != std::string::npos) {
      last_host = request.substr(h + 8, request.find("\r\n", h + 8) - (h + 8));
    }
    const std::string response = "HTTP/1.1 " + std::to_string(status) +
                                 " Test\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
    co_await asio::async_write(stream, asio::buffer(response), kTuple);
  }

  asio::io_context& io_;
  bool http_;
  asio::ssl::context* tls_;
  asio::ip::address address_;
  std::shared_ptr<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
};

// Answers every query with its own header and question, QR set, and `rcode`; `silent` drops
// queries.
class DnsBackend {
 public:
  explicit DnsBackend(asio::io_context& io) : socket_(io, udp::endpoint(kLoopback, 0)) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  [[nodiscard]] uint16_t port() const { return socket_.local_endpoint().port(); }
  void close() { socket_.close(); }

  uint16_t rcode = dns::rcode::kNoError;
  bool silent = false;
  size_t queries = 0;

 private:
  asio::awaitable<void> serve() {
    uint8_t buf[512];
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await socket_.async_receive_from(asio::buffer(buf), from, kTuple);
      if (ec) co_return;
      ++queries;
      size_t end = 0;
      if (silent || n < dns::kHeaderSize ||
          dns::skipName(buf, n, dns::kHeaderSize, &end) != dns::NameStatus::kOk || end + 4 > n) {
        continue;
      }
      const uint16_t flags = dns::readU16(buf + 2);
      dns::writeU16(buf + 2, static_cast<uint16_t>(dns::flag::kQR | dns::flag::kRA |
                                                   (flags & dns::flag::kRD) | rcode));
      dns::writeU16(buf + 6, 0);
      dns::writeU16(buf + 8, 0);
      dns::writeU16(buf + 10, 0);
      co_await socket_.async_send_to(asio::buffer(buf, end + 4), from, kTuple);
    }
  }

  udp::socket socket_;
};

// A port on which nothing listens (bound, read, released).
uint16_t unusedPort(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(kLoopback, 0));
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("schedule: first probe after its start delay, then every interval from the last start",
          "[healthcheck]") {
  Harness h;
  std::vector<Target> targets;
  for (uint16_t i = 0; i < 3; ++i) {
    targets.push_back(Target{i, "t" + std::to_string(i), kLoopback,
                             spec(CheckSpec::Kind::kTcp, static_cast<uint16_t>(1000 + i))});
    targets.back().spec.timeout_ms = 2000;  // longer than the interval, as the slow probe needs
  }
  MonitorOptions o = h.options(true);
  o.max_start_jitter_ms = 1000;
  o.seed = 7;
  const std::vector<uint32_t> delays = startDelaysMs(targets, o);
  REQUIRE(std::any_of(delays.begin(), delays.end(), [](uint32_t d) { return d > 0; }));
  h.fake->script(1001, {okAfter(200ms)});        // shorter than the interval: no drift
  h.fake->script(1002, {okAfter(1500ms), kOk});  // longer: the next one starts at once
  Monitor monitor(h.io, targets, o);
  monitor.start();
  h.advance(4000ms);
  monitor.stop();

  auto expected = [&](uint16_t i, std::vector<milliseconds> gaps) {
    std::vector<Clock::TimePoint> out;
    Clock::TimePoint t = h.at(milliseconds(delays[i]));
    for (size_t k = 0; t <= h.at(4000ms); ++k) {
      out.push_back(t);
      t += k < gaps.size() ? gaps[k] : 1000ms;
    }
    return out;
  };
  CHECK(h.fake->starts(1000) == expected(0, {}));
  CHECK(h.fake->starts(1001) == expected(1, {}));
  CHECK(h.fake->starts(1002) == expected(2, {1500ms}));
  CHECK(h.fake->starts(1002).size() >= 3);
}

TEST_CASE("rise/fall: fall failures in a row turn a target down, rise successes turn it up",
          "[healthcheck]") {
  Harness h;
  h.fake->script(53, {kOk, kOk, kFail, kFail, kOk, kFail, kFail, kFail, kOk, kFail, kOk, kOk});
  // After each probe, in order: the verdict workers read, and whether this probe flipped it.
  const std::vector<bool> up = {true, true,  true,  true,  true,  true,
                                true, false, false, false, false, true};
  Monitor monitor(h.io, {Target{0, "t", kLoopback, spec(CheckSpec::Kind::kTcp, 53)}},
                  h.options(true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  CHECK(stateOf(monitor, 0).changed_at_ms == h.clock->wallMs());
  const uint64_t wall0 = h.clock->wallMs();
  monitor.start();
  for (size_t k = 0; k < up.size(); ++k) {
    h.advance(k == 0 ? 0ms : 1000ms);
    REQUIRE(rec.events.size() == k + 1);
    INFO("probe " << k);
    CHECK(monitor.verdicts()->usable(0) == up[k]);
    CHECK(rec.events[k].when == h.at(milliseconds(1000 * k)));
    CHECK(rec.events[k].verdict_changed == (k == 7 || k == 11));
  }
  CHECK(rec.events[6].opposing == 2);  // two failures after the reset by probe 4
  CHECK(rec.events[7].consecutive == 3);
  CHECK(rec.events[9].opposing == 0);  // the failure reset probe 8's success
  CHECK(rec.events[11].consecutive == 2);
  CHECK(stateOf(monitor, 0).changed_at_ms == wall0 + 11000);
  CHECK(stateOf(monitor, 0).probes == 12);
  CHECK(stateOf(monitor, 0).failures == 6);
  CHECK(stateOf(monitor, 0).last_error == "scripted failure");
}

TEST_CASE("timeout: an unanswered probe fails at timeout_ms and the schedule holds",
          "[healthcheck]") {
  Harness h;
  CheckSpec s = spec(CheckSpec::Kind::kDns, 53);
  s.fall = 1;
  CheckSpec just_in_time = spec(CheckSpec::Kind::kDns, 54);
  h.fake->script(53, {kHang, kOk});
  h.fake->script(54, {okAfter(299ms)});
  Monitor monitor(h.io,
                  {Target{0, "silent", kLoopback, s}, Target{1, "slow", kLoopback, just_in_time}},
                  h.options(true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  h.advance(299ms);
  REQUIRE(rec.events.size() == 1);  // only the probe that answered in time
  CHECK(rec.events[0].id == 1);
  CHECK(rec.events[0].probe_ok);
  CHECK(stateOf(monitor, 1).rtt_us == 299000);
  CHECK(h.fake->in_flight == 1);
  h.advance(1ms);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[1].id == 0);
  CHECK_FALSE(rec.events[1].probe_ok);
  CHECK(rec.events[1].error == "timeout after 300 ms");
  CHECK(rec.events[1].when == h.at(300ms));
  CHECK_FALSE(monitor.verdicts()->usable(0));
  CHECK(h.fake->in_flight == 0);  // the timed-out attempt was cancelled, not left running
  CHECK(h.fake->abandoned == 1);
  h.advance(700ms);
  CHECK(h.fake->starts(53) == std::vector<Clock::TimePoint>{h.at(0ms), h.at(1000ms)});
  CHECK(stateOf(monitor, 0).probes == 2);
}

TEST_CASE("RTT: clock time of a probe, smoothed, published only when it leaves its bucket",
          "[healthcheck]") {
  Harness h;
  // Samples of 10, 10, 10, 60 and 10 ms, then one answered at once.
  h.fake->script(80, {okAfter(10ms), okAfter(10ms), okAfter(10ms), okAfter(60ms), okAfter(10ms),
                      Outcome{true, milliseconds(0)}});
  Monitor monitor(h.io, {Target{0, "web", kLoopback, spec(CheckSpec::Kind::kHttp, 80)}},
                  h.options(true));
  const Verdicts& v = *monitor.verdicts();
  monitor.start();
  std::vector<uint32_t> rtt;
  std::vector<uint64_t> stores;
  for (int k = 0; k < 5; ++k) {
    h.advance(k == 0 ? 100ms : 1000ms);
    rtt.push_back(stateOf(monitor, 0).rtt_us);
    stores.push_back(v.stores());
  }
  // 0.3 × sample + 0.7 × the previous estimate.
  CHECK(rtt == std::vector<uint32_t>{10000, 10000, 10000, 25000, 20500});
  CHECK(stores == std::vector<uint64_t>{1, 1, 1, 2, 3});
  CHECK(v.rttUs(0) == Verdicts::rttBucket(20500));
  CHECK(Verdicts::rttBucket(20500) != Verdicts::rttBucket(25000));
  // The 6th probe answers at once: its RTT is the 1 µs floor, 0.3 + 0.7 × 20500 = 14350.
  h.advance(1000ms);
  CHECK(stateOf(monitor, 0).rtt_us == 14350);
  CHECK(v.stores() == 4);
}

TEST_CASE("RTT within a bucket stores nothing", "[healthcheck]") {
  Harness h;
  Monitor monitor(h.io, {Target{0, "web", kLoopback, spec(CheckSpec::Kind::kHttp, 80)}},
                  h.options(true));
  TargetState was;
  was.rtt_us = 21000;
  REQUIRE(monitor.adoptState(0, was).has_value());
  const Verdicts& v = *monitor.verdicts();
  const uint64_t stores = v.stores();
  h.fake->script(80, {okAfter(20ms), okAfter(22ms)});
  monitor.start();
  h.advance(100ms);
  CHECK(stateOf(monitor, 0).rtt_us == 20700);  // 0.3 × 20000 + 0.7 × 21000
  h.advance(1000ms);
  CHECK(stateOf(monitor, 0).rtt_us == 21090);  // 0.3 × 22000 + 0.7 × 20700
  // Two probes moved the estimate within the 20480..21503 bucket: nothing republished.
  CHECK(Verdicts::rttBucket(20700) == Verdicts::rttBucket(21000));
  CHECK(Verdicts::rttBucket(21090) == Verdicts::rttBucket(21000));
  CHECK(v.stores() == stores);
  CHECK(v.rttUs(0) == Verdicts::rttBucket(21000));
}

TEST_CASE("stop abandons a probe in flight; start resumes with one loop", "[healthcheck]") {
  Harness h;
  CheckSpec s = spec(CheckSpec::Kind::kDns, 53);
  s.timeout_ms = 600000;  // ten minutes: only stop() can end the first probe
  h.fake->script(53, {kHang, kOk});
  Monitor monitor(h.io, {Target{0, "silent", kLoopback, s}}, h.options(true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  monitor.start();  // already running: no second probe loop
  h.advance(5000ms);
  CHECK(h.fake->in_flight == 1);
  CHECK(h.fake->starts(53).size() == 1);
  monitor.stop();
  CHECK_FALSE(monitor.running());
  h.clock->settle();
  CHECK(h.fake->in_flight == 0);
  CHECK(rec.events.empty());  // the abandoned probe recorded nothing
  CHECK(h.clock->waiting() == 0);
  h.io.restart();
  h.io.poll();
  CHECK(h.io.stopped());  // nothing left on the loop

  monitor.start();
  CHECK(monitor.running());
  h.advance(2000ms);
  CHECK(rec.probes(0, true) == 3);  // at 5 s, 6 s and 7 s
  CHECK(stateOf(monitor, 0).probes == rec.events.size());
}

TEST_CASE("a Monitor destroyed with probes in flight leaves the loop sound", "[healthcheck]") {
  Harness h;
  CheckSpec s = spec(CheckSpec::Kind::kDns, 53);
  s.timeout_ms = 600000;
  h.fake->script(53, {kHang});
  {
    Monitor monitor(h.io, {Target{0, "gone", kLoopback, s}}, h.options(true));
    monitor.start();
    h.advance(10ms);
    CHECK(h.fake->in_flight == 1);
  }
  // The abandoned probe and its loop resume after the Monitor is gone, and end.
  h.clock->settle();
  CHECK(h.fake->in_flight == 0);
  CHECK(h.clock->waiting() == 0);
  h.io.restart();
  h.io.poll();
  CHECK(h.io.stopped());
}

TEST_CASE("a verdict survives a rebuilt Monitor until rise probes pass", "[healthcheck]") {
  Harness h;
  h.fake->script(80, {kFail, kFail, kFail, kOk});
  const Target target{0, "eu-web", kLoopback, spec(CheckSpec::Kind::kTcp, 80)};
  Monitor old(h.io, {target}, h.options(true));
  old.start();
  h.advance(2000ms);  // fails at 0, 1 and 2 s: down
  REQUIRE_FALSE(old.verdicts()->usable(0));
  const TargetState was = stateOf(old, 0);
  old.stop();

  Monitor fresh(h.io, {target}, h.options(true));
  CHECK(fresh.verdicts()->usable(0));  // what a rebuild without adoptState would serve
  Monitor rebuilt(h.io, {target}, h.options(true));
  REQUIRE(rebuilt.adoptState(0, was).has_value());
  CHECK_FALSE(rebuilt.verdicts()->usable(0));
  Recorder rec;
  rec.attach(rebuilt, *h.clock);
  h.advance(500ms);
  rebuilt.start();
  h.clock->settle();  // first probe at 2.5 s succeeds: 1 of rise 2
  REQUIRE(rec.events.size() == 1);
  CHECK(rec.events[0].probe_ok);
  CHECK_FALSE(rebuilt.verdicts()->usable(0));
  CHECK(stateOf(rebuilt, 0).changed_at_ms == was.changed_at_ms);
  CHECK(stateOf(rebuilt, 0).probes == was.probes + 1);
  h.advance(1000ms);
  REQUIRE(rec.events.size() == 2);
  CHECK(rec.events[1].verdict_changed);
  CHECK(rebuilt.verdicts()->usable(0));
  CHECK(stateOf(rebuilt, 0).changed_at_ms == was.changed_at_ms + 1500);
}

TEST_CASE("adoptState carries a verdict and an override into a new Monitor", "[healthcheck]") {
  Harness h;
  Target unchecked{1, "eu/192.0.2.10", asio::ip::make_address("192.0.2.10"), CheckSpec{}};
  unchecked.checked = false;
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, 80);
  dead.fall = 100;  // the verdict cannot come from this Monitor's own probes
  h.fake->script(80, {kFail});
  Monitor monitor(h.io, {Target{0, "dead", kLoopback, dead}, unchecked}, h.options(true));
  TargetState was;
  was.up = false;
  was.probes = 7;
  was.failures = 7;
  was.override = Override::kNone;
  REQUIRE(monitor.adoptState(0, was).has_value());
  TargetState forced;
  forced.up = false;  // an unchecked slot keeps only the override
  forced.probes = 3;
  forced.override = Override::kForceDown;
  REQUIRE(monitor.adoptState(1, forced).has_value());
  CHECK_FALSE(monitor.verdicts()->usable(0));
  CHECK(stateOf(monitor, 0).probes == 7);
  CHECK_FALSE(monitor.verdicts()->usable(1));
  CHECK(stateOf(monitor, 1).up);
  CHECK(stateOf(monitor, 1).probes == 0);
  CHECK_FALSE(monitor.adoptState(2, was).has_value());
  monitor.start();
  CHECK_FALSE(monitor.adoptState(0, was).has_value());  // only before start()
  monitor.stop();
}

TEST_CASE("overrides decide usable() whatever the checks say", "[healthcheck]") {
  Harness h;
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, 2);
  dead.fall = 1;
  h.fake->script(1, {kOk});
  h.fake->script(2, {kFail});
  Monitor monitor(h.io,
                  {Target{0, "live", kLoopback, spec(CheckSpec::Kind::kTcp, 1)},
                   Target{1, "dead", kLoopback, dead}},
                  h.options(true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  h.clock->settle();
  const Verdicts& table = *monitor.verdicts();
  CHECK(table.usable(0));
  CHECK_FALSE(table.usable(1));

  const uint64_t stores = table.stores();
  REQUIRE(monitor.setOverride(0, Override::kForceDown).has_value());
  REQUIRE(monitor.setOverride(1, Override::kForceUp).has_value());
  // Published at once, without waiting for a probe.
  CHECK(table.stores() == stores + 2);
  CHECK_FALSE(table.usable(0));
  CHECK(table.usable(1));
  CHECK(table.up(0));  // the verdicts themselves are untouched
  CHECK_FALSE(table.up(1));
  CHECK(monitor.states()[0].up);
  CHECK_FALSE(monitor.states()[1].up);
  CHECK(rec.events.back().from_override);

  // Probes go on and do not undo the overrides.
  const size_t mark = rec.events.size();
  h.advance(2000ms);
  CHECK(rec.probes(0, true, mark) == 2);
  CHECK(rec.probes(1, false, mark) == 2);
  CHECK_FALSE(monitor.verdicts()->usable(0));
  CHECK(monitor.verdicts()->usable(1));
  CHECK_THAT(monitor.describe(), Catch::Contains("force-up"));

  REQUIRE(monitor.setOverride(0, Override::kDrain).has_value());
  CHECK_FALSE(monitor.verdicts()->usable(0));
  REQUIRE(monitor.setOverride(0, Override::kNone).has_value());
  REQUIRE(monitor.setOverride(1, Override::kNone).has_value());
  CHECK(monitor.verdicts()->usable(0));
  CHECK_FALSE(monitor.verdicts()->usable(1));

  CHECK_FALSE(monitor.setOverride(2, Override::kForceUp).has_value());
  CHECK(monitor.find("dead") == std::optional<uint32_t>(1));
  CHECK_FALSE(monitor.find("nope").has_value());
}

TEST_CASE("unchecked targets are never probed, stay up, and take overrides", "[healthcheck]") {
  Harness h;
  Target unchecked{1, "eu/192.0.2.10", asio::ip::make_address("192.0.2.10"), CheckSpec{}};
  unchecked.checked = false;  // its spec (port 0) would fail validateCheck: it is not looked at
  Target cname{2, "eu/edge.example.net.", {}, CheckSpec{}};
  cname.checked = false;
  Monitor monitor(h.io,
                  {Target{0, "live", kLoopback, spec(CheckSpec::Kind::kTcp, 1)}, unchecked, cname},
                  h.options(true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  CHECK(monitor.running());
  h.advance(2000ms);
  REQUIRE(rec.probes(0, true) == 3);
  for (const Seen& e : rec.events) CHECK(e.id == 0);  // only the checked target is probed
  CHECK(h.fake->starts(0).empty());
  CHECK(stateOf(monitor, 1).probes == 0);
  CHECK(monitor.verdicts()->usable(1));
  CHECK(monitor.verdicts()->usable(2));

  REQUIRE(monitor.setOverride(1, Override::kForceDown).has_value());
  REQUIRE(monitor.setOverride(2, Override::kDrain).has_value());
  CHECK_FALSE(monitor.verdicts()->usable(1));
  CHECK_FALSE(monitor.verdicts()->usable(2));
  CHECK(monitor.verdicts()->usable(0));
  const std::string text = monitor.describe();
  CHECK_THAT(text, Catch::Contains("unchecked"));
  CHECK_THAT(text, Catch::Contains("eu/edge.example.net."));
  CHECK_THAT(text, Catch::Contains("force-down"));
  REQUIRE(monitor.setOverride(1, Override::kNone).has_value());
  REQUIRE(monitor.setOverride(2, Override::kForceUp).has_value());
  CHECK(monitor.verdicts()->usable(1));
  CHECK(monitor.verdicts()->usable(2));
  CHECK(monitor.find("eu/192.0.2.10") == std::optional<uint32_t>(1));
}

TEST_CASE("a failing target's probes store its word once, at the verdict change", "[healthcheck]") {
  Harness h;
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, 9);
  dead.fall = 2;
  h.fake->script(9, {kFail});
  Monitor monitor(h.io, {Target{0, "dead", kLoopback, dead}}, h.options(true));
  const Verdicts& v = *monitor.verdicts();
  CHECK(v.stores() == 0);
  monitor.start();
  h.advance(7000ms);
  monitor.stop();
  // Eight probes, each a new error and new counters on the control side: the workers' word was
  // written once, when the verdict turned down.
  CHECK(stateOf(monitor, 0).probes == 8);
  CHECK_FALSE(stateOf(monitor, 0).last_error.empty());
  CHECK_FALSE(v.usable(0));
  CHECK(v.stores() == 1);
}

// The real probers, each probe started by the manual clock and its result awaited as an event.

TEST_CASE("tcp check: down only after fall failures, up again only after rise successes",
          "[healthcheck]") {
  Harness h;
  Backend backend(h.io, false);
  Monitor monitor(
      h.io, {Target{0, "tcp-backend", kLoopback, spec(CheckSpec::Kind::kTcp, backend.port())}},
      h.options(true, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  REQUIRE(probeRound(h, rec, 1));
  TargetState s = stateOf(monitor, 0);
  CHECK(s.up);
  CHECK(s.usable());
  CHECK(s.rtt_us > 0);
  CHECK(s.consecutive == 2);

  backend.close();
  for (uint32_t failed = 1; failed <= 3; ++failed) {
    REQUIRE(probeRound(h, rec, 1));
    const Seen& e = rec.events.back();
    CHECK_FALSE(e.probe_ok);
    CHECK_THAT(e.error, Catch::Contains("refused"));
    CHECK(e.up == (failed < 3));
    CHECK(e.verdict_changed == (failed == 3));
    CHECK(e.opposing == (failed < 3 ? failed : 0));
  }
  CHECK(rec.events.back().consecutive == 3);
  CHECK_FALSE(stateOf(monitor, 0).usable());

  backend.reopen();
  REQUIRE(probeRound(h, rec, 1));
  CHECK(rec.events.back().probe_ok);
  CHECK_FALSE(rec.events.back().up);  // one success is not enough
  CHECK(rec.events.back().opposing == 1);
  REQUIRE(probeRound(h, rec, 1));
  CHECK(rec.events.back().verdict_changed);
  CHECK(rec.events.back().consecutive == 2);
  CHECK(stateOf(monitor, 0).up);

  const std::string text = monitor.describe();
  CHECK_THAT(text, Catch::Contains("tcp-backend"));
  CHECK_THAT(text, Catch::Contains("127.0.0.1:" + std::to_string(backend.port())));
  CHECK_THAT(text, Catch::Contains("refused"));  // the last error stays visible after recovery
  monitor.stop();
}

TEST_CASE("http check against an IPv6 endpoint", "[healthcheck]") {
  Harness h;
  const auto v6 = asio::ip::make_address("::1");
  {
    // Skip where the machine has no IPv6 loopback.
    tcp::acceptor probe(h.io);
    boost::system::error_code ec;
    probe.open(tcp::v6(), ec);
    if (!ec) probe.bind(tcp::endpoint(v6, 0), ec);
    if (ec) {
      WARN("::1 unavailable (" << ec.message() << "); IPv6 health check not tested");
      return;
    }
  }
  Backend backend(h.io, true, nullptr, v6);
  Monitor monitor(h.io, {Target{0, "v6-web", v6, spec(CheckSpec::Kind::kHttp, backend.port())}},
                  h.options(true, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  CHECK(rec.events.back().probe_ok);
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK(backend.last_host == "[::1]:" + std::to_string(backend.port()));
  backend.close();
  for (int i = 0; i < 3; ++i) REQUIRE(probeRound(h, rec, 1));
  CHECK_FALSE(stateOf(monitor, 0).usable());
  monitor.stop();
}

TEST_CASE("http check: status and body expectations", "[healthcheck]") {
  Harness h;
  Backend backend(h.io, true);
  CheckSpec s = spec(CheckSpec::Kind::kHttp, backend.port());
  s.path = "/health";
  s.expect_status = {200, 203};
  s.expect_body = "ok";
  Monitor monitor(h.io, {Target{0, "web", kLoopback, s}}, h.options(false, true));
  CHECK_FALSE(stateOf(monitor, 0).up);  // initial_up = false: down until rise successes
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  REQUIRE(probeRound(h, rec, 1));
  CHECK(stateOf(monitor, 0).up);
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK(backend.last_host == "127.0.0.1:" + std::to_string(backend.port()));

  SECTION("a status not in expect_status is a failure") {
    backend.status = 503;
    for (int i = 0; i < 3; ++i) REQUIRE(probeRound(h, rec, 1));
    CHECK_FALSE(stateOf(monitor, 0).up);
    CHECK_THAT(stateOf(monitor, 0).last_error, Catch::Contains("HTTP status 503"));
  }
  SECTION("a body without the expected substring is a failure") {
    backend.body = "degraded";
    for (int i = 0; i < 3; ++i) REQUIRE(probeRound(h, rec, 1));
    CHECK_FALSE(stateOf(monitor, 0).up);
    CHECK_THAT(stateOf(monitor, 0).last_error, Catch::Contains("body does not contain \"ok\""));
    backend.body = "all ok now";
    for (int i = 0; i < 2; ++i) REQUIRE(probeRound(h, rec, 1));
    CHECK(stateOf(monitor, 0).up);
  }
  SECTION("another accepted status keeps it up") {
    backend.status = 203;
    backend.body = "ok";
    const size_t seen = backend.requests;
    for (int i = 0; i < 4; ++i) REQUIRE(probeRound(h, rec, 1));
    CHECK(backend.requests == seen + 4);
    CHECK(stateOf(monitor, 0).up);
    CHECK(stateOf(monitor, 0).opposing == 0);
  }
}

TEST_CASE("http check sends the configured Host header", "[healthcheck]") {
  Harness h;
  Backend backend(h.io, true);
  CheckSpec s = spec(CheckSpec::Kind::kHttp, backend.port());
  s.host_header = "svc.example.com";
  Monitor monitor(h.io, {Target{0, "web", kLoopback, s}}, h.options(false, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  CHECK(rec.events.back().probe_ok);
  CHECK(backend.last_host == "svc.example.com");
}

TEST_CASE("https check over a self-signed certificate", "[healthcheck]") {
  namespace fs = std::filesystem;
  char dir_template[] = "/tmp/meridian-hc-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const fs::path dir = dir_template;
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "key.pem").string();
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
      "-subj /CN=localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(command.c_str()) != 0) {
    fs::remove_all(dir);
    WARN("openssl CLI unavailable: HTTPS check not tested");
    return;
  }
  asio::ssl::context server_tls(asio::ssl::context::tls_server);
  server_tls.use_certificate_chain_file(cert);
  server_tls.use_private_key_file(key, asio::ssl::context::pem);
  fs::remove_all(dir);

  Harness h;
  Backend backend(h.io, true, &server_tls);
  CheckSpec insecure = spec(CheckSpec::Kind::kHttps, backend.port());
  insecure.expect_body = "service ok";
  CheckSpec verifying = insecure;
  verifying.verify_tls = true;
  CheckSpec plain = spec(CheckSpec::Kind::kHttp, backend.port());  // HTTP to a TLS port
  Monitor monitor(
      h.io,
      {Target{0, "tls-default", kLoopback, insecure}, Target{1, "tls-verify", kLoopback, verifying},
       Target{2, "plain-to-tls", kLoopback, plain}},
      h.options(false, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 3; }));
  REQUIRE(probeRound(h, rec, 3));
  CHECK(stateOf(monitor, 0).up);
  CHECK(rec.probes(0, true) == 2);
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  // Verification on: a self-signed certificate fails the handshake.
  CHECK(rec.probes(1, false) == 2);
  CHECK_FALSE(stateOf(monitor, 1).up);
  CHECK_THAT(stateOf(monitor, 1).last_error, Catch::Contains("tls handshake"));
  CHECK(rec.probes(2, false) == 2);
  CHECK_FALSE(stateOf(monitor, 2).up);
}

TEST_CASE("dns check: NOERROR is up, another rcode or silence is down", "[healthcheck]") {
  Harness h;
  DnsBackend backend(h.io);
  CheckSpec s = spec(CheckSpec::Kind::kDns, backend.port());
  s.dns_qname = "health.example.com";
  s.dns_qtype = dns::rrtype::kAAAA;
  Monitor monitor(h.io, {Target{0, "dns-backend", kLoopback, s}}, h.options(false, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  REQUIRE(probeRound(h, rec, 1));
  CHECK(stateOf(monitor, 0).up);
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK_THAT(monitor.describe(), Catch::Contains("dns health.example.com. AAAA"));

  SECTION("REFUSED") {
    backend.rcode = dns::rcode::kRefused;
    for (int i = 0; i < 3; ++i) REQUIRE(probeRound(h, rec, 1));
    CHECK_FALSE(stateOf(monitor, 0).up);
    CHECK(stateOf(monitor, 0).last_error == "rcode REFUSED");
  }
  SECTION("no reply within the timeout") {
    backend.silent = true;
    for (int i = 0; i < 3; ++i) {
      // The next probe at the next whole second; the query reaches the backend, then the clock
      // runs out its timeout.
      const size_t queries = backend.queries;
      h.advance(i == 0 ? 1000ms : 700ms);
      REQUIRE(runUntil(h.io, [&] { return backend.queries > queries; }));
      const size_t n = rec.probeCount();
      h.advance(299ms);
      CHECK(rec.probeCount() == n);
      h.advance(1ms);
      REQUIRE(rec.probeCount() == n + 1);
      CHECK(rec.events.back().error == "timeout after 300 ms");
      CHECK(rec.events.back().when == h.at(milliseconds(2300 + 1000 * i)));
    }
    CHECK_FALSE(stateOf(monitor, 0).up);
  }
}

TEST_CASE("dns check against a closed port fails", "[healthcheck]") {
  Harness h;
  CheckSpec s = spec(CheckSpec::Kind::kDns, unusedPort(h.io));  // the UDP port is as free
  s.fall = 1;
  Monitor monitor(h.io, {Target{0, "nobody", kLoopback, s}}, h.options(true, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  // Connected UDP: the ICMP port unreachable comes back as "connection refused", no timeout.
  REQUIRE(runUntil(h.io, [&] { return rec.probeCount() == 1; }));
  CHECK_FALSE(stateOf(monitor, 0).up);
  CHECK_THAT(stateOf(monitor, 0).last_error, Catch::Contains("refused"));
}

TEST_CASE("stop abandons a real probe in flight", "[healthcheck]") {
  Harness h;
  DnsBackend backend(h.io);
  backend.silent = true;
  CheckSpec s = spec(CheckSpec::Kind::kDns, backend.port());
  s.timeout_ms = 600000;
  Monitor monitor(h.io, {Target{0, "silent", kLoopback, s}}, h.options(true, true));
  Recorder rec;
  rec.attach(monitor, *h.clock);
  monitor.start();
  REQUIRE(runUntil(h.io, [&] { return backend.queries >= 1; }));
  monitor.stop();
  backend.close();  // the backend's receive is the only other work
  // Both waits of the probe (the socket's receive, the deadline) are cancelled: the loop runs dry.
  h.io.restart();
  h.io.run();
  CHECK(h.io.stopped());
  CHECK(rec.events.empty());
}

TEST_CASE("start delays are deterministic for a seed and within the jitter", "[healthcheck]") {
  std::vector<Target> targets;
  for (uint32_t i = 0; i < 8; ++i) {
    targets.push_back(Target{i, std::string("t").append(std::to_string(i)), kLoopback,
                             spec(CheckSpec::Kind::kTcp, 80)});
    targets.back().spec.interval_ms = i == 0 ? 20 : 5000;
  }
  MonitorOptions a;
  a.seed = 42;
  a.max_start_jitter_ms = 1000;
  MonitorOptions b = a;
  b.seed = 43;
  const auto da = startDelaysMs(targets, a);
  CHECK(da == startDelaysMs(targets, a));
  CHECK(da != startDelaysMs(targets, b));
  CHECK(da[0] < 20);  // bounded by the interval
  for (const uint32_t d : da) CHECK(d < 1000);
  a.max_start_jitter_ms = 0;
  for (const uint32_t d : startDelaysMs(targets, a)) CHECK(d == 0);
}

TEST_CASE("checkDnsReply", "[healthcheck]") {
  dns::NameBuf q;
  REQUIRE(dns::fromText("www.example.com.", q));
  auto reply = [&](uint16_t id, uint16_t flags, uint16_t qtype, uint16_t ancount,
                   std::vector<uint8_t> records) {
    uint8_t header[12] = {};
    dns::writeU16(header, id);
    dns::writeU16(header + 2, flags);
    dns::writeU16(header + 4, 1);
    dns::writeU16(header + 6, ancount);
    const uint8_t tail[4] = {static_cast<uint8_t>(qtype >> 8), static_cast<uint8_t>(qtype), 0, 1};
    // Byte by byte: GCC 12 reports a false -Warray-bounds on vector::insert after a fixed prefix.
    std::vector<uint8_t> p;
    for (const uint8_t b : header) p.push_back(b);
    for (size_t i = 0; i < q.length; ++i) p.push_back(q.data[i]);
    for (const uint8_t b : tail) p.push_back(b);
    for (const uint8_t b : records) p.push_back(b);
    return p;
  };
  // One A record, owner compressed to the question name.
  const std::vector<uint8_t> a_record = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};
  const uint16_t qr = dns::flag::kQR;
  std::string error;
  auto check = [&](const std::vector<uint8_t>& p) {
    error.clear();
    return checkDnsReply(p.data(), p.size(), 0xBEEF, q.data, dns::rrtype::kA, error);
  };

  CHECK(check(reply(0xBEEF, qr, 1, 1, a_record)) == DnsReplyStatus::kOk);
  CHECK(check(reply(0xBEEF, qr | dns::flag::kAA, 1, 0, {})) == DnsReplyStatus::kOk);  // NODATA
  CHECK(check(reply(0xBEEE, qr, 1, 1, a_record)) == DnsReplyStatus::kIgnore);         // other ID
  CHECK(check(reply(0xBEEF, 0, 1, 1, a_record)) == DnsReplyStatus::kIgnore);          // a query
  CHECK(check({0xBE, 0xEF, 0x80}) == DnsReplyStatus::kIgnore);                        // no header
  CHECK(check(reply(0xBEEF, qr | dns::rcode::kServFail, 1, 0, {})) == DnsReplyStatus::kFailure);
  CHECK(error == "rcode SERVFAIL");
  CHECK(check(reply(0xBEEF, qr | dns::rcode::kNXDomain, 1, 0, {})) == DnsReplyStatus::kFailure);
  CHECK(error == "rcode NXDOMAIN");
  CHECK(check(reply(0xBEEF, qr, dns::rrtype::kMX, 0, {})) == DnsReplyStatus::kFailure);
  CHECK_THAT(error, Catch::Contains("another question"));
  auto cut = a_record;
  cut.pop_back();
  CHECK(check(reply(0xBEEF, qr, 1, 1, cut)) == DnsReplyStatus::kFailure);
  CHECK_THAT(error, Catch::Contains("malformed"));
  CHECK(check(reply(0xBEEF, qr, 1, 2, a_record)) == DnsReplyStatus::kFailure);  // count lies
  CHECK_THAT(error, Catch::Contains("section counts exceed the message"));

  // What the shared response parser (dns/response.h) refuses and the old record walk let through.
  auto trailing = a_record;
  trailing.push_back(0);
  CHECK(check(reply(0xBEEF, qr, 1, 1, trailing)) == DnsReplyStatus::kFailure);
  CHECK(error == "malformed reply: octets after the last record (octet 49)");
  // An NS whose target points forward, at the A record after it.
  const std::vector<uint8_t> ns_forward = {0xC0, 12, 0,    2,  0,    1,  0,   0, 0, 60,
                                           0,    2,  0xC0, 47, 0xC0, 12, 0,   1, 0, 1,
                                           0,    0,  0,    60, 0,    4,  192, 0, 2, 1};
  CHECK(check(reply(0xBEEF, qr, 1, 2, ns_forward)) == DnsReplyStatus::kFailure);
  CHECK_THAT(error, Catch::Contains("compression pointer does not point backwards"));
  // An OPT in the answer section (RFC 6891 §6.1.1).
  const std::vector<uint8_t> opt = {0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0};
  CHECK(check(reply(0xBEEF, qr, 1, 1, opt)) == DnsReplyStatus::kFailure);
  CHECK_THAT(error, Catch::Contains("OPT outside the additional section"));
  // Another ID still means "not ours" before the rest is judged.
  CHECK(check(reply(0xBEEE, qr, 1, 1, trailing)) == DnsReplyStatus::kIgnore);
}

TEST_CASE("validateCheck refuses what a probe cannot run", "[healthcheck]") {
  CHECK(validateCheck(spec(CheckSpec::Kind::kHttp, 80)).has_value());
  auto bad = [](auto mutate) {
    CheckSpec s = spec(CheckSpec::Kind::kHttp, 80);
    mutate(s);
    return !validateCheck(s).has_value();
  };
  CHECK(bad([](CheckSpec& s) { s.port = 0; }));
  CHECK(bad([](CheckSpec& s) { s.rise = 0; }));
  CHECK(bad([](CheckSpec& s) { s.fall = 0; }));
  CHECK(bad([](CheckSpec& s) { s.timeout_ms = 0; }));
  CHECK(bad([](CheckSpec& s) { s.path = "health"; }));
  CHECK(bad([](CheckSpec& s) { s.host_header = "a\r\nX-Injected: 1"; }));
  CHECK(bad([](CheckSpec& s) { s.expect_status = {}; }));
  CHECK(bad([](CheckSpec& s) { s.expect_status = {99}; }));
  CHECK(bad([](CheckSpec& s) {
    s.kind = CheckSpec::Kind::kDns;
    s.dns_qname = std::string(70, 'a') + ".example";  // label over 63 octets
  }));
  CHECK(parseKind("https") == CheckSpec::Kind::kHttps);
  CHECK_FALSE(parseKind("icmp").has_value());

  asio::io_context io;
  CHECK_THROWS_AS(
      Monitor(io, {Target{1, "misnumbered", kLoopback, spec(CheckSpec::Kind::kTcp, 80)}}),
      std::invalid_argument);
}

TEST_CASE("Verdicts: one word per target, stored only when steering would see a change",
          "[healthcheck]") {
  Verdicts v(3);
  CHECK(v.size() == 3);
  CHECK(v.usable(0));
  CHECK(v.usable(7));  // past the end (no such target): up
  CHECK(v.rttUs(0) == 0);
  TargetState s;
  CHECK_FALSE(v.set(0, s));  // already the initial word
  s.rtt_us = 10000;
  CHECK(v.set(0, s));
  CHECK(v.rttUs(0) == Verdicts::rttBucket(10000));
  // The descriptive data is not in the word: counters and error strings store nothing.
  s.probes = 99;
  s.failures = 5;
  s.consecutive = 4;
  s.last_error = "connection refused";
  CHECK_FALSE(v.set(0, s));
  // An RTT that stays in its bucket stores nothing; one that leaves it does.
  s.rtt_us = Verdicts::rttBucket(10000) + 1;
  CHECK_FALSE(v.set(0, s));
  s.rtt_us = 12000;
  CHECK(v.set(0, s));
  s.up = false;
  CHECK(v.set(0, s));
  CHECK_FALSE(v.usable(0));
  CHECK_FALSE(v.up(0));
  s.override = Override::kForceUp;
  CHECK(v.set(0, s));
  CHECK(v.usable(0));
  CHECK_FALSE(v.up(0));
  CHECK(v.stores() == 4);
  CHECK(v.usable(1));
  // Buckets keep 5 significant bits: about 3-6 % wide, so 5, 60 and 150 ms stay apart.
  CHECK(Verdicts::rttBucket(31) == 31);
  CHECK(Verdicts::rttBucket(1000) == 992);
  CHECK(Verdicts::rttBucket(5000) < Verdicts::rttBucket(60000));
  CHECK(Verdicts::rttBucket(60000) < Verdicts::rttBucket(150000));
  CHECK(Verdicts::rttBucket(100000000) == Verdicts::rttBucket(Verdicts::kMaxRttUs));
  // From a StateTable (tests, offline explain).
  StateTable t;
  t.targets.resize(2);
  t.targets[1].up = false;
  t.targets[1].rtt_us = 800;
  const Verdicts from(t);
  CHECK(from.usable(0));
  CHECK_FALSE(from.usable(1));
  CHECK(from.rttUs(1) == 800);
}

TEST_CASE("metrics: verdict, usable, RTT, probes and failures per target",
          "[healthcheck][metrics]") {
  Harness h;
  h.fake->script(80, {okAfter(10ms), kFail});
  Target unchecked{1, "eu/192.0.2.12", asio::ip::make_address("192.0.2.12"), {}};
  unchecked.checked = false;
  Monitor monitor(h.io, {Target{0, "web", kLoopback, spec(CheckSpec::Kind::kHttp, 80)}, unchecked},
                  h.options(true));
  REQUIRE(monitor.setOverride(1, Override::kDrain).has_value());
  monitor.start();
  h.advance(100ms);   // one probe: ok in 10 ms
  h.advance(1000ms);  // one more: failed (still up: fall is 3)
  std::vector<core::MetricFamily> f;
  addHealthFamilies(monitor, f);
  const std::string t = core::renderPrometheus(f);
  const std::string web = "{target=\"web\",address=\"127.0.0.1\"} ";
  const std::string eu = "{target=\"eu/192.0.2.12\",address=\"192.0.2.12\"} ";
  CHECK(t.find("\nmeridian_health_up" + web + "1\n") != std::string::npos);
  CHECK(t.find("\nmeridian_health_usable" + web + "1\n") != std::string::npos);
  CHECK(t.find("\nmeridian_health_usable" + eu + "0\n") != std::string::npos);  // drained
  CHECK(t.find("meridian_health_up" + eu) == std::string::npos);                // not checked
  CHECK(t.find("\nmeridian_health_rtt_seconds" + web + "0.01\n") != std::string::npos);
  CHECK(t.find("\nmeridian_health_probes_total" + web + "2\n") != std::string::npos);
  CHECK(t.find("\nmeridian_health_probe_failures_total" + web + "1\n") != std::string::npos);
}
