// Health checks against real backends on 127.0.0.1 (bound to port 0), all run on the test's own
// io_context together with the Monitor: a TCP acceptor that can be closed and reopened, an HTTP(S)
// responder whose status and body the test switches, and a UDP DNS responder. Intervals are short
// (50 ms) but every wait is "until the state is reached, for at most several seconds": nothing here
// asserts how fast something happens, only in which order (via the Monitor's event listener).
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
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "healthcheck/monitor.h"

using namespace meridian;
using namespace meridian::healthcheck;
namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
const asio::ip::address kLoopback = asio::ip::make_address("127.0.0.1");

// Runs the loop until `done()` holds; false if it still does not after `limit`. The limit is far
// above what any check here needs, so that a loaded machine does not make a test flaky.
template <typename Pred>
bool runUntil(asio::io_context& io, Pred done, std::chrono::seconds limit = 20s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    io.restart();
    io.run_for(10ms);
  }
  return true;
}

CheckSpec spec(CheckSpec::Kind kind, uint16_t port) {
  CheckSpec s;
  s.name = kindName(kind);
  s.kind = kind;
  s.port = port;
  s.interval_ms = 50;
  s.timeout_ms = 2000;
  s.rise = 2;
  s.fall = 3;
  return s;
}

MonitorOptions options(bool initial_up) {
  MonitorOptions o;
  o.initial_up = initial_up;
  o.max_start_jitter_ms = 0;
  return o;
}

// What the listener saw, one entry per probe or override.
struct Seen {
  uint32_t id;
  bool probe_ok, up, verdict_changed, from_override;
  uint32_t consecutive, opposing;
  std::string error;
};

struct Recorder {
  std::vector<Seen> events;
  void attach(Monitor& m) {
    m.setListener([this](const Event& e) {
      events.push_back({e.id, e.probe_ok, e.state->up, e.verdict_changed, e.from_override,
                        e.state->consecutive, e.state->opposing, e.state->last_error});
    });
  }
  [[nodiscard]] size_t probes(uint32_t id, bool ok, size_t from = 0) const {
    size_t n = 0;
    for (size_t i = from; i < events.size(); ++i) {
      n += events[i].id == id && !events[i].from_override && events[i].probe_ok == ok;
    }
    return n;
  }
  // Index of the first verdict change of `id` at or after `from`, or -1.
  [[nodiscard]] long flip(uint32_t id, size_t from) const {
    for (size_t i = from; i < events.size(); ++i) {
      if (events[i].id == id && events[i].verdict_changed) return static_cast<long>(i);
    }
    return -1;
  }
  // The probe events of `id` before index `i`, most recent first.
  [[nodiscard]] std::vector<Seen> before(uint32_t id, long i) const {
    std::vector<Seen> out;
    for (long k = i - 1; k >= 0; --k) {
      if (events[k].id == id && !events[k].from_override) out.push_back(events[k]);
    }
    return out;
  }
};

