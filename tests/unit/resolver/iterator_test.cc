// The iterator against a simulated hierarchy: authoritative servers written here that answer
// from their zones (referrals with glue, CNAME/DNAME, NXDOMAIN/NODATA with the SOA) or misbehave
// (black hole, REFUSED, TC on UDP, forged IDs, no EDNS, out-of-bailiwick junk), and a transport
// that delivers their replies from a queue on a simulated clock. No sockets, no sleeps.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "resolver/iterator.h"

namespace {

using meridian::resolver::Endpoint;
using meridian::resolver::Iterator;
using meridian::resolver::Limits;
using meridian::resolver::Outcome;
using meridian::resolver::Record;
using meridian::resolver::SendStatus;
using meridian::resolver::Transport;
namespace dns = meridian::dns;
namespace rt = meridian::dns::rrtype;
namespace ede = meridian::resolver::ede;

std::string wire(const std::string& text) {
  dns::NameBuf n;
  REQUIRE(dns::fromText(text, n));
  return std::string(reinterpret_cast<const char*>(n.data), n.length);
}

std::string text(const std::string& w) {
  return dns::toText(reinterpret_cast<const uint8_t*>(w.data()));
}

Endpoint ep(const char* v4) {
  Endpoint e;
  REQUIRE(::inet_pton(AF_INET, v4, e.address) == 1);
  return e;
}

std::string a(const char* v4) {
  std::string r(4, '\0');
  REQUIRE(::inet_pton(AF_INET, v4, r.data()) == 1);
  return r;
}

struct Rr {
  std::string owner;  // lowercase wire
  uint16_t type;
  uint32_t ttl;
  std::string rdata;
};

std::string soaRdata(const std::string& zone) {
  std::string r = wire("ns." + (zone == "." ? std::string() : zone)) +
                  wire("hostmaster." + (zone == "." ? std::string() : zone));
  const uint32_t v[5] = {1, 7200, 3600, 1209600, 300};
  for (uint32_t x : v) {
    for (int s = 24; s >= 0; s -= 8) r.push_back(static_cast<char>((x >> s) & 0xFF));
  }
  return r;
}

enum class Behaviour { kNormal, kBlackhole, kRefused, kTcOnUdp, kForgedId, kNoEdns, kJunk };

// An authoritative server: its zones' records, answering as Knot or NSD would.
struct FakeServer {
  Behaviour behaviour = Behaviour::kNormal;
  std::map<std::string, std::vector<Rr>> zones;  // apex (lowercase wire) -> records
  std::vector<std::string> log;                  // "name TYPE udp|tcp" of every query received
  uint32_t latency_ms = 10;

  void add(const std::string& zone, const std::string& owner, uint16_t type, std::string rdata,
           uint32_t ttl = 3600) {
    zones[wire(zone)].push_back({wire(owner), type, ttl, std::move(rdata)});
  }
  void zone(const std::string& apex) { add(apex, apex, rt::kSOA, soaRdata(apex)); }

  static void u16(std::string& o, uint16_t v) {
    o.push_back(static_cast<char>(v >> 8));
    o.push_back(static_cast<char>(v & 0xFF));
  }
  static void rr(std::string& o, const Rr& r) {
    o += r.owner;
    u16(o, r.type);
    u16(o, 1);
    for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<char>((r.ttl >> s) & 0xFF));
    u16(o, static_cast<uint16_t>(r.rdata.size()));
    o += r.rdata;
  }
  static bool below(const std::string& name, const std::string& zone) {
    return meridian::resolver::inBailiwick(name, zone);
  }

