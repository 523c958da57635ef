// app::Runtime with its zone parse held in progress (the parse hook blocks on the pool thread):
// the control loop still answers the control socket, further reload requests are coalesced, the
// `reload` reply waits for the load, and once released the new zone is served over UDP; stopping
// while a parse is in flight joins it cleanly. Real sockets on loopback, real zone files.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <regex>
#include <string>
#include <thread>

#include "app/config.h"
#include "app/runtime.h"
#include "control_client.h"
// After the runtime's headers: ldns (in testutil.h) defines macros that clash with them.
#include "../testutil.h"

using namespace meridian;
namespace fs = std::filesystem;

namespace {

std::string zoneText(int serial, const std::string& extra = "") {
  return "$ORIGIN a.test.\n$TTL 300\n@ IN SOA ns hostmaster " + std::to_string(serial) +
         " 3600 600 86400 300\n@ IN NS ns\nns IN A 192.0.2.1\n" + extra;
}

using test::connectControl;
using test::writeFile;

void sendLine(int fd, const std::string& command) {
  const std::string line = command + "\n";
  REQUIRE(::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
}

// Reads to EOF (the server closes after its one reply).
std::string readAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::string command(const std::string& path, const std::string& cmd) {
  const int fd = connectControl(path);
  REQUIRE(fd >= 0);
  sendLine(fd, cmd);
  return readAll(fd);
}

// The SOA serial of a.test. over UDP from 127.0.0.1:port, or -1.
long soaSerial(uint16_t port) {
  const auto q = test::makeQuery("a.test.", dns::rrtype::kSOA);
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};  // a lost datagram fails the check instead of hanging the test
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  uint8_t buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  if (n <= 0) return -1;
  const auto d = test::decode(buf, static_cast<size_t>(n));
  if (d.answer.empty()) return -1;
  std::smatch m;
  if (!std::regex_search(d.answer[0], m, std::regex(R"(SOA\s+\S+\s+\S+\s+(\d+))"))) return -1;
  return std::stol(m[1]);
}

// A runtime serving a.test. from a temporary directory, run() on its own thread, with a parse hook
// that blocks every parse after the first (start-up's) until release() is called.
struct Harness {
  fs::path dir;
  fs::path zone;
  std::string socket;
  std::unique_ptr<app::Runtime> runtime;
  std::thread thread;
  int rc = -1;
  std::atomic<int> parses{0};
  std::promise<void> entered;
  std::promise<void> released;
  std::shared_future<void> release_f = released.get_future().share();

  Harness() {
    char tmpl[] = "/tmp/meridian-runtime-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    zone = dir / "a.test.zone";
    socket = (dir / "ctl.sock").string();
    writeFile(zone, zoneText(1));
    app::CommandLine cmd;
    cmd.zones = {"a.test.=" + zone.string()};
    cmd.listen = {"127.0.0.1:0"};
    cmd.threads = 1;
    cmd.sets = {"control.socket=" + socket};
    auto config = app::loadConfig(cmd);
    REQUIRE(config.has_value());
    runtime = std::make_unique<app::Runtime>(cmd, std::move(*config));
    runtime->setParseHook([this](const std::string&) {
      if (parses.fetch_add(1) == 1) {  // the first reload's parse
        entered.set_value();
        release_f.wait();
      }
    });
    thread = std::thread([this] { rc = runtime->run(); });
    // Start-up binds the control socket after its first load.
    int fd;
    while ((fd = connectControl(socket)) < 0) std::this_thread::yield();
    ::close(fd);
  }
  void release() { released.set_value(); }
  uint16_t port() {
    std::smatch m;
    const std::string st = command(socket, "status");
    REQUIRE(std::regex_search(st, m, std::regex(R"(listening 127\.0\.0\.1:(\d+))")));
    return static_cast<uint16_t>(std::stoi(m[1]));
  }
  void stop() {
    runtime->requestStop();
    thread.join();
  }
  ~Harness() {
    if (thread.joinable()) {
      try {
        release();
      } catch (...) {
      }
      stop();
    }
    runtime.reset();
    fs::remove_all(dir);
  }
};

}  // namespace

