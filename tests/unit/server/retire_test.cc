// Reloads under a running Server (issue #7, snapshot lifecycle): an old serving snapshot is freed
// on the control (test) thread once both workers have passed a quiescent point, even when one of
// them gets no queries at all; never inside a query on a worker, and never pinned by an idle one.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "../testutil.h"
#include "server/server.h"

using namespace meridian;

namespace {

struct Deaths {
  std::atomic<int> live{0};
  std::mutex mutex;
  std::vector<std::thread::id> threads;  // where each snapshot was destroyed
};

std::shared_ptr<const server::ServingState> makeState(Deaths& d, int n) {
  d.live.fetch_add(1);
  auto* s = new server::ServingState;
  s->protocol.nsid = "snapshot-" + std::to_string(n);
  return std::shared_ptr<const server::ServingState>(s, [&d](const server::ServingState* p) {
    {
      std::lock_guard<std::mutex> lock(d.mutex);
      d.threads.push_back(std::this_thread::get_id());
    }
    delete p;
    d.live.fetch_sub(1);
  });
}

// Reclaims until nothing is left retired. Polls (not a timing threshold: the bound is generous);
// normally done within one quiescent period of the workers (100 ms).
void reclaimAll(QuiescentDomain& domain) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (domain.reclaim() != 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

TEST_CASE("reloads under load: old snapshots are freed on the control thread, idle workers too",
          "[snapshot][listener]") {
  QuiescentDomain domain;
  Deaths deaths;
  Published<server::ServingState> state(makeState(deaths, 0), domain);
  server::ServerSettings settings;
  settings.listen.push_back(*server::parseListenAddress("127.0.0.1:0"));
  settings.threads = 2;
  server::Server srv(state, settings);
  REQUIRE(srv.start().has_value());
  const uint16_t port = srv.listening().at(0).port;

  // One client socket: SO_REUSEPORT hashes its 4-tuple to one worker, so the other stays idle.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> answers{0};
  std::thread client([&] {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
    uint8_t buf[512];
    while (!stop.load()) {
      if (::send(fd, q.data(), q.size(), 0) < 0) continue;
      if (::recv(fd, buf, sizeof buf, 0) > 0) answers.fetch_add(1);
    }
    ::close(fd);
  });
  // Joined on every way out, a failed REQUIRE included.
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop, client};
  // The busy worker answers before the first reload (generous bound).
  const auto start_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answers.load() == 0 && std::chrono::steady_clock::now() < start_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(answers.load() > 0);
  const auto me = std::this_thread::get_id();
  for (int n = 1; n <= 20; ++n) {
    state.publish(makeState(deaths, n));
    reclaimAll(domain);
    INFO("reload " << n);
    REQUIRE(deaths.live.load() == 1);
  }
  stop = true;
  client.join();
  srv.stop();
  CHECK(answers.load() > 0);
  std::lock_guard<std::mutex> lock(deaths.mutex);
  REQUIRE(deaths.threads.size() == 20);
  for (const auto& t : deaths.threads) CHECK(t == me);
}

// No query at all: every UDP thread stays blocked in recvmmsg and the worker loops see no TCP. Each
// must still pass quiescent points (the UDP threads when their receive timeout expires), or the
// first reload would stay pinned for as long as the server is idle.
TEST_CASE("reloads with no queries at all: idle UDP threads do not pin old snapshots",
          "[snapshot][listener]") {
  QuiescentDomain domain;
  Deaths deaths;
  Published<server::ServingState> state(makeState(deaths, 0), domain);
  server::ServerSettings settings;
  settings.listen.push_back(*server::parseListenAddress("127.0.0.1:0"));
  settings.listen.push_back(*server::parseListenAddress("127.0.0.2:0"));
  settings.threads = 2;
  server::Server srv(state, settings);
  REQUIRE(srv.start().has_value());
  const auto me = std::this_thread::get_id();
  for (int n = 1; n <= 5; ++n) {
    state.publish(makeState(deaths, n));
    reclaimAll(domain);
    INFO("reload " << n);
    REQUIRE(deaths.live.load() == 1);
  }
  srv.stop();
  // Waking the threads to stop is not a query (shutdown() makes recvmmsg report an empty one).
  CHECK(srv.totals().queries == 0);
  std::lock_guard<std::mutex> lock(deaths.mutex);
  REQUIRE(deaths.threads.size() == 5);
  for (const auto& t : deaths.threads) CHECK(t == me);
}
