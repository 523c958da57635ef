// The Recursor's bookkeeping (server/recursor.h) against a loopback upstream that never answers:
// the per-client limit drops the question over it, identical questions share one upstream query,
// and stopping completes what is in flight with SERVFAIL, so every parked query is accounted for.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "../testutil.h"
#include "server/recursor.h"

using namespace meridian;

namespace {

struct BlackHole {
  int fd = -1;
  uint16_t port = 0;
  BlackHole() {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
  }
  ~BlackHole() { ::close(fd); }
};

struct Replies {
  std::mutex m;
  std::vector<test::Decoded> got;
};

std::unique_ptr<server::PendingQuery> parked(
    const std::shared_ptr<const server::RecursionSettings>& s, uint8_t last_octet, uint16_t id,
    Replies& replies) {
  auto p = std::make_unique<server::PendingQuery>();
  test::QueryOptions o;
  o.edns = true;
  o.id = id;
  o.flags = dns::flag::kRD;
  p->query = test::makeQuery("www.example.org.", dns::rrtype::kA, o);
  p->peer.known = true;
  p->peer.address[0] = 127;
  p->peer.address[3] = last_octet;
  p->transport = server::Transport::kTcp;
  p->settings = s;
  p->deliver = [&replies](const uint8_t* m, size_t n) {
    std::lock_guard<std::mutex> l(replies.m);
    replies.got.push_back(test::decode(m, n));
  };
  return p;
}

template <typename F>
bool eventually(F f) {
  // Not a timing threshold: a bound on how long a broken build may hang the test.
  for (int i = 0; i < 1000 && !f(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return f();
}

}  // namespace

TEST_CASE("Recursor: per-client limit, shared upstream query, stop answers what is parked",
          "[recursion]") {
  BlackHole upstream;
  auto s = std::make_shared<server::RecursionSettings>(server::RecursionSettings::defaults());
  s->enabled = true;
  s->max_outstanding_per_client = 2;
  s->forward.push_back({std::string(1, '\0'), {"127.0.0.1:" + std::to_string(upstream.port)}});
  Replies replies;
  server::Recursor rec;
  rec.start();
  rec.submit(parked(s, 1, 1, replies));
  rec.submit(parked(s, 1, 2, replies));
  rec.submit(parked(s, 1, 3, replies));  // a third from 127.0.0.1: over the limit of 2
  rec.submit(parked(s, 2, 4, replies));  // another client: within its own limit
  REQUIRE(eventually([&] { return rec.totals().over_limit == 1; }));
  REQUIRE(eventually([&] { return rec.totals().shared == 2; }));
  const auto t = rec.totals();
  CHECK(t.submitted == 4);
  CHECK(t.upstream_queries == 1);  // the three accepted identical questions, one upstream query
  CHECK(t.answered == 0);          // the upstream is silent
  rec.stop();
  // Stopping completes the three parked questions with SERVFAIL; the dropped one gets nothing.
  std::lock_guard<std::mutex> l(replies.m);
  REQUIRE(replies.got.size() == 3);
  for (const auto& d : replies.got) {
    CHECK(d.rcode == dns::rcode::kServFail);
    CHECK(d.id != 3);
  }
  CHECK(rec.totals().answered == 3);
}