  // The reply to query q (empty: no reply at all).
  std::string answer(const std::vector<uint8_t>& q, bool tcp) {
    const uint16_t id = dns::readU16(q.data());
    size_t pos = dns::kHeaderSize;
    while (q[pos] != 0) pos += q[pos] + 1;
    const std::string qname(reinterpret_cast<const char*>(q.data()) + dns::kHeaderSize,
                            pos + 1 - dns::kHeaderSize);
    const uint16_t qtype = dns::readU16(q.data() + pos + 1);
    const bool edns = dns::readU16(q.data() + 10) != 0;
    log.push_back(text(qname) + " " + std::to_string(qtype) + (tcp ? " tcp" : " udp"));
    if (behaviour == Behaviour::kBlackhole) return {};

    std::vector<Rr> an, ns, ar;
    uint16_t flags = 0x8000;  // QR
    uint16_t rcode = 0;
    std::string best;
    for (const auto& [apex, _] : zones) {
      if (below(qname, apex) && apex.size() >= best.size()) best = apex;
    }
    const std::string lname = meridian::resolver::lowerName(qname);
    if (behaviour == Behaviour::kRefused || (best.empty() && zones.count(wire(".")) == 0)) {
      rcode = dns::rcode::kRefused;
    } else if (behaviour == Behaviour::kNoEdns && edns) {
      rcode = dns::rcode::kFormErr;
    } else if (behaviour == Behaviour::kTcOnUdp && !tcp) {
      flags |= dns::flag::kTC | dns::flag::kAA;
    } else if (!best.empty()) {
      const auto& recs = zones[best];
      // A delegation between the apex and the name (the deepest NS set that is not the apex).
      std::string cut;
      for (const Rr& r : recs) {
        if (r.type == rt::kNS && r.owner != best && below(lname, r.owner) &&
            r.owner.size() > cut.size()) {
          cut = r.owner;
        }
      }
      if (!cut.empty()) {
        for (const Rr& r : recs) {
          if (r.type == rt::kNS && r.owner == cut) {
            ns.push_back(r);
            for (const Rr& g : recs) {
              if ((g.type == rt::kA || g.type == rt::kAAAA) && g.owner == r.rdata) ar.push_back(g);
            }
          }
        }
      } else {
        flags |= dns::flag::kAA;
        bool exists = false;
        const Rr* dname = nullptr;
        for (const Rr& r : recs) {
          if (r.owner == lname) {
            exists = true;
            if (r.type == qtype || (r.type == rt::kCNAME && qtype != rt::kCNAME)) an.push_back(r);
          } else if (below(r.owner, lname)) {
            exists = true;  // an empty non-terminal
          }
          if (r.type == rt::kDNAME && r.owner != lname && below(lname, r.owner)) dname = &r;
        }
        if (dname != nullptr && an.empty()) {
          an.push_back(*dname);
          Rr c{qname, rt::kCNAME, dname->ttl,
               qname.substr(0, qname.size() - dname->owner.size()) + dname->rdata};
          an.push_back(c);
        } else if (an.empty()) {
          if (!exists) rcode = dns::rcode::kNXDomain;
          for (const Rr& r : recs) {
            if (r.type == rt::kSOA) ns.push_back(r);
          }
        }
      }
    }
    if (behaviour == Behaviour::kJunk) {
      // Out-of-bailiwick junk a resolver must never keep.
      ar.push_back({wire("www.example.com."), rt::kA, 86400, a("6.6.6.6")});
      ns.push_back({wire("com."), rt::kNS, 86400, wire("ns.junk.com.")});
    }
    std::string out;
    u16(out, behaviour == Behaviour::kForgedId ? static_cast<uint16_t>(id ^ 0x5555) : id);
    u16(out, static_cast<uint16_t>(flags | rcode));
    u16(out, 1);
    u16(out, static_cast<uint16_t>(an.size()));
    u16(out, static_cast<uint16_t>(ns.size()));
    u16(out, static_cast<uint16_t>(ar.size()));
    out += qname;
    u16(out, qtype);
    u16(out, 1);
    for (const Rr& r : an) rr(out, r);
    for (const Rr& r : ns) rr(out, r);
    for (const Rr& r : ar) rr(out, r);
    return out;
  }
};

// Delivers replies from a queue, in order of their simulated arrival.
class FakeTransport : public Transport {
 public:
  std::map<std::string, FakeServer*> servers;
  int sent = 0;
  int sent_tcp = 0;
  int sent_without_edns = 0;

  void send(const Endpoint& to, std::vector<uint8_t> query, bool tcp, uint32_t timeout_ms,
            Done done) override {
    ++sent;
    if (tcp) ++sent_tcp;
    if (dns::readU16(query.data() + 10) == 0) ++sent_without_edns;
    auto it = servers.find(to.key());
    std::string reply;
    uint32_t delay = timeout_ms;
    if (it != servers.end()) {
      reply = it->second->answer(query, tcp);
      if (!reply.empty()) delay = it->second->latency_ms;
    }
    queue_.push_back({now_ + delay, std::move(reply), std::move(done)});
  }
  uint64_t nowMs() override { return now_; }
  uint16_t randomId() override { return static_cast<uint16_t>(next_id_ = next_id_ * 75 + 74); }

