// Table-driven lookup suite: the whole query pipeline on in-memory packets, no sockets.
// Expected sections are zone-file text as ldns prints it (sorted).
#include <catch2/catch.hpp>

#include "../testutil.h"
#include "server/pipeline.h"
#include "serving.h"
#include "zones/loader.h"

using namespace meridian;
namespace rr = dns::rrtype;

namespace {

const char* kZone = R"(
$ORIGIN example.com.
$TTL 3600
@        IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
@        NS   ns2.example.net.
@        MX   10 mail
ns1      A    192.0.2.1
mail     A    192.0.2.2
mail     AAAA 2001:db8::2
www      A    192.0.2.10
a        CNAME b
b        CNAME c
c        A    192.0.2.30
dangling CNAME nothere
out      CNAME www.example.net.
loop1    CNAME loop2
loop2    CNAME loop1
*.wild   A    192.0.2.40
*.wild   TXT  "wild"
exact.wild A  192.0.2.41
a.b.c.ent A   192.0.2.50
*.ent    A    192.0.2.51
sub      NS   ns.sub
ns.sub   A    192.0.2.60
child    NS   ns.child
ns.child A    192.0.2.70
sec      NS   ns1.example.net.
sec      DS   12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE58C79AD4B8F1C7E2B7A5B5C5
_sip._udp SRV 0 5 5060 www
olddn    DNAME new.example.com.
host.new A    192.0.2.99
away     DNAME example.org.
)";

const char* kChild = R"(
$ORIGIN child.example.com.
$TTL 600
@   SOA ns hostmaster 7 3600 600 86400 60
@   NS  ns
ns  A   192.0.2.70
)";

struct Fixture {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  std::unique_ptr<server::QueryHandler> handler;
  uint8_t out[65535];

  Fixture() {
    auto z = zones::loadZoneText("example.com", kZone);
    REQUIRE_OK(z);
    auto c = zones::loadZoneText("child.example.com", kChild);
    REQUIRE_OK(c);
    auto s = std::make_shared<server::ServingState>();
    s->zones = zones::ZoneSet({z->zone, c->zone});
    s->protocol.nsid = "test-ns";
    state.publish(s);
    handler = std::make_unique<server::QueryHandler>(state);
  }

  test::Decoded ask(const std::string& name, uint16_t type, const test::QueryOptions& o = {},
                    server::Transport t = server::Transport::kUdp) {
    auto q = test::makeQuery(name, type, o);
    const size_t n = handler->handle(q.data(), q.size(), out, sizeof out, t);
    return test::decode(out, n);
  }
};

// A handler serving one zone given as text, for the cases that need a zone of their own.
struct OneZone {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  std::unique_ptr<server::QueryHandler> handler;
  uint8_t out[65535];

  OneZone(const std::string& origin, const std::string& text) {
    auto z = zones::loadZoneText(origin, text);
    REQUIRE_OK(z);
    state.publish(test::servingState({z->zone}));
    handler = std::make_unique<server::QueryHandler>(state);
  }
  test::Decoded ask(const std::string& name, uint16_t type,
                    server::Transport t = server::Transport::kUdp) {
    auto q = test::makeQuery(name, type);
    return test::decode(out, handler->handle(q.data(), q.size(), out, sizeof out, t));
  }
};

struct Case {
  const char* qname;
  uint16_t qtype;
  int rcode;
  bool aa;
  std::vector<std::string> answer;
  std::vector<std::string> authority;
};

const std::string kSoaNeg =
    "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300";

}  // namespace

