// The negative-answer SOA replayed from its pre-encoded copy (dns::ResponseWriter::replay,
// zones::putNegativeSoa) against the general path (zones::putRRset with writeName's compression):
// the same octets, compression pointers included, and the same dictionary for what follows.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "../server/serving.h"
#include "../testutil.h"
#include "dns/message.h"
#include "server/pipeline.h"
#include "zones/loader.h"
#include "zones/lookup.h"

using namespace meridian;
namespace rr = dns::rrtype;
using Section = dns::ResponseWriter::Section;

namespace {

// The EDNS option codes in OPT RDATA, in order.
std::vector<uint16_t> optionCodes(const std::string& rdata) {
  std::vector<uint16_t> codes;
  const auto* p = reinterpret_cast<const uint8_t*>(rdata.data());
  for (size_t pos = 0; pos + 4 <= rdata.size(); pos += 4u + dns::readU16(p + pos + 2)) {
    codes.push_back(dns::readU16(p + pos));
  }
  return codes;
}

std::shared_ptr<const zones::Zone> zoneOf(const std::string& origin, const std::string& soa) {
  const std::string text = "$TTL 3600\n@ SOA " + soa + " 1 7200 3600 1209600 300\n@ NS ns1\n" +
                           "ns1 A 192.0.2.1\nwww A 192.0.2.2\n";
  auto z = zones::loadZoneText(origin, text);
  REQUIRE_OK(z);
  return z->zone;
}

dns::Query parsed(const std::string& qname, uint16_t qtype, const test::QueryOptions& o = {}) {
  const auto packet = test::makeQuery(qname, qtype, o);
  dns::Query q;
  REQUIRE(dns::parseQuery(packet.data(), packet.size(), q) == dns::ParseStatus::kOk);
  return q;
}

dns::NameBuf wire(const std::string& text) {
  dns::NameBuf n;
  REQUIRE(dns::fromText(text, n));
  return n;
}

enum class Path { kGeneral, kReplay, kAnswer };

// Header, question, the negative SOA written by `path`, then `later` names through writeName (to
// see the dictionary the SOA left); with a reserve at the end, as the pipeline keeps for OPT.
std::vector<uint8_t> write(const zones::Zone& z, const dns::Query& q, Path path,
                           const std::vector<std::string>& later = {}, size_t limit = 65535,
                           size_t reserve = 0) {
  std::vector<uint8_t> buf(65535);
  dns::ResponseWriter w;
  w.reset(buf.data(), limit, reserve);
  w.begin(q, true);
  switch (path) {
    case Path::kGeneral:
      REQUIRE(zones::putRRset(z, z.negativeSoa(), z.apex(), w, Section::kAuthority));
      break;
    case Path::kReplay:
      REQUIRE(w.replay(z.negativeSoaRecord(), q.qname_lower, Section::kAuthority));
      break;
    case Path::kAnswer:
      (void)zones::answer(z, q, w, zones::AnswerOptions{});
      break;
  }
  for (const auto& name : later) REQUIRE(w.writeName(wire(name).data));
  w.finishSections();
  return {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(w.size())};
}

bool replays(const zones::Zone& z, const dns::Query& q) {
  std::vector<uint8_t> buf(65535);
  dns::ResponseWriter w;
  w.reset(buf.data(), buf.size(), 0);
  w.begin(q, true);
  return w.replay(z.negativeSoaRecord(), q.qname_lower, Section::kAuthority);
}

std::string label(char c, size_t n) {
  return std::string(n, c);
}

}  // namespace