  // Runs until nothing is queued.
  void run() {
    while (!queue_.empty()) {
      auto best = queue_.begin();
      for (auto i = queue_.begin(); i != queue_.end(); ++i) {
        if (i->at < best->at) best = i;
      }
      Item item = std::move(*best);
      queue_.erase(best);
      now_ = std::max(now_, item.at);
      if (item.reply.empty()) {
        item.done(SendStatus::kTimeout, nullptr, 0);
      } else {
        item.done(SendStatus::kOk, reinterpret_cast<const uint8_t*>(item.reply.data()),
                  item.reply.size());
      }
    }
  }
  void advance(uint64_t ms) { now_ += ms; }

 private:
  struct Item {
    uint64_t at;
    std::string reply;
    Done done;
  };
  std::deque<Item> queue_;
  uint64_t now_ = 1'000'000;
  uint32_t next_id_ = 1;
};

// The hierarchy most tests use: two roots, com/net/org, example.com (two servers), example.net,
// example.org, a child zone, a glueless delegation.
struct World {
  FakeServer root1, root2, com, net, org, ex1, ex2, exnet, exorg, sub;
  FakeTransport tr;
  std::vector<Endpoint> hints{ep("10.0.0.1"), ep("10.0.0.2")};

  World() {
    for (FakeServer* r : {&root1, &root2}) {
      r->zone(".");
      r->add(".", "com.", rt::kNS, wire("a.nic.com."), 172800);
      r->add(".", "a.nic.com.", rt::kA, a("10.0.1.1"), 172800);
      r->add(".", "net.", rt::kNS, wire("a.nic.net."), 172800);
      r->add(".", "a.nic.net.", rt::kA, a("10.0.2.1"), 172800);
      r->add(".", "org.", rt::kNS, wire("a.nic.org."), 172800);
      r->add(".", "a.nic.org.", rt::kA, a("10.0.3.1"), 172800);
    }
    com.zone("com.");
    com.add("com.", "example.com.", rt::kNS, wire("ns1.example.com."));
    com.add("com.", "example.com.", rt::kNS, wire("ns2.example.com."));
    com.add("com.", "ns1.example.com.", rt::kA, a("10.0.10.1"));
    com.add("com.", "ns2.example.com.", rt::kA, a("10.0.10.2"));
    com.add("com.", "glueless.com.", rt::kNS, wire("ns.example.net."));
    net.zone("net.");
    net.add("net.", "example.net.", rt::kNS, wire("ns.example.net."));
    net.add("net.", "ns.example.net.", rt::kA, a("10.0.11.1"));
    org.zone("org.");
    org.add("org.", "example.org.", rt::kNS, wire("ns.example.org."));
    org.add("org.", "ns.example.org.", rt::kA, a("10.0.12.1"));
    for (FakeServer* e : {&ex1, &ex2}) {
      e->zone("example.com.");
      e->add("example.com.", "www.example.com.", rt::kA, a("192.0.2.1"));
      e->add("example.com.", "alias.example.com.", rt::kCNAME, wire("www.example.net."));
      e->add("example.com.", "local.example.com.", rt::kCNAME, wire("www.example.com."));
      e->add("example.com.", "legacy.example.com.", rt::kDNAME, wire("example.org."));
      e->add("example.com.", "loop1.example.com.", rt::kCNAME, wire("loop2.example.com."));
      e->add("example.com.", "loop2.example.com.", rt::kCNAME, wire("loop1.example.com."));
      e->add("example.com.", "host.deep.example.com.", rt::kA, a("192.0.2.7"));
      e->add("example.com.", "sub.example.com.", rt::kNS, wire("ns.sub.example.com."));
      e->add("example.com.", "ns.sub.example.com.", rt::kA, a("10.0.10.3"));
    }
    exnet.zone("example.net.");
    exnet.add("example.net.", "www.example.net.", rt::kA, a("198.51.100.1"));
    exnet.add("example.net.", "ns.example.net.", rt::kA, a("10.0.11.1"));
    exnet.zone("glueless.com.");
    exnet.add("glueless.com.", "www.glueless.com.", rt::kA, a("192.0.2.50"));
    exorg.zone("example.org.");
    exorg.add("example.org.", "www.example.org.", rt::kA, a("203.0.113.1"));
    sub.zone("sub.example.com.");
    sub.add("sub.example.com.", "www.sub.example.com.", rt::kA, a("192.0.2.3"));
    const std::pair<const char*, FakeServer*> at[] = {
        {"10.0.0.1", &root1},  {"10.0.0.2", &root2}, {"10.0.1.1", &com},  {"10.0.2.1", &net},
        {"10.0.3.1", &org},    {"10.0.10.1", &ex1},  {"10.0.10.2", &ex2}, {"10.0.11.1", &exnet},
        {"10.0.12.1", &exorg}, {"10.0.10.3", &sub}};
    for (const auto& [addr, srv] : at) tr.servers[ep(addr).key()] = srv;
  }

