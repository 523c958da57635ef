// Steered names among their neighbours, through the whole query pipeline: CNAME and DNAME chains
// that reach a service (same zone, another served zone, through a wildcard), the other types at a
// service's name, and the ECS scope of answers reached through a chain.
#include <catch2/catch.hpp>

#include "../georoute/steering_fixture.h"
#include "../testutil.h"
#include "georoute/compile.h"
#include "server/pipeline.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

using namespace meridian;
namespace rr = dns::rrtype;

namespace {

const char* kCom = R"(
$ORIGIN example.com.
$TTL 300
@       SOA   ns hostmaster 1 7200 3600 1209600 300
@       NS    ns
ns      A     192.0.2.1
www     3600  A 192.0.2.99
www     AAAA  2001:db8::99
www     MX    10 ns
www     TXT   "static"
alias   60    CNAME www
alias2  CNAME alias
*.wild  CNAME www
api     A     192.0.2.98
sub     NS    ns.sub
ns.sub  A     192.0.2.53
tosub   60    CNAME www.sub
dsub    60    DNAME sub.example.com.
*.geo   A     192.0.2.96
togeo   CNAME bar.geo
many    A     192.0.2.95
tomany  CNAME many
)";

// A child zone served beside its parent, holding a service of its own.
const char* kSub = R"(
$ORIGIN sub.example.com.
$TTL 300
@    SOA   ns hostmaster 1 7200 3600 1209600 300
@    NS    ns
ns   A     192.0.2.53
www  A     192.0.2.97
)";

const char* kNet = R"(
$ORIGIN example.net.
$TTL 300
@     SOA   ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@     NS    ns.example.com.
cust  120   CNAME www.example.com.
other CNAME api.example.com.
)";

const char* kOrg = R"(
$ORIGIN example.org.
$TTL 300
@    SOA   ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@    NS    ns.example.com.
x    90    DNAME example.com.
)";

// ECS option (RFC 7871 §6) for an IPv4 /32.
std::vector<uint8_t> ecs(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 8, 0, 8, 0, 1, 32, 0, a, b, c, d};
}

struct Fixture {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  std::unique_ptr<server::QueryHandler> handler;
  uint8_t out[65535];

  Fixture() {
    std::vector<std::shared_ptr<const zones::Zone>> list;
    for (auto [origin, text] :
         {std::pair{"example.com", kCom}, std::pair{"example.net", kNet},
          std::pair{"example.org", kOrg}, std::pair{"sub.example.com", kSub}}) {
      auto z = zones::loadZoneText(origin, text);
      REQUIRE_OK(z);
      list.push_back(z->zone);
    }
    auto s = std::make_shared<server::ServingState>();
    s->zones = zones::ZoneSet(list);
    georoute::SteeringConfig cfg;
    cfg.regions = {{"eu", 50.1, 8.7, 0}, {"us", 39.0, -77.5, 0}};
    georoute::ServiceConfig svc;
    svc.name = "www.example.com";
    svc.where = "test";
    svc.ttl = 20;
    svc.policy = {"geo"};
    svc.geo.default_list = {"us"};
    svc.geo.cidr = {{"192.0.2.0/24", {"eu"}}, {"198.51.100.0/24", {"us"}}};
    svc.pools = {test::pool("eu", "203.0.113.1"), test::pool("us", "203.0.113.2")};
    cfg.services.push_back(svc);
    svc.name = "www.sub.example.com";
    svc.ttl = 21;
    svc.pools = {test::pool("eu", "203.0.113.11"), test::pool("us", "203.0.113.12")};
    cfg.services.push_back(svc);
    svc.name = "many.example.com";
    svc.ttl = 23;
    svc.pools = {test::pool("eu", "203.0.113.30"), test::pool("us", "203.0.113.31")};
    for (int i = 1; i < 40; ++i) {
      svc.pools[1].endpoints.push_back(svc.pools[1].endpoints[0]);  // us, the default
      svc.pools[1].endpoints.back().address = "203.0.114." + std::to_string(i);
    }
    cfg.services.push_back(svc);
    svc.name = "*.geo.example.com";
    svc.ttl = 22;
    svc.pools = {test::pool("eu", "203.0.113.21"), test::pool("us", "203.0.113.22")};
    cfg.services.push_back(svc);
    auto compiled = georoute::compileSteering(cfg, server::zoneLocator(s->zones), nullptr);
    REQUIRE_OK(compiled);
    s->services = compiled->services;
    state.publish(s);
    handler = std::make_unique<server::QueryHandler>(state);
  }