TargetState stateOf(const Monitor& m, uint32_t id) {
  return m.states().at(id);
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

TEST_CASE("tcp check: down only after fall failures, up again only after rise successes",
          "[healthcheck]") {
  asio::io_context io;
  Backend backend(io, false);
  Monitor monitor(
      io, {Target{0, "tcp-backend", kLoopback, spec(CheckSpec::Kind::kTcp, backend.port())}},
      options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();

  REQUIRE(runUntil(io, [&] { return rec.probes(0, true) >= 2; }));
  TargetState s = stateOf(monitor, 0);
  CHECK(s.up);
  CHECK(s.usable());
  CHECK(s.rtt_us > 0);
  CHECK(s.consecutive >= 2);
  CHECK(rec.flip(0, 0) == -1);  // started up, stayed up

  backend.close();
  const size_t mark = rec.events.size();
  REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
  const long down = rec.flip(0, mark);
  REQUIRE(down >= 0);
  const Seen& flip = rec.events[down];
  CHECK_FALSE(flip.probe_ok);
  CHECK_FALSE(flip.up);
  CHECK(flip.consecutive == 3);
  CHECK_THAT(flip.error, Catch::Contains("refused"));
  // The two probes before the flip failed too, and left the target up.
  const auto earlier = rec.before(0, down);
  REQUIRE(earlier.size() >= 2);
  CHECK_FALSE(earlier[0].probe_ok);
  CHECK(earlier[0].up);
  CHECK(earlier[0].opposing == 2);
  CHECK_FALSE(earlier[1].probe_ok);
  CHECK(earlier[1].up);
  CHECK(earlier[1].opposing == 1);
  CHECK_FALSE(stateOf(monitor, 0).usable());

  backend.reopen();
  const size_t mark2 = rec.events.size();
  REQUIRE(runUntil(io, [&] { return stateOf(monitor, 0).up; }));
  const long up = rec.flip(0, mark2);
  REQUIRE(up >= 0);
  CHECK(rec.events[up].probe_ok);
  CHECK(rec.events[up].consecutive == 2);
  const auto before_up = rec.before(0, up);
  REQUIRE_FALSE(before_up.empty());
  CHECK(before_up[0].probe_ok);
  CHECK_FALSE(before_up[0].up);  // one success was not enough
  CHECK(before_up[0].opposing == 1);

  const std::string text = monitor.describe();
  CHECK_THAT(text, Catch::Contains("tcp-backend"));
  CHECK_THAT(text, Catch::Contains("127.0.0.1:" + std::to_string(backend.port())));
  CHECK_THAT(text, Catch::Contains("refused"));  // the last error stays visible after recovery
  monitor.stop();
}

TEST_CASE("http check against an IPv6 endpoint", "[healthcheck]") {
  asio::io_context io;
  const auto v6 = asio::ip::make_address("::1");
  {
    // Skip where the machine has no IPv6 loopback.
    tcp::acceptor probe(io);
    boost::system::error_code ec;
    probe.open(tcp::v6(), ec);
    if (!ec) probe.bind(tcp::endpoint(v6, 0), ec);
    if (ec) {
      WARN("::1 unavailable (" << ec.message() << "); IPv6 health check not tested");
      return;
    }
  }
  Backend backend(io, true, nullptr, v6);
  Monitor monitor(io, {Target{0, "v6-web", v6, spec(CheckSpec::Kind::kHttp, backend.port())}},
                  options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  REQUIRE(runUntil(io, [&] { return rec.probes(0, true) >= 2; }));
  CHECK(stateOf(monitor, 0).up);
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK(backend.last_host == "[::1]:" + std::to_string(backend.port()));
  backend.close();
  REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
  CHECK_FALSE(stateOf(monitor, 0).usable());
  monitor.stop();
}

TEST_CASE("http check: status and body expectations", "[healthcheck]") {
  asio::io_context io;
  Backend backend(io, true);
  CheckSpec s = spec(CheckSpec::Kind::kHttp, backend.port());
  s.path = "/health";
  s.expect_status = {200, 203};
  s.expect_body = "ok";
  Monitor monitor(io, {Target{0, "web", kLoopback, s}}, options(false));
  CHECK_FALSE(stateOf(monitor, 0).up);  // initial_up = false: down until rise successes
  monitor.start();

  REQUIRE(runUntil(io, [&] { return stateOf(monitor, 0).up; }));
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK(backend.last_host == "127.0.0.1:" + std::to_string(backend.port()));

  SECTION("a status not in expect_status is a failure") {
    backend.status = 503;
    REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
    CHECK_THAT(stateOf(monitor, 0).last_error, Catch::Contains("HTTP status 503"));
  }
  SECTION("a body without the expected substring is a failure") {
    backend.body = "degraded";
    REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
    CHECK_THAT(stateOf(monitor, 0).last_error, Catch::Contains("body does not contain \"ok\""));
    backend.body = "all ok now";
    REQUIRE(runUntil(io, [&] { return stateOf(monitor, 0).up; }));
  }
  SECTION("another accepted status keeps it up") {
    backend.status = 203;
    backend.body = "ok";
    const size_t seen = backend.requests;
    REQUIRE(runUntil(io, [&] { return backend.requests >= seen + 4; }));
    CHECK(stateOf(monitor, 0).up);
    CHECK(stateOf(monitor, 0).opposing == 0);
  }
}

TEST_CASE("http check sends the configured Host header", "[healthcheck]") {
  asio::io_context io;
  Backend backend(io, true);
  CheckSpec s = spec(CheckSpec::Kind::kHttp, backend.port());
  s.host_header = "svc.example.com";
  Monitor monitor(io, {Target{0, "web", kLoopback, s}}, options(false));
  monitor.start();
  REQUIRE(runUntil(io, [&] { return stateOf(monitor, 0).up; }));
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

  asio::io_context io;
  Backend backend(io, true, &server_tls);
  CheckSpec insecure = spec(CheckSpec::Kind::kHttps, backend.port());
  insecure.expect_body = "service ok";
  CheckSpec verifying = insecure;
  verifying.verify_tls = true;
  CheckSpec plain = spec(CheckSpec::Kind::kHttp, backend.port());  // HTTP to a TLS port
  Monitor monitor(
      io,
      {Target{0, "tls-default", kLoopback, insecure}, Target{1, "tls-verify", kLoopback, verifying},
       Target{2, "plain-to-tls", kLoopback, plain}},
      options(false));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  REQUIRE(runUntil(io, [&] {
    return stateOf(monitor, 0).up && rec.probes(1, false) >= 2 && rec.probes(2, false) >= 2;
  }));
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  // Verification on: a self-signed certificate fails the handshake.
  CHECK_FALSE(stateOf(monitor, 1).up);
  CHECK_THAT(stateOf(monitor, 1).last_error, Catch::Contains("tls handshake"));
  CHECK_FALSE(stateOf(monitor, 2).up);
}

TEST_CASE("dns check: NOERROR is up, another rcode or silence is down", "[healthcheck]") {
  asio::io_context io;
  DnsBackend backend(io);
  CheckSpec s = spec(CheckSpec::Kind::kDns, backend.port());
  s.dns_qname = "health.example.com";
  s.dns_qtype = dns::rrtype::kAAAA;
  s.timeout_ms = 300;
  Monitor monitor(io, {Target{0, "dns-backend", kLoopback, s}}, options(false));
  monitor.start();
  REQUIRE(runUntil(io, [&] { return stateOf(monitor, 0).up; }));
  CHECK(stateOf(monitor, 0).rtt_us > 0);
  CHECK_THAT(monitor.describe(), Catch::Contains("dns health.example.com. AAAA"));

  SECTION("REFUSED") {
    backend.rcode = dns::rcode::kRefused;
    REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
    CHECK(stateOf(monitor, 0).last_error == "rcode REFUSED");
  }
  SECTION("no reply within the timeout") {
    backend.silent = true;
    REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
    CHECK(stateOf(monitor, 0).last_error == "timeout after 300 ms");
  }
}

TEST_CASE("dns check against a closed port fails", "[healthcheck]") {
  asio::io_context io;
  CheckSpec s = spec(CheckSpec::Kind::kDns, unusedPort(io));  // the UDP port is as free as the TCP
  s.fall = 1;
  s.timeout_ms = 300;
  Monitor monitor(io, {Target{0, "nobody", kLoopback, s}}, options(true));
  monitor.start();
  REQUIRE(runUntil(io, [&] { return !stateOf(monitor, 0).up; }));
  CHECK_FALSE(stateOf(monitor, 0).last_error.empty());
}

TEST_CASE("overrides decide usable() whatever the checks say", "[healthcheck]") {
  asio::io_context io;
  Backend live(io, false);
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, unusedPort(io));
  dead.fall = 1;
  Monitor monitor(io,
                  {Target{0, "live", kLoopback, spec(CheckSpec::Kind::kTcp, live.port())},
                   Target{1, "dead", kLoopback, dead}},
                  options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  REQUIRE(runUntil(io, [&] { return rec.probes(0, true) >= 1 && !stateOf(monitor, 1).up; }));
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
  REQUIRE(runUntil(
      io, [&] { return rec.probes(0, true, mark) >= 2 && rec.probes(1, false, mark) >= 2; }));
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

TEST_CASE("stop abandons probes in flight", "[healthcheck]") {
  asio::io_context io;
  DnsBackend backend(io);
  backend.silent = true;
  CheckSpec s = spec(CheckSpec::Kind::kDns, backend.port());
  s.timeout_ms = 600000;  // ten minutes: only stop() can end this probe
  Monitor monitor(io, {Target{0, "silent", kLoopback, s}}, options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  REQUIRE(runUntil(io, [&] { return backend.queries >= 1; }));
  monitor.stop();
  CHECK_FALSE(monitor.running());
  backend.close();  // the backend's receive is the only other work
  // With nothing left the loop runs dry and run_for returns early; a probe still waiting for its
  // ten-minute timeout would keep it busy for the whole 30 s.
  io.restart();
  io.run_for(30s);
  CHECK(io.stopped());
  CHECK(rec.events.empty());  // the abandoned probe recorded nothing
}

TEST_CASE("a Monitor destroyed with probes in flight leaves the loop sound", "[healthcheck]") {
  asio::io_context io;
  DnsBackend backend(io);
  backend.silent = true;
  CheckSpec s = spec(CheckSpec::Kind::kDns, backend.port());
  s.timeout_ms = 600000;
  {
    Monitor monitor(io, {Target{0, "gone", kLoopback, s}}, options(true));
    monitor.start();
    REQUIRE(runUntil(io, [&] { return backend.queries >= 1; }));
  }
  // The abandoned probe and its loop resume after the Monitor is gone, and end.
  backend.close();
  io.restart();
  io.run_for(30s);
  CHECK(io.stopped());
}

TEST_CASE("start after stop resumes probing", "[healthcheck]") {
  asio::io_context io;
  Backend backend(io, false);
  Monitor monitor(io, {Target{0, "tcp", kLoopback, spec(CheckSpec::Kind::kTcp, backend.port())}},
                  options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  monitor.start();  // already running: no second probe loop
  REQUIRE(runUntil(io, [&] { return rec.probes(0, true) >= 2; }));
  monitor.stop();
  io.restart();
  io.run_for(20ms);  // let the cancelled loop finish
  const size_t mark = rec.events.size();
  monitor.start();
  CHECK(monitor.running());
  REQUIRE(runUntil(io, [&] { return rec.probes(0, true, mark) >= 2; }));
  CHECK(stateOf(monitor, 0).probes == rec.events.size());  // one loop: every probe recorded once
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

TEST_CASE("unchecked targets are never probed, stay up, and take overrides", "[healthcheck]") {
  asio::io_context io;
  Backend live(io, false);
  Target unchecked{1, "eu/192.0.2.10", asio::ip::make_address("192.0.2.10"), CheckSpec{}};
  unchecked.checked = false;  // its spec (port 0) would fail validateCheck: it is not looked at
  Target cname{2, "eu/edge.example.net.", {}, CheckSpec{}};
  cname.checked = false;
  Monitor monitor(
      io,
      {Target{0, "live", kLoopback, spec(CheckSpec::Kind::kTcp, live.port())}, unchecked, cname},
      options(true));
  Recorder rec;
  rec.attach(monitor);
  monitor.start();
  CHECK(monitor.running());
  REQUIRE(runUntil(io, [&] { return rec.probes(0, true) >= 3; }));
  for (const Seen& e : rec.events) CHECK(e.id == 0);  // only the checked target is probed
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

TEST_CASE("adoptState carries a verdict and an override into a new Monitor", "[healthcheck]") {
  asio::io_context io;
  Target unchecked{1, "eu/192.0.2.10", asio::ip::make_address("192.0.2.10"), CheckSpec{}};
  unchecked.checked = false;
  // A closed port and fall 100: the verdict cannot come from this Monitor's own probes.
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, unusedPort(io));
  dead.fall = 100;
  Monitor monitor(io, {Target{0, "dead", kLoopback, dead}, unchecked}, options(true));
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

TEST_CASE("a failing target's probes store its word once, at the verdict change", "[healthcheck]") {
  asio::io_context io;
  CheckSpec dead = spec(CheckSpec::Kind::kTcp, unusedPort(io));
  dead.fall = 2;
  Monitor monitor(io, {Target{0, "dead", kLoopback, dead}}, options(true));
  Recorder rec;
  rec.attach(monitor);
  const Verdicts& v = *monitor.verdicts();
  CHECK(v.stores() == 0);
  monitor.start();
  REQUIRE(runUntil(io, [&] { return rec.probes(0, false) >= 8; }));
  monitor.stop();
  // Eight probes, each a new error and new counters on the control side: the workers' word was
  // written once, when the verdict turned down (today's table was copied and republished 8 times).
  CHECK(stateOf(monitor, 0).probes >= 8);
  CHECK_FALSE(stateOf(monitor, 0).last_error.empty());
  CHECK_FALSE(v.usable(0));
  CHECK(v.stores() == 1);
}