  Outcome ask(Iterator& it, const std::string& name, uint16_t type) {
    Outcome out;
    bool called = false;
    it.resolve(wire(name), type, 1, [&](const Outcome& r) {
      out = r;
      called = true;
    });
    tr.run();
    REQUIRE(called);
    return out;
  }
};

std::vector<std::string> lines(const std::vector<Record>& rs) {
  std::vector<std::string> out;
  for (const Record& r : rs) {
    std::string rd;
    if (r.type == rt::kA && r.rdata.size() == 4) {
      char buf[16];
      ::inet_ntop(AF_INET, r.rdata.data(), buf, sizeof buf);
      rd = buf;
    } else if (r.type == rt::kCNAME || r.type == rt::kDNAME || r.type == rt::kNS) {
      rd = text(r.rdata);
    } else {
      rd = std::to_string(r.rdata.size()) + " octets";
    }
    out.push_back(text(r.owner) + " " + std::to_string(r.type) + " " + rd);
  }
  return out;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("iterator: referrals from the root to the answer, then from the known zone cut",
          "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "www.example.com.", rt::kA);
  CHECK(r.rcode == 0);
  CHECK(lines(r.answer) == Lines{"www.example.com. 1 192.0.2.1"});
  CHECK(r.ede == ede::kNone);
  const int first = w.tr.sent;
  CHECK(first >= 3);
  // RFC 9156: the root saw only "com." asked, never the full name.
  const auto& root_log = w.root1.log.empty() ? w.root2.log : w.root1.log;
  REQUIRE_FALSE(root_log.empty());
  CHECK(root_log.front() == "com. 1 udp");
  // A second name in example.com starts at the cut learned: only example.com's servers asked.
  const size_t roots_before = w.root1.log.size() + w.root2.log.size();
  const size_t com_before = w.com.log.size();
  r = w.ask(it, "host.deep.example.com.", rt::kA);
  CHECK(lines(r.answer) == Lines{"host.deep.example.com. 1 192.0.2.7"});
  CHECK(w.root1.log.size() + w.root2.log.size() == roots_before);
  CHECK(w.com.log.size() == com_before);
  CHECK(it.inFlight() == 0);
}

TEST_CASE("iterator: CNAME across zones, DNAME, chains inside one answer", "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "alias.example.com.", rt::kA);
  CHECK(r.rcode == 0);
  CHECK(lines(r.answer) ==
        Lines{"alias.example.com. 5 www.example.net.", "www.example.net. 1 198.51.100.1"});
  r = w.ask(it, "local.example.com.", rt::kA);
  CHECK(lines(r.answer) ==
        Lines{"local.example.com. 5 www.example.com.", "www.example.com. 1 192.0.2.1"});
  r = w.ask(it, "www.legacy.example.com.", rt::kA);
  CHECK(r.rcode == 0);
  CHECK(lines(r.answer) == Lines{"legacy.example.com. 39 example.org.",
                                 "www.legacy.example.com. 5 www.example.org.",
                                 "www.example.org. 1 203.0.113.1"});
}

TEST_CASE("iterator: NXDOMAIN and NODATA carry the zone's SOA", "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "nx.example.com.", rt::kA);
  CHECK(r.rcode == dns::rcode::kNXDomain);
  CHECK(r.answer.empty());
  REQUIRE(r.authority.size() == 1);
  CHECK(text(r.authority[0].owner) == "example.com.");
  r = w.ask(it, "www.example.com.", rt::kAAAA);
  CHECK(r.rcode == 0);
  CHECK(r.answer.empty());
  CHECK(r.authority.size() == 1);
  // An empty non-terminal on the way (deep.example.com) is walked through, not NXDOMAIN.
  r = w.ask(it, "host.deep.example.com.", rt::kA);
  CHECK(lines(r.answer) == Lines{"host.deep.example.com. 1 192.0.2.7"});
  // A name under a TLD that does not exist.
  r = w.ask(it, "www.nosuchtld.", rt::kA);
  CHECK(r.rcode == dns::rcode::kNXDomain);
}

TEST_CASE("iterator: a glueless delegation and a child zone", "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "www.glueless.com.", rt::kA);
  CHECK(r.rcode == 0);
  CHECK(lines(r.answer) == Lines{"www.glueless.com. 1 192.0.2.50"});
  r = w.ask(it, "www.sub.example.com.", rt::kA);
  CHECK(lines(r.answer) == Lines{"www.sub.example.com. 1 192.0.2.3"});
}

TEST_CASE("iterator: a dead server is passed over and backed off; all dead is SERVFAIL + EDE 22",
          "[resolver][iterator]") {
  World w;
  w.ex1.behaviour = Behaviour::kBlackhole;
  w.ex2.behaviour = Behaviour::kNormal;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "www.example.com.", rt::kA);
  CHECK(lines(r.answer) == Lines{"www.example.com. 1 192.0.2.1"});
  // Whichever was asked first, the dead one is asked at most once: after its timeout it is
  // backed off behind the live one.
  for (int i = 0; i < 5; ++i) {
    r = w.ask(it, "www.example.com.", rt::kA);
    CHECK(r.rcode == 0);
  }
  CHECK(w.ex1.log.size() <= 1);
  CHECK(w.ex2.log.size() >= 5);
  if (!w.ex1.log.empty()) CHECK(it.srttMs(ep("10.0.10.1")) >= Limits{}.timeout_ms);

  w.ex2.behaviour = Behaviour::kBlackhole;
  w.tr.advance(60'000);  // past the backoff
  r = w.ask(it, "www.example.com.", rt::kA);
  CHECK(r.rcode == dns::rcode::kServFail);
  CHECK(r.ede == ede::kNoReachableAuthority);
}

TEST_CASE("iterator: REFUSED (lame), forged IDs and junk are not believed",
          "[resolver][iterator]") {
  SECTION("a lame server, then the good one") {
    World w;
    w.ex1.behaviour = Behaviour::kRefused;
    Iterator it(w.tr, Limits{}, w.hints);
    for (int i = 0; i < 3; ++i) {
      Outcome r = w.ask(it, "www.example.com.", rt::kA);
      CHECK(lines(r.answer) == Lines{"www.example.com. 1 192.0.2.1"});
    }
    CHECK(w.ex1.log.size() <= 1);  // marked lame for the zone after its first REFUSED
  }
  SECTION("forged IDs from every example.com server: SERVFAIL, never their answer") {
    World w;
    w.ex1.behaviour = Behaviour::kForgedId;
    w.ex2.behaviour = Behaviour::kForgedId;
    Iterator it(w.tr, Limits{}, w.hints);
    Outcome r = w.ask(it, "www.example.com.", rt::kA);
    CHECK(r.rcode == dns::rcode::kServFail);
    CHECK(r.answer.empty());
  }
  SECTION("out-of-bailiwick junk from example.net's server is dropped") {
    World w;
    w.exnet.behaviour = Behaviour::kJunk;
    Iterator it(w.tr, Limits{}, w.hints);
    Outcome r = w.ask(it, "www.example.net.", rt::kA);
    CHECK(lines(r.answer) == Lines{"www.example.net. 1 198.51.100.1"});
    // The junk's "com. NS ns.junk.com" did not become the com. cut: com's server still asked.
    const size_t com_before = w.com.log.size();
    r = w.ask(it, "www.example.com.", rt::kA);
    CHECK(lines(r.answer) == Lines{"www.example.com. 1 192.0.2.1"});
    CHECK(w.com.log.size() > com_before);
  }
}

TEST_CASE("iterator: TC=1 over UDP is asked again over TCP; FORMERR to EDNS is asked without",
          "[resolver][iterator]") {
  World w;
  w.ex1.behaviour = Behaviour::kTcOnUdp;
  w.ex2.behaviour = Behaviour::kTcOnUdp;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "www.example.com.", rt::kA);
  CHECK(lines(r.answer) == Lines{"www.example.com. 1 192.0.2.1"});
  CHECK(w.tr.sent_tcp >= 1);

  World v;
  v.exorg.behaviour = Behaviour::kNoEdns;
  Iterator it2(v.tr, Limits{}, v.hints);
  r = v.ask(it2, "www.example.org.", rt::kA);
  CHECK(lines(r.answer) == Lines{"www.example.org. 1 203.0.113.1"});
  CHECK(v.tr.sent_without_edns >= 1);
}