TEST_CASE("authoritative answers (RFC 1034 4.3.2, RFC 2308, RFC 4592)") {
  Fixture f;
  const std::vector<Case> cases = {
      {"www.example.com.", rr::kA, 0, true, {"www.example.com. 3600 IN A 192.0.2.10"}, {}},
      {"WwW.ExAmPlE.cOm.", rr::kA, 0, true, {"WwW.ExAmPlE.cOm. 3600 IN A 192.0.2.10"}, {}},
      {"www.example.com.", rr::kAAAA, 0, true, {}, {kSoaNeg}},
      {"nope.example.com.", rr::kA, 3, true, {}, {kSoaNeg}},
      {"a.example.com.",
       rr::kA,
       0,
       true,
       {"a.example.com. 3600 IN CNAME b.example.com.",
        "b.example.com. 3600 IN CNAME c.example.com.", "c.example.com. 3600 IN A 192.0.2.30"},
       {}},
      {"a.example.com.", rr::kCNAME, 0, true, {"a.example.com. 3600 IN CNAME b.example.com."}, {}},
      {"dangling.example.com.",
       rr::kA,
       3,
       true,
       {"dangling.example.com. 3600 IN CNAME nothere.example.com."},
       {kSoaNeg}},
      {"out.example.com.",
       rr::kA,
       0,
       true,
       {"out.example.com. 3600 IN CNAME www.example.net."},
       {}},
      {"loop1.example.com.",
       rr::kA,
       0,
       true,
       {"loop1.example.com. 3600 IN CNAME loop2.example.com.",
        "loop2.example.com. 3600 IN CNAME loop1.example.com."},
       {}},
      {"x.wild.example.com.", rr::kA, 0, true, {"x.wild.example.com. 3600 IN A 192.0.2.40"}, {}},
      {"y.x.wild.example.com.",
       rr::kTXT,
       0,
       true,
       {"y.x.wild.example.com. 3600 IN TXT \"wild\""},
       {}},
      {"x.wild.example.com.", rr::kMX, 0, true, {}, {kSoaNeg}},
      {"exact.wild.example.com.", rr::kTXT, 0, true, {}, {kSoaNeg}},  // exact name blocks wildcard
      {"wild.example.com.", rr::kA, 0, true, {}, {kSoaNeg}},          // empty non-terminal
      {"c.ent.example.com.", rr::kA, 0, true, {}, {kSoaNeg}},  // ENT: wildcard must not match
      {"zz.ent.example.com.", rr::kA, 0, true, {"zz.ent.example.com. 3600 IN A 192.0.2.51"}, {}},
      {"sub.example.com.",
       rr::kA,
       0,
       false,
       {},
       {"sub.example.com. 3600 IN NS ns.sub.example.com."}},
      {"deep.www.sub.example.com.",
       rr::kA,
       0,
       false,
       {},
       {"sub.example.com. 3600 IN NS ns.sub.example.com."}},
      {"ns.sub.example.com.",
       rr::kA,
       0,
       false,
       {},
       {"sub.example.com. 3600 IN NS ns.sub.example.com."}},
      {"sec.example.com.",
       rr::kDS,
       0,
       true,
       {"sec.example.com. 3600 IN DS 12345 8 2 "
        "49fd46e6c4b45c55d4ac69cbd3cd34ac1afe51de58c79ad4b8f1c7e2b7a5b5c5"},
       {}},
      {"sub.example.com.", rr::kDS, 0, true, {}, {kSoaNeg}},
      {"child.example.com.",
       rr::kSOA,
       0,
       true,
       {"child.example.com. 600 IN SOA ns.child.example.com. hostmaster.child.example.com. 7 3600 "
        "600 86400 60"},
       {}},
      {"child.example.com.", rr::kDS, 0, true, {}, {kSoaNeg}},  // parent side answers DS
      {"x.child.example.com.",
       rr::kA,
       3,
       true,
       {},
       {"child.example.com. 60 IN SOA ns.child.example.com. hostmaster.child.example.com. 7 3600 "
        "600 86400 60"}},
      {"www.example.org.", rr::kA, 5, false, {}, {}},
      {"host.olddn.example.com.",
       rr::kA,
       0,
       true,
       {"olddn.example.com. 3600 IN DNAME new.example.com.",
        "host.olddn.example.com. 3600 IN CNAME host.new.example.com.",
        "host.new.example.com. 3600 IN A 192.0.2.99"},
       {}},
      {"gone.olddn.example.com.",
       rr::kA,
       3,
       true,
       {"olddn.example.com. 3600 IN DNAME new.example.com.",
        "gone.olddn.example.com. 3600 IN CNAME gone.new.example.com."},
       {kSoaNeg}},
      {"x.away.example.com.",
       rr::kA,
       0,
       true,
       {"away.example.com. 3600 IN DNAME example.org.",
        "x.away.example.com. 3600 IN CNAME x.example.org."},
       {}},
      {"olddn.example.com.",
       rr::kDNAME,
       0,
       true,
       {"olddn.example.com. 3600 IN DNAME new.example.com."},
       {}},
      {"example.com.",
       rr::kANY,
       0,
       true,
       {"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.net."},
       {}},
  };
  for (const auto& c : cases) {
    INFO(c.qname << " type " << c.qtype);
    const auto d = f.ask(c.qname, c.qtype);
    REQUIRE(d.ok);
    CHECK(d.qr);
    CHECK(d.rcode == c.rcode);
    CHECK(d.aa == c.aa);
    CHECK_FALSE(d.tc);
    REQUIRE(d.question.size() == 1);
    CHECK(d.question[0].rfind(c.qname, 0) == 0);
    auto answer = c.answer;
    std::sort(answer.begin(), answer.end());
    CHECK(d.answer == answer);
    CHECK(d.authority == c.authority);
  }
}

