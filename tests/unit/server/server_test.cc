// Listen addresses: the text forms parseListenAddress accepts and refuses, and Server::start's
// refusal of an address another process holds (even with SO_REUSEPORT), on loopback sockets.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include "../testutil.h"
#include "server/server.h"
#include "zones/loader.h"

using namespace meridian;

TEST_CASE("parseListenAddress needs a port and brackets for IPv6", "[listener]") {
  struct Good {
    const char* text;
    const char* shown;
    uint16_t port;
  };
  for (const Good& g : {Good{"127.0.0.1:53", "127.0.0.1:53", 53}, Good{"[::1]:53", "[::1]:53", 53},
                        Good{"0.0.0.0:5300", "0.0.0.0:5300", 5300},
                        Good{"[2001:db8::1]:65535", "[2001:db8::1]:65535", 65535},
                        Good{"127.0.0.1:0", "127.0.0.1:0", 0}}) {
    INFO(g.text);
    auto la = server::parseListenAddress(g.text);
    REQUIRE(la.has_value());
    CHECK(la->port == g.port);
    CHECK(la->text() == g.shown);
  }
  struct Bad {
    const char* text;
    const char* says;
  };
  for (const Bad& b :
       {Bad{"127.0.0.1", "a port is required, e.g. 127.0.0.1:53"},
        Bad{"[::1]", "a port is required, e.g. [::1]:53"}, Bad{"::1", "brackets"},
        Bad{"::1:53", "brackets"}, Bad{"127.0.0.1:", "bad port"}, Bad{"127.0.0.1:+53", "bad port"},
        Bad{"127.0.0.1: 53", "bad port"}, Bad{"127.0.0.1:65536", "> 65535"},
        Bad{"127.0.0.1:123456", "bad port"}, Bad{"[::1]53", "bad listen address"},
        Bad{"[::1:53", "missing ']'"}, Bad{"localhost:53", "not an IP address"}}) {
    INFO(b.text);
    auto la = server::parseListenAddress(b.text);
    REQUIRE_FALSE(la.has_value());
    CHECK_THAT(la.error().message, Catch::Contains(b.says));
  }
}

namespace {

// A loopback IPv4 socket of `type`, bound (with SO_REUSEPORT if asked) to an ephemeral port.
struct Holder {
  int fd = -1;
  uint16_t port = 0;
  Holder(int type, bool reuseport) {
    fd = ::socket(AF_INET, type, 0);
    const int one = 1;
    if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    if (type == SOCK_STREAM) REQUIRE(::listen(fd, 4) == 0);
    socklen_t len = sizeof sa;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    port = ntohs(sa.sin_port);
  }
  ~Holder() { ::close(fd); }
};

server::ServerSettings settingsFor(uint16_t port) {
  server::ServerSettings s;
  s.listen.push_back(*server::parseListenAddress("127.0.0.1:" + std::to_string(port)));
  s.threads = 2;
  return s;
}

}  // namespace

TEST_CASE("Server::start refuses an address another socket holds", "[listener]") {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  struct Case {
    const char* what;
    int type;
    bool reuseport;
    const char* proto;
  };
  for (const Case& c : {Case{"plain UDP", SOCK_DGRAM, false, "(UDP)"},
                        Case{"UDP with SO_REUSEPORT", SOCK_DGRAM, true, "(UDP)"},
                        Case{"listening TCP", SOCK_STREAM, false, "(TCP)"},
                        Case{"listening TCP with SO_REUSEPORT", SOCK_STREAM, true, "(TCP)"}}) {
    INFO(c.what);
    Holder h(c.type, c.reuseport);
    server::Server srv(state, settingsFor(h.port));
    auto r = srv.start();
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error().message, Catch::Contains("address in use"));
    CHECK_THAT(r.error().message, Catch::Contains("127.0.0.1:" + std::to_string(h.port)));
    CHECK_THAT(r.error().message, Catch::Contains(c.proto));
  }
}

TEST_CASE("a second Server on the same address is refused; port 0 becomes one port", "[listener]") {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  server::Server first(state, settingsFor(0));
  REQUIRE(first.start().has_value());
  const uint16_t port = first.listening().at(0).port;
  CHECK(port != 0);
  // Its UDP and TCP sockets are on that port: nobody else can bind it without SO_REUSEPORT.
  for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
    const int fd = ::socket(AF_INET, type, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0);
    ::close(fd);
  }
  server::Server second(state, settingsFor(port));
  auto r = second.start();
  REQUIRE_FALSE(r.has_value());
  CHECK_THAT(r.error().message, Catch::Contains("address in use"));
  first.stop();
}

// UDP sockets are served by threads blocked in recvmmsg (server/server.cc, UdpThread). Each
// has its own QueryHandler, so their answers must reach Server::totals(); and stop() must wake
// every one of them out of its blocking receive and return.
TEST_CASE("UDP threads answer, count, and stop while blocked in recvmmsg", "[listener]") {
  auto z = zones::loadZoneText("example.com",
                               "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\n"
                               "ns1 A 192.0.2.1\nwww A 192.0.2.3\n");
  REQUIRE(z.has_value());
  auto st = std::make_shared<server::ServingState>();
  st->zones = zones::ZoneSet({z->zone});
  Published<server::ServingState> state{st};
  server::ServerSettings settings;
  // Two addresses, three workers: six UDP threads.
  settings.listen.push_back(*server::parseListenAddress("127.0.0.1:0"));
  settings.listen.push_back(*server::parseListenAddress("127.0.0.2:0"));
  settings.threads = 3;
  auto srv = std::make_unique<server::Server>(state, settings);
  auto started = srv->start();
  REQUIRE(started.has_value());

  // Several client sockets per address, so SO_REUSEPORT spreads them over the workers.
  const auto q = test::makeQuery("www.example.com.", dns::rrtype::kA);
  int answered = 0;
  for (const auto& la : srv->listening()) {
    for (int c = 0; c < 8; ++c) {
      const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
      const timeval tv{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(la.port);
      std::memcpy(&sa.sin_addr, la.address.to_v4().to_bytes().data(), 4);
      REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
      REQUIRE(::send(fd, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
      uint8_t buf[512];
      const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        const auto d = test::decode(buf, static_cast<size_t>(r));
        if (d.ok && d.rcode == 0 && d.aa) ++answered;
      }
      ::close(fd);
    }
  }
  CHECK(answered == 16);
  const auto t = srv->totals();
  CHECK(t.queries == 16);
  CHECK(t.rcodes[0] == 16);

  // Every UDP thread is idle in recvmmsg now. stop() runs on another thread so that a hang fails
  // the test instead of blocking it (the bound is generous, not a timing threshold).
  std::promise<void> done;
  auto stopped = done.get_future();
  std::thread stopper([&] {
    srv->stop();
    done.set_value();
  });
  const bool returned = stopped.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  if (!returned) {  // leak the server rather than hang the suite in its destructor
    stopper.detach();
    (void)srv.release();
  }
  REQUIRE(returned);
  stopper.join();
  // Nothing answers after stop().
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  const timeval tv{0, 300000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(srv->listening()[0].port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  uint8_t buf[512];
  CHECK(::recv(fd, buf, sizeof buf, 0) < 0);
  ::close(fd);
  srv.reset();
}