TEST_CASE("a reload whose zone parse is held keeps the control loop answering", "[runtime]") {
  Harness h;
  const uint16_t port = h.port();
  REQUIRE(soaSerial(port) == 1);
  writeFile(h.zone, zoneText(2, "new IN A 192.0.2.2\n"));
  const int first = connectControl(h.socket);
  REQUIRE(first >= 0);
  sendLine(first, "reload");
  h.entered.get_future().wait();  // the parse is running on the pool, and held

  // The control loop is not blocked: status answers, saying a reload is in progress, and the old
  // zone still serves.
  const std::string during = command(h.socket, "status");
  CHECK(during.rfind("ok\n", 0) == 0);
  CHECK(during.find("reload in progress") != std::string::npos);
  CHECK(during.find("zone a.test. serial 1 ") != std::string::npos);
  CHECK(soaSerial(port) == 1);
  // Two more requests while it runs: coalesced into one more load.
  const int second = connectControl(h.socket);
  const int third = connectControl(h.socket);
  REQUIRE(second >= 0);
  REQUIRE(third >= 0);
  sendLine(second, "reload");
  sendLine(third, "reload");
  // A round trip through the loop after both were read (one connection at a time is accepted and
  // read in order, so by the time status answers, both reloads were requested).
  std::string queued;
  do {
    queued = command(h.socket, "status");
  } while (queued.find("another queued") == std::string::npos &&
           queued.find("reloads 3") == std::string::npos);
  CHECK(queued.find("reload in progress, another queued") != std::string::npos);

  h.release();
  // The first reply comes once the held load is published: it loaded the new file.
  const std::string reply = readAll(first);
  CHECK(reply == "ok 1 zone(s) loaded, 0 unchanged, 0 failed\n");
  CHECK(soaSerial(port) == 2);
  // The coalesced ones share one more load, which found nothing new.
  const std::string r2 = readAll(second);
  const std::string r3 = readAll(third);
  CHECK(r2 == "ok 0 zone(s) loaded, 1 unchanged, 0 failed\n");
  CHECK(r3 == r2);
  const std::string after = command(h.socket, "status");
  // Start-up, the held reload and one for the two coalesced requests.
  CHECK(after.find("reloads 3 (loads run 3)") != std::string::npos);
  CHECK(after.find("reload in progress") == std::string::npos);
  CHECK(h.parses.load() == 2);
  h.stop();
  CHECK(h.rc == 0);
}

TEST_CASE("a broken zone reloaded on the pool keeps serving its previous version", "[runtime]") {
  Harness h;
  h.release();  // nothing is held in this test
  const uint16_t port = h.port();
  writeFile(h.zone, zoneText(2, "broken IN A not-an-address\n"));
  const std::string reply = command(h.socket, "reload");
  CHECK(reply.rfind("error 0 zone(s) loaded, 0 unchanged, 1 failed\n", 0) == 0);
  CHECK(reply.find("a.test.zone:6") != std::string::npos);
  CHECK(soaSerial(port) == 1);
  h.stop();
  CHECK(h.rc == 0);
}

TEST_CASE("stopping while a zone parse is in flight joins it and exits cleanly", "[runtime]") {
  Harness h;
  writeFile(h.zone, zoneText(2));
  const int fd = connectControl(h.socket);
  REQUIRE(fd >= 0);
  sendLine(fd, "reload");
  h.entered.get_future().wait();
  h.runtime->requestStop();
  // run() is now waiting in the pool's join for the held parse; let it finish.
  h.release();
  h.thread.join();
  CHECK(h.rc == 0);
  // The reload's completion never ran: the client gets no reply, just the closed connection.
  CHECK(readAll(fd).empty());
}

TEST_CASE("start-up parses several zones in parallel on the pool", "[runtime]") {
  char tmpl[] = "/tmp/meridian-runtime-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const fs::path dir = tmpl;
  writeFile(dir / "a.zone", zoneText(1));
  app::CommandLine cmd;
  writeFile(dir / "b.zone",
            "$ORIGIN b.test.\n$TTL 300\n@ IN SOA ns hostmaster 7 3600 600 86400 "
            "300\n@ IN NS ns\nns IN A 192.0.2.1\n");
  cmd.zones = {"a.test.=" + (dir / "a.zone").string(), "b.test.=" + (dir / "b.zone").string()};
  cmd.listen = {"127.0.0.1:0"};
  cmd.threads = 1;
  const std::string socket = (dir / "ctl.sock").string();
  cmd.sets = {"control.socket=" + socket};
  auto config = app::loadConfig(cmd);
  REQUIRE(config.has_value());
  app::Runtime runtime(cmd, std::move(*config));
  // Each parse waits until the other has started: parsed one after the other, start-up would
  // never finish.
  std::latch both(2);
  std::atomic<int> parses{0};
  std::atomic<std::thread::id> threads[2];
  runtime.setParseHook([&](const std::string&) {
    const int i = parses.fetch_add(1);
    if (i < 2) {
      threads[i].store(std::this_thread::get_id());
      both.arrive_and_wait();
    }
  });
  int rc = -1;
  std::thread t([&] { rc = runtime.run(); });
  int fd;
  while ((fd = connectControl(socket)) < 0) std::this_thread::yield();
  ::close(fd);
  const std::string st = command(socket, "status");
  CHECK(st.find("zone a.test. serial 1 ") != std::string::npos);
  CHECK(st.find("zone b.test. serial 7 ") != std::string::npos);
  CHECK(parses.load() == 2);
  CHECK(threads[0].load() != threads[1].load());
  CHECK(threads[0].load() != t.get_id());
  runtime.requestStop();
  t.join();
  CHECK(rc == 0);
  fs::remove_all(dir);
}