TEST_CASE("negative SOA replay: the general path's octets (NXDOMAIN, NODATA, apex, case)",
          "[negsoa]") {
  struct Zone {
    std::string origin, soa;
  };
  const std::vector<Zone> zones_ = {
      {"example.com", "ns1 hostmaster"},
      {"example.com", "@ @"},                                     // MNAME and RNAME the apex
      {"example.com", "ns.dns hostmaster.dns"},                   // RNAME points into MNAME
      {"example.com", "ns.example.net. admin.example.org."},      // both out of zone
      {"sub.example.com", "ns.example.com. admin.example.com."},  // out of zone, apex's parent
      {"sub.example.com", "a.b.example.net. sub.example.com."},
      {"com", "a.gtld-servers.net. nstld.verisign-grs.com."},
  };
  const std::vector<std::string> prefixes = {"",     "nx.",       "NX.",   "www.",
                                             "WwW.", "a.b.c.nx.", "ns.x.", "ns1x."};
  for (const auto& zd : zones_) {
    auto z = zoneOf(zd.origin, zd.soa);
    REQUIRE(z->negativeSoaRecord().length > 0);
    for (const auto& prefix : prefixes) {
      const std::string apex = zd.origin == "com" ? "CoM." : zd.origin + ".";
      for (uint16_t qtype : {rr::kA, rr::kTXT, rr::kMX}) {
        const dns::Query q = parsed(prefix + apex, qtype);
        INFO(zd.origin << " SOA " << zd.soa << " question " << prefix + apex << " " << qtype);
        const auto general = write(*z, q, Path::kGeneral,
                                   {"x.ns.dns." + zd.origin + ".", "hostmaster." + zd.origin + ".",
                                    "y.example.net.", "mail.example.org."});
        // Every one of these questions is a replay case: no label just above the apex equals
        // the one of a name in the SOA (the guard cases are below).
        REQUIRE(replays(*z, q));
        CHECK(write(*z, q, Path::kReplay,
                    {"x.ns.dns." + zd.origin + ".", "hostmaster." + zd.origin + ".",
                     "y.example.net.", "mail.example.org."}) == general);
        // answer()'s NXDOMAIN and NODATA (all but www's A) write just the SOA after the question.
        if (!(prefix.rfind("www.", 0) == 0 || prefix.rfind("WwW.", 0) == 0) || qtype != rr::kA) {
          CHECK(write(*z, q, Path::kAnswer) == write(*z, q, Path::kGeneral));
        }
      }
    }
  }
}

TEST_CASE("negative SOA replay: decoded, the SOA of RFC 2308 §3 with the question's case",
          "[negsoa]") {
  auto z = zoneOf("example.com", "ns1 hostmaster");
  const dns::Query q = parsed("Nx.ExAmPlE.cOm.", rr::kA);
  const auto bytes = write(*z, q, Path::kReplay);
  const test::Decoded d = test::decode(bytes.data(), bytes.size());
  REQUIRE(d.ok);
  CHECK(d.authority == std::vector<std::string>{"ExAmPlE.cOm. 300 IN SOA ns1.ExAmPlE.cOm. "
                                                "hostmaster.ExAmPlE.cOm. 1 7200 3600 1209600 300"});
}

TEST_CASE("negative SOA replay: questions the general path compresses differently fall back",
          "[negsoa]") {
  // The question's label above the apex equals that of MNAME or RNAME: the general path points
  // at the longer suffix in the question, so replay declines and putNegativeSoa uses putRRset.
  auto z = zoneOf("example.com", "ns1 hostmaster");
  for (const std::string name : {"ns1.example.com.", "NS1.example.com.", "x.ns1.example.com.",
                                 "hostmaster.example.com.", "a.HostMaster.example.com."}) {
    INFO(name);
    const dns::Query q = parsed(name, rr::kTXT);
    CHECK_FALSE(replays(*z, q));
    CHECK(write(*z, q, Path::kAnswer) == write(*z, q, Path::kGeneral));
  }
  // A name of the apex's parent is no question this record can follow.
  const dns::Query outside = parsed("example.org.", rr::kA);
  CHECK_FALSE(replays(*z, outside));
  const dns::Query parent = parsed("com.", rr::kA);
  CHECK_FALSE(replays(*z, parent));
  const dns::Query lookalike = parsed("xexample.com.", rr::kA);  // same tail, not a label suffix
  CHECK_FALSE(replays(*z, lookalike));
}