TEST_CASE("additional section: glue and MX/SRV targets") {
  Fixture f;
  auto d = f.ask("example.com.", rr::kMX);
  CHECK(d.additional == std::vector<std::string>{"mail.example.com. 3600 IN A 192.0.2.2",
                                                 "mail.example.com. 3600 IN AAAA 2001:db8::2"});
  d = f.ask("www.sub.example.com.", rr::kA);
  CHECK(d.additional == std::vector<std::string>{"ns.sub.example.com. 3600 IN A 192.0.2.60"});
  d = f.ask("_sip._udp.example.com.", rr::kSRV);
  CHECK(d.additional == std::vector<std::string>{"www.example.com. 3600 IN A 192.0.2.10"});
}

TEST_CASE("ANY is minimal over UDP and full over TCP (RFC 8482)") {
  Fixture f;
  auto udp = f.ask("mail.example.com.", rr::kANY);
  CHECK(udp.answer.size() == 1);
  auto tcp = f.ask("mail.example.com.", rr::kANY, {}, server::Transport::kTcp);
  CHECK(tcp.answer.size() == 2);
}

TEST_CASE("EDNS: OPT echoed, payload, DO, NSID, BADVERS, unknown options") {
  Fixture f;
  test::QueryOptions o;
  o.edns = true;
  o.payload = 4096;
  o.dnssec_ok = true;
  o.options = {0x00, 0x64, 0, 2, 0xAB, 0xCD, 0, 3, 0, 0};  // unknown option 100, NSID
  auto d = f.ask("www.example.com.", rr::kA, o);
  REQUIRE(d.has_opt);
  CHECK(d.opt_payload == 1232);
  CHECK(d.opt_do);
  CHECK(d.opt_version == 0);
  CHECK(d.opt_data ==
        std::string("\x00\x03\x00\x07test-ns", 11));  // NSID only; option 100 not echoed
  o.version = 1;
  d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.rcode == 16);
  CHECK(d.opt_version == 0);
  CHECK(d.answer.empty());
  auto plain = f.ask("www.example.com.", rr::kA);
  CHECK_FALSE(plain.has_opt);
}

TEST_CASE("ECS is echoed with scope 0 for answers that do not depend on the client") {
  Fixture f;
  test::QueryOptions o;
  o.edns = true;
  o.options = {0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100};
  auto d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.opt_data == std::string("\x00\x08\x00\x07\x00\x01\x18\x00\xc6\x33\x64", 11));
  o.options = {0, 8, 0, 7, 0, 1, 24, 5, 198, 51, 100};  // non-zero scope in a query
  d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.rcode == 1);
}