TEST_CASE("iterator: CNAME loops and the work limits end in SERVFAIL", "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "loop1.example.com.", rt::kA);
  CHECK(r.rcode == dns::rcode::kServFail);

  // A chain of 20 CNAMEs across 20 names: longer than max_cname_chain (11).
  // Names built with append(): GCC 12 at -O3 reports a false -Wrestrict for "lit" + string.
  auto cname = [](int n, const char* zone) {
    std::string s(1, 'c');
    s.append(std::to_string(n)).append(zone);
    return s;
  };
  for (int i = 0; i < 20; ++i) {
    const std::string from = cname(i, ".example.com.");
    const std::string to = cname(i + 1, ".example.org.");
    w.ex1.add("example.com.", from, rt::kCNAME, wire(to));
    w.ex2.add("example.com.", from, rt::kCNAME, wire(to));
    w.exorg.add("example.org.", to, rt::kCNAME, wire(cname(i + 1, ".example.com.")));
  }
  r = w.ask(it, "c0.example.com.", rt::kA);
  CHECK(r.rcode == dns::rcode::kServFail);
  CHECK(r.upstream_queries <= Limits{}.max_upstream_queries);

  // NXNS-style: a delegation to 30 glueless NS names that all fail; the names resolved are
  // capped and the question's upstream queries stay within the limit.
  World x;
  for (int i = 0; i < 30; ++i) {
    std::string ns = "ns";
    ns.append(std::to_string(i)).append(".nowhere.org.");
    x.com.add("com.", "victim.com.", rt::kNS, wire(ns));
  }
  Limits lim;
  Iterator it3(x.tr, lim, x.hints);
  r = x.ask(it3, "www.victim.com.", rt::kA);
  CHECK(r.rcode == dns::rcode::kServFail);
  CHECK(r.upstream_queries <= lim.max_upstream_queries);
  CHECK(x.org.log.size() <= static_cast<size_t>(lim.max_ns_names_resolved) * 2);
}

