// Recursion access control in the pipeline (server/recursion.h): who gets Pending, REFUSED with
// EDE 18 or 20, RA=1; and the Recursor's reply built from an upstream message
// (server/recursor.h): the client's ID and question, the upstream's records without its OPT, our
// OPT, TC=1 when it does not fit, SERVFAIL with EDE 22/23 without an answer.
#include <catch2/catch.hpp>

#include "../testutil.h"
#include "server/pipeline.h"
#include "server/recursor.h"
#include "serving.h"
#include "zones/loader.h"

using namespace meridian;
namespace rr = dns::rrtype;

namespace {

const char* kZone = R"(
$ORIGIN example.com.
$TTL 3600
@    IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@    NS   ns1
ns1  A    192.0.2.1
www  A    192.0.2.10
)";

server::Peer peerV4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  server::Peer p;
  p.known = true;
  p.address[0] = a;
  p.address[1] = b;
  p.address[2] = c;
  p.address[3] = d;
  return p;
}

// The INFO-CODE of the first EDE option in raw OPT data, or -1.
int edeOf(const std::string& opt) {
  for (size_t i = 0; i + 4 <= opt.size();) {
    const auto* p = reinterpret_cast<const uint8_t*>(opt.data()) + i;
    const uint16_t code = dns::readU16(p);
    const uint16_t len = dns::readU16(p + 2);
    if (code == dns::edns_option::kExtendedError && len >= 2 && i + 6 <= opt.size()) {
      return dns::readU16(p + 4);
    }
    i += 4 + len;
  }
  return -1;
}

struct Fixture {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  std::unique_ptr<server::QueryHandler> handler;
  uint8_t out[65535];
  size_t len = 0;

  explicit Fixture(bool recursion) {
    auto z = zones::loadZoneText("example.com", kZone);
    REQUIRE_OK(z);
    auto s = std::make_shared<server::ServingState>();
    s->zones = zones::ZoneSet({z->zone});
    if (recursion) {
      auto r = std::make_shared<server::RecursionSettings>(server::RecursionSettings::defaults());
      r->enabled = true;
      s->protocol.recursion = r;
    }
    state.publish(s);
    handler = std::make_unique<server::QueryHandler>(state);
  }
  test::Decoded ask(const std::string& name, const server::Peer& peer, bool rd = true) {
    test::QueryOptions o;
    o.edns = true;
    o.flags = rd ? dns::flag::kRD : 0;
    auto q = test::makeQuery(name, rr::kA, o);
    len = handler->handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp, peer);
    return test::decode(out, len);
  }
  [[nodiscard]] bool ra() const { return len > 3 && (out[3] & 0x80) != 0; }
};

}  // namespace

TEST_CASE("recursion ACL: the defaults allow loopback only", "[recursion]") {
  const auto s = server::RecursionSettings::defaults();
  const uint8_t v4_loop[4] = {127, 1, 2, 3};
  const uint8_t v4_other[4] = {10, 0, 0, 1};
  uint8_t v6_loop[16] = {};
  v6_loop[15] = 1;
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1};
  uint8_t v6_other[16] = {0x20, 0x01, 0x0d, 0xb8};
  CHECK(s.allows(v4_loop, false));
  CHECK_FALSE(s.allows(v4_other, false));
  CHECK(s.allows(v6_loop, true));
  CHECK(s.allows(mapped, true));
  CHECK_FALSE(s.allows(v6_other, true));
  CHECK_FALSE(s.enabled);
}

TEST_CASE("recursion in the pipeline: pending, refused with EDE, RA", "[recursion]") {
  const auto allowed = peerV4(127, 0, 0, 1);
  const auto outside = peerV4(192, 0, 2, 77);

  SECTION("off: names not served here are REFUSED, without EDE or RA") {
    Fixture f(false);
    auto d = f.ask("www.example.org.", allowed);
    CHECK(d.rcode == dns::rcode::kRefused);
    CHECK(edeOf(d.opt_data) == -1);
    CHECK_FALSE(f.ra());
    CHECK(f.handler->outcome() == server::Outcome::kAnswered);
  }
  SECTION("an allowed client's recursive question is left pending") {
    Fixture f(true);
    auto d = f.ask("www.example.org.", allowed);
    CHECK(f.len == 0);
    CHECK(f.handler->outcome() == server::Outcome::kPending);
    CHECK(f.handler->counters().pending.load() == 1);
  }
  SECTION("a client outside allow gets REFUSED with EDE 18 (Prohibited)") {
    Fixture f(true);
    auto d = f.ask("www.example.org.", outside);
    CHECK(d.rcode == dns::rcode::kRefused);
    CHECK(edeOf(d.opt_data) == server::ede::kProhibited);
    CHECK_FALSE(f.ra());
    CHECK(f.handler->outcome() == server::Outcome::kAnswered);
  }
  SECTION("RD=0 for a name not served here is refused with EDE 20 (no cache yet)") {
    Fixture f(true);
    auto d = f.ask("www.example.org.", allowed, false);
    CHECK(d.rcode == dns::rcode::kRefused);
    CHECK(edeOf(d.opt_data) == server::ede::kNotAuthoritative);
    CHECK(f.ra());
  }
  SECTION("served names come from the zone, AA=1, for allowed clients with RA=1") {
    Fixture f(true);
    auto d = f.ask("www.example.com.", allowed);
    CHECK(d.rcode == 0);
    CHECK(d.aa);
    CHECK(f.ra());
    CHECK(d.answer == std::vector<std::string>{"www.example.com. 3600 IN A 192.0.2.10"});
    auto o = f.ask("www.example.com.", outside);
    CHECK(o.aa);
    CHECK_FALSE(f.ra());
    CHECK(edeOf(o.opt_data) == -1);
  }
}