TEST_CASE("protocol errors: opcodes, classes, QR, TSIG with an unknown key") {
  Fixture f;
  test::QueryOptions o;
  o.flags = static_cast<uint16_t>(5 << 11);  // UPDATE
  auto d = f.ask("example.com.", rr::kSOA, o);
  CHECK(d.rcode == 4);
  o.flags = dns::flag::kRD | dns::flag::kZ | dns::flag::kAD;  // unknown/odd flags still answered
  d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.rcode == 0);
  CHECK(d.rd);
  CHECK(d.answer.size() == 1);
  o = {};
  o.qclass = dns::rrclass::kCH;
  d = f.ask("version.bind.", rr::kTXT, o);
  CHECK(d.rcode == 5);
  d = f.ask("example.com.", rr::kAXFR);
  CHECK(d.rcode == 5);

  // A query signed with a key we do not know: NOTAUTH + TSIG error BADKEY (RFC 8945 §5.2.1).
  auto q = test::makeQuery("www.example.com.", rr::kA);
  dns::NameBuf key, alg;
  REQUIRE(dns::fromText("nokey.", key));
  REQUIRE(dns::fromText("hmac-sha256.", alg));
  q.insert(q.end(), key.data, key.data + key.length);
  std::vector<uint8_t> rdata(alg.data, alg.data + alg.length);
  const uint8_t fixed[] = {0, 0, 0x65, 0, 0, 0, 1, 0x2c, 0, 2, 0xAA, 0xBB, 0x12, 0x34, 0, 0, 0, 0};
  rdata.insert(rdata.end(), fixed, fixed + sizeof fixed);
  const uint8_t head[] = {0, 250, 0, 255, 0, 0, 0, 0, 0, static_cast<uint8_t>(rdata.size())};
  q.insert(q.end(), head, head + sizeof head);
  q.insert(q.end(), rdata.begin(), rdata.end());
  q[11] = 1;
  const size_t n =
      f.handler->handle(q.data(), q.size(), f.out, sizeof f.out, server::Transport::kUdp);
  d = test::decode(f.out, n);
  REQUIRE(d.ok);
  CHECK(d.rcode == 9);
  REQUIRE(d.additional.size() == 1);
  CHECK(d.additional[0].find("TSIG") != std::string::npos);
  CHECK(d.answer.empty());

  auto resp = test::makeQuery("www.example.com.", rr::kA);
  resp[2] |= 0x80;
  CHECK(f.handler->handle(resp.data(), resp.size(), f.out, sizeof f.out, server::Transport::kUdp) ==
        0);
}

TEST_CASE("oversized answers set TC with empty sections; TCP carries them") {
  std::string zone = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
  for (int i = 0; i < 40; ++i)
    zone += "txt TXT \"record number " + std::to_string(i) + " padding padding padding\"\n";
  auto z = zones::loadZoneText("big.test", zone);
  REQUIRE_OK(z);
  Published<server::ServingState> state{test::servingState({z->zone})};
  server::QueryHandler h(state);
  static uint8_t out[65535];
  auto q = test::makeQuery("txt.big.test.", rr::kTXT);
  size_t n = h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp);
  CHECK(n <= 512);
  auto d = test::decode(out, n);
  CHECK(d.tc);
  CHECK(d.aa);
  CHECK(d.answer.empty());
  n = h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kTcp);
  d = test::decode(out, n);
  CHECK_FALSE(d.tc);
  CHECK(d.answer.size() == 40);
  test::QueryOptions o;
  o.edns = true;
  o.payload = 4096;
  q = test::makeQuery("txt.big.test.", rr::kTXT, o);
  n = h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp);
  CHECK(n <= 1232);
  d = test::decode(out, n);
  CHECK(d.tc);
}

TEST_CASE("DNS cookies: the client cookie comes back with a valid server cookie (RFC 7873, 9018)") {
  Fixture f;
  test::QueryOptions o;
  o.edns = true;
  o.options = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  auto d = f.ask("www.example.com.", rr::kA, o);
  REQUIRE(d.rcode == 0);
  // COOKIE option: code 10, length 24 = client (8) + server (16).
  REQUIRE(d.opt_data.size() == 4 + 24);
  CHECK(static_cast<uint8_t>(d.opt_data[1]) == 10);
  CHECK(static_cast<uint8_t>(d.opt_data[3]) == 24);
  CHECK(d.opt_data.substr(4, 8) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(static_cast<uint8_t>(d.opt_data[12]) == 1);  // server cookie version 1
  // Without a cookie in the query there is none in the reply.
  o.options.clear();
  d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.opt_data.empty());
}

TEST_CASE("FORMERR keeps OPT when the query's OPT was read (RFC 6891 §7)") {
  Fixture f;
  test::QueryOptions o;
  o.edns = true;
  o.dnssec_ok = true;
  auto q = test::makeQuery("www.example.com.", rr::kA, o);
  q.push_back(0);  // a trailing octet after the OPT record
  size_t n = f.handler->handle(q.data(), q.size(), f.out, sizeof f.out, server::Transport::kUdp);
  auto d = test::decode(f.out, n);
  CHECK(d.rcode == 1);
  CHECK(d.has_opt);
  CHECK(d.opt_version == 0);
  CHECK(d.opt_data.empty());

  // A malformed option: OPT comes back, the option does not.
  o.options = {0, 8, 0, 7, 0, 1, 24, 5, 198, 51, 100};
  d = f.ask("www.example.com.", rr::kA, o);
  CHECK(d.rcode == 1);
  CHECK(d.has_opt);
  CHECK(d.opt_data.empty());

  // Without EDNS in the query there is none in the FORMERR.
  q = test::makeQuery("www.example.com.", rr::kA);
  q.push_back(0);
  n = f.handler->handle(q.data(), q.size(), f.out, sizeof f.out, server::Transport::kUdp);
  d = test::decode(f.out, n);
  CHECK(d.rcode == 1);
  CHECK_FALSE(d.has_opt);
}