TEST_CASE("negative SOA replay: 63-octet labels, in the apex, the SOA names and the question",
          "[negsoa]") {
  const std::string apex = label('a', 63) + "." + label('b', 63) + ".test";
  auto z = zoneOf(apex, label('c', 63) + " " + label('d', 63) + "." + label('e', 10));
  REQUIRE(z->negativeSoaRecord().length > 0);
  for (const std::string& prefix :
       {std::string(), label('x', 63) + ".", label('C', 62) + ".", std::string("ns1."),
        label('y', 40) + "." + label('z', 9) + "."}) {
    INFO(prefix.size());
    const dns::Query q = parsed(prefix + apex + ".", rr::kTXT);
    REQUIRE(replays(*z, q));
    const std::vector<std::string> later = {label('e', 10) + "." + apex + ".", "q." + apex + "."};
    CHECK(write(*z, q, Path::kReplay, later) == write(*z, q, Path::kGeneral, later));
    CHECK(write(*z, q, Path::kAnswer) == write(*z, q, Path::kGeneral));
  }
  // A question of 255 octets: the record's pointers reach furthest.
  const std::string longest = label('p', 63) + "." + label('q', 56) + "." + apex + ".";
  const dns::Query q = parsed(longest, rr::kA);
  REQUIRE(q.qname_lower.length == 255);
  REQUIRE(replays(*z, q));
  CHECK(write(*z, q, Path::kAnswer) == write(*z, q, Path::kGeneral));
  // Below MNAME's 63-octet label: the general path's turn.
  const dns::Query under = parsed("x." + label('C', 63) + "." + apex + ".", rr::kA);
  CHECK_FALSE(replays(*z, under));
  CHECK(write(*z, under, Path::kAnswer) == write(*z, under, Path::kGeneral));
}

TEST_CASE("negative SOA replay: a question with more labels than the dictionary keeps",
          "[negsoa]") {
  // 100 labels: the question's shortest suffixes (the apex among them) are not in the table, so
  // the general path writes the owner out; replay must not point at the apex.
  auto z = zoneOf("example.com", "ns1 hostmaster");
  std::string name;
  for (int i = 0; i < 100; ++i) name += "a.";
  const dns::Query q = parsed(name + "example.com.", rr::kA);
  CHECK_FALSE(replays(*z, q));
  CHECK(write(*z, q, Path::kAnswer) == write(*z, q, Path::kGeneral));
}

TEST_CASE("negative SOA replay: not after other records, not without room", "[negsoa]") {
  auto z = zoneOf("example.com", "ns1 hostmaster");
  const dns::Query q = parsed("nx.example.com.", rr::kA);
  std::vector<uint8_t> buf(65535);
  dns::ResponseWriter w;
  w.reset(buf.data(), buf.size(), 0);
  w.begin(q, true);
  REQUIRE(w.writeQnamePointer());  // anything after the question
  CHECK_FALSE(w.replay(z->negativeSoaRecord(), q.qname_lower, Section::kAuthority));
  // Room: a limit one octet short of the record (the reserve counts against it).
  const size_t full = write(*z, q, Path::kGeneral).size();
  for (size_t reserve : {size_t{0}, size_t{11}}) {
    dns::ResponseWriter tight;
    tight.reset(buf.data(), full - 1 + reserve, reserve);
    tight.begin(q, true);
    const dns::ResponseWriter::Mark before = tight.mark();
    CHECK_FALSE(tight.replay(z->negativeSoaRecord(), q.qname_lower, Section::kAuthority));
    CHECK(tight.size() == before.size);
    CHECK(write(*z, q, Path::kReplay, {}, full + reserve, reserve) ==
          write(*z, q, Path::kGeneral, {}, full + reserve, reserve));
  }
  // A zone answer that leaves no room is truncated either way.
  dns::ResponseWriter tight;
  tight.reset(buf.data(), full - 1, 0);
  tight.begin(q, true);
  CHECK(zones::answer(*z, q, tight, zones::AnswerOptions{}).truncated);
}