  test::Decoded ask(const std::string& name, uint16_t type, std::vector<uint8_t> options = {},
                    bool edns = true) {
    test::QueryOptions o;
    o.edns = edns;
    o.options = std::move(options);
    auto q = test::makeQuery(name, type, o);
    const size_t n = handler->handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp);
    return test::decode(out, n);
  }
};

// The ECS SCOPE PREFIX-LENGTH of a reply's OPT, or -1 without an ECS option.
int scopeOf(const test::Decoded& d) {
  const std::string& o = d.opt_data;
  for (size_t i = 0; i + 4 <= o.size();) {
    const unsigned code = (static_cast<uint8_t>(o[i]) << 8) | static_cast<uint8_t>(o[i + 1]);
    const unsigned len = (static_cast<uint8_t>(o[i + 2]) << 8) | static_cast<uint8_t>(o[i + 3]);
    if (code == 8 && len >= 4) return static_cast<uint8_t>(o[i + 7]);
    i += 4 + len;
  }
  return -1;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("a CNAME chain that reaches a steered name ends in the steered answer", "[steering]") {
  Fixture f;
  const std::string eu = "www.example.com. 20 IN A 203.0.113.1";
  const std::string us = "www.example.com. 20 IN A 203.0.113.2";
  const std::string alias = "alias.example.com. 60 IN CNAME www.example.com.";

  auto d = f.ask("www.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{eu});
  CHECK(scopeOf(d) == 24);

  d = f.ask("alias.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.aa);
  CHECK(d.answer == Lines{alias, eu});
  CHECK(scopeOf(d) == 24);  // the steered decision's scope, not 0

  d = f.ask("alias.example.com.", rr::kA, ecs(198, 51, 100, 9));
  CHECK(d.answer == Lines{alias, us});

  d = f.ask("alias2.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{"alias.example.com. 60 IN CNAME www.example.com.",
                          "alias2.example.com. 300 IN CNAME alias.example.com.", eu});

  // Through a wildcard CNAME.
  d = f.ask("foo.wild.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{"foo.wild.example.com. 300 IN CNAME www.example.com.", eu});
  CHECK(scopeOf(d) == 24);
}

TEST_CASE("a chain from another served zone reaches the steered name", "[steering]") {
  Fixture f;
  auto d = f.ask("cust.example.net.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.aa);
  CHECK(d.answer == Lines{"cust.example.net. 120 IN CNAME www.example.com.",
                          "www.example.com. 20 IN A 203.0.113.1"});
  CHECK(scopeOf(d) == 24);

  // Through a DNAME in a third zone.
  d = f.ask("www.x.example.org.", rr::kA, ecs(198, 51, 100, 1));
  CHECK(d.rcode == 0);
  CHECK(d.answer == Lines{"www.example.com. 20 IN A 203.0.113.2",
                          "www.x.example.org. 90 IN CNAME www.example.com.",
                          "x.example.org. 90 IN DNAME example.com."});

  // A target in another zone that is not steered is left to the resolver, as before.
  d = f.ask("other.example.net.", rr::kA);
  CHECK(d.answer == Lines{"other.example.net. 300 IN CNAME api.example.com."});
  CHECK(scopeOf(d) == -1);
}

TEST_CASE("a chain from a parent zone into a served child zone reaches its service", "[steering]") {
  Fixture f;
  const std::string eu = "www.sub.example.com. 21 IN A 203.0.113.11";
  auto d = f.ask("www.sub.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{eu});

  // The parent's CNAME points below its own delegation, into the child zone that holds the
  // service: the steered answer, not a referral to the child's servers.
  d = f.ask("tosub.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.aa);
  CHECK(d.answer == Lines{"tosub.example.com. 60 IN CNAME www.sub.example.com.", eu});
  CHECK(d.authority.empty());
  CHECK(scopeOf(d) == 24);

  // The same through a DNAME onto the child zone.
  d = f.ask("www.dsub.example.com.", rr::kA, ecs(198, 51, 100, 1));
  CHECK(d.rcode == 0);
  CHECK(d.answer == Lines{"dsub.example.com. 60 IN DNAME sub.example.com.",
                          "www.dsub.example.com. 60 IN CNAME www.sub.example.com.",
                          "www.sub.example.com. 21 IN A 203.0.113.12"});
  CHECK(scopeOf(d) == 24);

  // A name of the child zone that is not a service still ends in the parent's referral.
  d = f.ask("ns.dsub.example.com.", rr::kA);
  CHECK(d.authority == Lines{"sub.example.com. 300 IN NS ns.sub.example.com."});
}

TEST_CASE("a reload that delegates a service's name answers the referral, not the old steering",
          "[steering]") {
  Fixture f;
  // The zone now delegates www; compiling the steering against it fails, so the runtime keeps
  // the previous services beside the new zone (app/runtime.cc).
  std::string v2 = kCom;
  v2 += "www NS ns1.example.net.\n";
  std::vector<std::shared_ptr<const zones::Zone>> list;
  for (auto [origin, text] : {std::pair{"example.com", v2.c_str()}, std::pair{"example.net", kNet},
                              std::pair{"example.org", kOrg}, std::pair{"sub.example.com", kSub}}) {
    auto z = zones::loadZoneText(origin, text);
    REQUIRE_OK(z);
    list.push_back(z->zone);
  }
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet(list);
  s->services = f.state.load()->services;
  f.state.publish(s);

  auto d = f.ask("www.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK_FALSE(d.aa);
  CHECK(d.answer.empty());
  CHECK(d.authority == Lines{"www.example.com. 300 IN NS ns1.example.net."});
  CHECK(scopeOf(d) == 0);
  d = f.ask("alias.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{"alias.example.com. 60 IN CNAME www.example.com."});
  CHECK(d.authority == Lines{"www.example.com. 300 IN NS ns1.example.net."});
  // From another zone too.
  d = f.ask("cust.example.net.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{"cust.example.net. 120 IN CNAME www.example.com."});
  CHECK(scopeOf(d) == 0);
}

TEST_CASE("a service on a wildcard steers the names the wildcard answers", "[steering]") {
  Fixture f;
  auto d = f.ask("foo.geo.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.aa);
  CHECK(d.answer == Lines{"foo.geo.example.com. 22 IN A 203.0.113.21"});
  CHECK(scopeOf(d) == 24);
  d = f.ask("a.b.geo.example.com.", rr::kA, ecs(198, 51, 100, 1));
  CHECK(d.answer == Lines{"a.b.geo.example.com. 22 IN A 203.0.113.22"});
  // Through a CNAME to a name the wildcard covers.
  d = f.ask("togeo.example.com.", rr::kA, ecs(192, 0, 2, 7));
  CHECK(d.answer == Lines{"bar.geo.example.com. 22 IN A 203.0.113.21",
                          "togeo.example.com. 300 IN CNAME bar.geo.example.com."});
  // Types it does not steer: the wildcard's data (none for AAAA: NODATA).
  d = f.ask("foo.geo.example.com.", rr::kAAAA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.answer.empty());
  CHECK(d.authority.size() == 1);
  CHECK(scopeOf(d) == 0);
}

TEST_CASE("a chain whose steered end does not fit in 512 octets keeps the CNAME and sets TC",
          "[steering]") {
  Fixture f;
  // 40 addresses do not fit a classic 512-octet UDP reply (no EDNS): as Knot and NSD answer a
  // chain whose last RRset does not fit (tests/differential: tobiga), the CNAME comes back alone.
  auto d = f.ask("tomany.example.com.", rr::kA, {}, false);
  CHECK(d.rcode == 0);
  CHECK(d.tc);
  CHECK(d.answer == Lines{"tomany.example.com. 300 IN CNAME many.example.com."});
  d = f.ask("many.example.com.", rr::kA, {}, false);
  CHECK(d.tc);
  CHECK(d.answer.empty());
  d = f.ask("tomany.example.com.", rr::kA);  // EDNS 1232: all of it
  CHECK_FALSE(d.tc);
  CHECK(d.answer.size() == 41);
}

TEST_CASE("types a service does not steer are answered from the zone", "[steering]") {
  Fixture f;
  auto d = f.ask("www.example.com.", rr::kAAAA, ecs(192, 0, 2, 7));
  CHECK(d.rcode == 0);
  CHECK(d.answer == Lines{"www.example.com. 300 IN AAAA 2001:db8::99"});
  CHECK(scopeOf(d) == 0);  // the zone's answer does not depend on the client

  d = f.ask("www.example.com.", rr::kMX);
  CHECK(d.answer == Lines{"www.example.com. 300 IN MX 10 ns.example.com."});
  d = f.ask("www.example.com.", rr::kTXT);
  CHECK(d.answer == Lines{"www.example.com. 300 IN TXT \"static\""});

  // Through the chain too.
  d = f.ask("alias.example.com.", rr::kAAAA);
  CHECK(d.answer == Lines{"alias.example.com. 60 IN CNAME www.example.com.",
                          "www.example.com. 300 IN AAAA 2001:db8::99"});
  // CNAME at the service name: it steers no CNAME, and the zone has none there.
  d = f.ask("www.example.com.", rr::kCNAME);
  CHECK(d.answer.empty());
  CHECK(d.authority.size() == 1);
}