TEST_CASE("a configured zone that failed to load answers SERVFAIL, not REFUSED") {
  auto z = zones::loadZoneText("example.com", kZone);
  REQUIRE_OK(z);
  auto s = std::make_shared<server::ServingState>();
  s->zones = zones::ZoneSet({z->zone});
  for (const char* name : {"broken.test.", "child.example.com."}) {
    dns::NameBuf apex;
    REQUIRE(dns::fromText(name, apex));
    s->unavailable_zones.emplace_back(reinterpret_cast<const char*>(apex.data), apex.length);
  }
  Published<server::ServingState> state{s};
  server::QueryHandler h(state);
  static uint8_t out[65535];
  auto rcode = [&](const std::string& name) {
    auto q = test::makeQuery(name, rr::kA);
    return test::decode(out, h.handle(q.data(), q.size(), out, sizeof out, server::Transport::kUdp))
        .rcode;
  };
  CHECK(rcode("broken.test.") == 2);
  CHECK(rcode("www.broken.test.") == 2);
  CHECK(rcode("ns.child.example.com.") == 2);  // below a served parent: the child decides
  CHECK(rcode("www.example.com.") == 0);
  CHECK(rcode("other.test.") == 5);
}

TEST_CASE("referral glue that does not fit sets TC (RFC 9471)") {
  std::string zone = "$ORIGIN glue.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
  // Ten in-domain name servers with long names and two addresses each: about 700 octets of glue.
  for (int i = 0; i < 10; ++i) {
    const std::string ns = "name-server-number-" + std::to_string(i) + ".in.glue.test.";
    zone += "in NS " + ns + "\n" + ns + " A 192.0.2." + std::to_string(10 + i) + "\n" + ns +
            " AAAA 2001:db8::" + std::to_string(10 + i) + "\n";
  }
  // Sibling glue only: optional, so no TC when it does not fit.
  for (int i = 0; i < 10; ++i) {
    const std::string ns = "name-server-number-" + std::to_string(i) + ".in.glue.test.";
    zone += "sib NS " + ns + "\n";
  }
  OneZone g("glue.test", zone);
  auto d = g.ask("www.in.glue.test.", rr::kA);
  CHECK(d.rcode == 0);
  CHECK(d.tc);
  CHECK_FALSE(d.aa);
  CHECK(d.authority.size() == 10);
  d = g.ask("www.in.glue.test.", rr::kA, server::Transport::kTcp);
  CHECK_FALSE(d.tc);
  CHECK(d.additional.size() == 20);

  d = g.ask("www.sib.glue.test.", rr::kA);
  CHECK_FALSE(d.tc);
  CHECK(d.authority.size() == 10);
  CHECK(d.additional.size() < 20);
}

TEST_CASE("a DNAME step and then a CNAME chain inside the zone (loop check sees written entries)") {
  const char* zone = R"(
$ORIGIN dn.test.
$TTL 60
@ SOA ns h 1 2 3 4 5
@ NS ns
ns A 192.0.2.1
old DNAME new.dn.test.
a.new CNAME b.new
b.new CNAME c.new
c.new A 192.0.2.7
)";
  OneZone g("dn.test", zone);
  auto d = g.ask("a.old.dn.test.", rr::kA);
  CHECK(d.rcode == 0);
  CHECK(d.answer == std::vector<std::string>{"a.new.dn.test. 60 IN CNAME b.new.dn.test.",
                                             "a.old.dn.test. 60 IN CNAME a.new.dn.test.",
                                             "b.new.dn.test. 60 IN CNAME c.new.dn.test.",
                                             "c.new.dn.test. 60 IN A 192.0.2.7",
                                             "old.dn.test. 60 IN DNAME new.dn.test."});
}