TEST_CASE("negative SOA replay: a CNAME to a missing name takes the general path", "[negsoa]") {
  auto zr = zones::loadZoneText("example.com",
                                "$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
                                "@ NS ns1\nns1 A 192.0.2.1\nalias CNAME gone\nok CNAME www\n"
                                "www A 192.0.2.2\n");
  REQUIRE_OK(zr);
  const zones::Zone& z = *zr->zone;
  for (const auto& [name, type] : {std::pair<std::string, uint16_t>{"alias.example.com.", rr::kA},
                                   {"ok.example.com.", rr::kTXT}}) {
    const dns::Query q = parsed(name, type);
    std::vector<uint8_t> buf(65535);
    dns::ResponseWriter w;
    w.reset(buf.data(), buf.size(), 0);
    w.begin(q, true);
    REQUIRE(zones::putRRset(
        z, *z.rrset(z.node(z.find(q.qname_lower.data, q.qname_lower.length)), rr::kCNAME), nullptr,
        w, Section::kAnswer));
    REQUIRE(zones::putRRset(z, z.negativeSoa(), z.apex(), w, Section::kAuthority));
    w.finishSections();
    const std::vector<uint8_t> general(buf.begin(),
                                       buf.begin() + static_cast<std::ptrdiff_t>(w.size()));
    CHECK(write(z, q, Path::kAnswer) == general);
  }
}

TEST_CASE("negative SOA replay through the pipeline, with and without EDNS, ECS and cookies",
          "[negsoa]") {
  auto z = zoneOf("example.com", "ns1 hostmaster");
  Published<server::ServingState> state{test::servingState({z})};
  server::QueryHandler handler(state);
  const std::vector<uint8_t> ecs = {0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100};
  const std::vector<uint8_t> cookie = {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<std::vector<uint8_t>> option_sets = {{}, ecs, cookie, ecs};
  option_sets.back().insert(option_sets.back().end(), cookie.begin(), cookie.end());
  for (const std::string name : {"nx.example.com.", "www.example.com.", "example.com."}) {
    for (size_t k = 0; k <= option_sets.size(); ++k) {
      test::QueryOptions o;
      o.flags = dns::flag::kRD;
      o.edns = k > 0;
      if (k > 0) o.options = option_sets[k - 1];
      INFO(name << " options " << k);
      const auto packet = test::makeQuery(name, rr::kTXT, o);
      uint8_t out[4096];
      const size_t n = handler.handle(packet.data(), packet.size(), out, sizeof out,
                                      server::Transport::kUdp, server::Peer{});
      const test::Decoded d = test::decode(out, n);
      REQUIRE(d.ok);
      CHECK(d.rcode == (name[0] == 'n' ? dns::rcode::kNXDomain : dns::rcode::kNoError));
      CHECK(d.authority ==
            std::vector<std::string>{"example.com. 300 IN SOA ns1.example.com. "
                                     "hostmaster.example.com. 1 7200 3600 1209600 300"});
      CHECK(d.has_opt == o.edns);
      const std::vector<std::vector<uint16_t>> codes = {{}, {}, {8}, {10}, {8, 10}};
      CHECK(optionCodes(d.opt_data) == codes[k]);  // ECS (8) and COOKIE (10) answered
      // Past the header, the question and SOA octet for octet as the general path writes them.
      const dns::Query q = parsed(name, rr::kTXT, o);
      const auto general = write(*z, q, Path::kGeneral);
      REQUIRE(n >= general.size());
      CHECK(std::vector<uint8_t>(out + 12, out + general.size()) ==
            std::vector<uint8_t>(general.begin() + 12, general.end()));
    }
  }
}