TEST_CASE("iterator: identical questions in flight share one resolution", "[resolver][iterator]") {
  World w;
  Iterator it(w.tr, Limits{}, w.hints);
  int calls = 0;
  for (int i = 0; i < 10; ++i) {
    it.resolve(wire(i % 2 ? "WWW.Example.COM." : "www.example.com."), rt::kA, 1,
               [&](const Outcome& r) {
                 CHECK(r.rcode == 0);
                 ++calls;
               });
  }
  CHECK(it.inFlight() == 1);
  w.tr.run();
  CHECK(calls == 10);
  CHECK(w.ex1.log.size() + w.ex2.log.size() <= 3);
}

TEST_CASE("iterator: glue outside the referring zone's bailiwick is not used",
          "[resolver][iterator]") {
  World w;
  // net. delegates x.net to ns.example.org and adds an address for that name, which net. has no
  // authority over (a poisoning attempt pointing at a server that never answers). The iterator
  // must look ns.example.org up itself, through org.
  w.net.add("net.", "x.net.", rt::kNS, wire("ns.example.org."));
  w.net.add("net.", "ns.example.org.", rt::kA, a("10.66.66.66"));
  w.exorg.add("example.org.", "ns.example.org.", rt::kA, a("10.0.12.1"));
  w.exorg.zone("x.net.");
  w.exorg.add("x.net.", "www.x.net.", rt::kA, a("192.0.2.99"));
  Iterator it(w.tr, Limits{}, w.hints);
  Outcome r = w.ask(it, "www.x.net.", rt::kA);
  CHECK(r.rcode == 0);
  CHECK(lines(r.answer) == Lines{"www.x.net. 1 192.0.2.99"});
  CHECK(it.srttMs(ep("10.66.66.66")) == 0);  // never asked
}