namespace {

// An upstream reply to "www.example.org. A": one A record whose owner is a compression pointer
// to the question, the upstream's OPT (payload 4096) last.
std::vector<uint8_t> upstreamReply(uint16_t rcode) {
  auto m = test::makeQuery("www.example.org.", rr::kA);
  dns::writeU16(m.data(), 0xBEEF);
  dns::writeU16(m.data() + 2,
                static_cast<uint16_t>(dns::flag::kQR | dns::flag::kRD | dns::flag::kRA | rcode));
  dns::writeU16(m.data() + 6, 1);
  dns::writeU16(m.data() + 10, 1);
  const uint8_t a[] = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 198, 51, 100, 7};
  m.insert(m.end(), a, a + sizeof a);
  const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
  m.insert(m.end(), opt, opt + sizeof opt);
  return m;
}

struct Built {
  size_t len = 0;
  uint8_t out[65535];
  test::Decoded d;
};

std::unique_ptr<Built> build(const std::vector<uint8_t>& client, server::Transport t,
                             const resolver::ForwardResult* up, uint16_t ede_code) {
  server::PendingQuery p;
  p.query = client;
  p.transport = t;
  p.max_udp_payload = 1232;
  dns::Query q;
  REQUIRE(dns::parseQuery(client.data(), client.size(), q) == dns::ParseStatus::kOk);
  auto b = std::make_unique<Built>();
  b->len = server::Recursor::buildReply(p, q, up, ede_code, b->out);
  b->d = test::decode(b->out, b->len);
  return b;
}

}  // namespace

TEST_CASE("the Recursor's reply from an upstream answer", "[recursion]") {
  test::QueryOptions o;
  o.edns = true;
  o.id = 0x4242;
  o.flags = dns::flag::kRD;
  o.payload = 4096;
  const auto client = test::makeQuery("WwW.eXample.ORG.", rr::kA, o);

  SECTION("client's ID and question case, RA=1, the records, our OPT instead of theirs") {
    const auto up = upstreamReply(0);
    resolver::ForwardResult r{resolver::ForwardStatus::kAnswer, up.data(), up.size()};
    auto b = build(client, server::Transport::kUdp, &r, server::ede::kNone);
    REQUIRE(b->d.ok);
    CHECK(b->d.id == 0x4242);
    CHECK(b->d.rd);
    CHECK_FALSE(b->d.aa);
    CHECK((b->out[3] & 0x80) != 0);
    CHECK(b->d.question == std::vector<std::string>{"WwW.eXample.ORG. IN A"});
    CHECK(b->d.answer == std::vector<std::string>{"WwW.eXample.ORG. 3600 IN A 198.51.100.7"});
    CHECK(b->d.has_opt);
    CHECK(b->d.opt_payload == 1232);        // ours, not the upstream's 4096
    CHECK(dns::readU16(b->out + 10) == 1);  // ARCOUNT: our OPT only
  }
  SECTION("an upstream REFUSED is passed on as it came") {
    const auto up = upstreamReply(dns::rcode::kRefused);
    resolver::ForwardResult r{resolver::ForwardStatus::kAnswer, up.data(), up.size()};
    auto b = build(client, server::Transport::kUdp, &r, server::ede::kNone);
    CHECK(b->d.rcode == dns::rcode::kRefused);
  }
  SECTION("no answer: SERVFAIL with the EDE given") {
    auto b = build(client, server::Transport::kUdp, nullptr, server::ede::kNoReachableAuthority);
    CHECK(b->d.rcode == dns::rcode::kServFail);
    CHECK(edeOf(b->d.opt_data) == server::ede::kNoReachableAuthority);
    CHECK((b->out[3] & 0x80) != 0);
  }
  SECTION("a malformed upstream reply is a network error") {
    auto up = upstreamReply(0);
    up.resize(up.size() - 14);  // cuts into the A record
    resolver::ForwardResult r{resolver::ForwardStatus::kAnswer, up.data(), up.size()};
    auto b = build(client, server::Transport::kUdp, &r, server::ede::kNone);
    CHECK(b->d.rcode == dns::rcode::kServFail);
    CHECK(edeOf(b->d.opt_data) == server::ede::kNetworkError);
  }
  SECTION("too large for the client's UDP size: TC=1 over UDP, whole over TCP") {
    auto up = upstreamReply(0);
    up.resize(up.size() - 11);  // without its OPT
    dns::writeU16(up.data() + 10, 0);
    // 60 more A records: 60 x 16 octets, well past a 512-octet client.
    const uint8_t a[] = {0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 198, 51, 100, 0};
    for (int i = 1; i <= 60; ++i) {
      up.insert(up.end(), a, a + sizeof a);
      up.back() = static_cast<uint8_t>(i);
    }
    dns::writeU16(up.data() + 6, 61);
    resolver::ForwardResult r{resolver::ForwardStatus::kAnswer, up.data(), up.size()};
    const auto small = test::makeQuery("www.example.org.", rr::kA);  // no EDNS: 512
    auto u = build(small, server::Transport::kUdp, &r, server::ede::kNone);
    CHECK(u->d.tc);
    CHECK(u->d.answer.empty());
    auto t = build(small, server::Transport::kTcp, &r, server::ede::kNone);
    CHECK_FALSE(t->d.tc);
    CHECK(t->d.answer.size() == 61);
  }
}
