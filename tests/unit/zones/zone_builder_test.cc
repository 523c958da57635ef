#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../testutil.h"
#include "zones/loader.h"
#include "zones/lookup.h"
#include "zones/zone_builder.h"

using namespace meridian;

namespace {
const char* kHead =
    "$ORIGIN example.com.\n$TTL 3600\n"
    "@ IN SOA ns1 hostmaster ( 2024010101 7200 3600 1209600 300 )\n"
    "@ NS ns1\nns1 A 192.0.2.1\n";

std::string hex(size_t octets) {
  return std::string(2 * octets, 'a');
}
}  // namespace

TEST_CASE("records that can never fit a DNS message are refused with file:line") {
  // owner big.example.com. is 17 octets: 65535 - 12 - (17 + 4) - 2 - 10 = 65490 octets of RDATA.
  REQUIRE(zones::maxRdataLength(17) == 65490);
  auto ok = zones::loadZoneText(
      "example.com", std::string(kHead) + "big TYPE65280 \\# 65490 " + hex(65490) + "\n");
  REQUIRE_OK(ok);
  dns::NameBuf n;
  REQUIRE(dns::fromText("big.example.com.", n));
  const uint32_t i = ok->zone->find(n.data, n.length);
  REQUIRE(i != zones::kNone);
  const zones::RRset* rs = ok->zone->rrset(ok->zone->node(i), 65280);
  REQUIRE(rs != nullptr);
  CHECK(ok->zone->rr(rs->first_rr).length == 10 + 65490);  // no 16-bit wrap

  auto r = zones::loadZoneText(
      "example.com", std::string(kHead) + "big TYPE65280 \\# 65491 " + hex(65491) + "\n", "z.zone");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message ==
        "z.zone:6: RDATA of 65491 octets cannot fit in a DNS message (at most 65490 for this "
        "owner name)");
  // The largest RDLENGTH: 10 + 65535 would wrap RR::length to 9.
  r = zones::loadZoneText(
      "example.com", std::string(kHead) + "big TYPE65280 \\# 65535 " + hex(65535) + "\n", "z.zone");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.rfind("z.zone:6: RDATA of 65535 octets cannot fit", 0) == 0);
}

TEST_CASE("an RRset of more than 65535 records is refused (rr_count and ANCOUNT are 16 bits)") {
  auto zone = [](size_t n) {
    std::string text = kHead;
    text.reserve(n * 24);
    for (size_t i = 0; i < n; ++i) {
      text += "big A 10." + std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
              std::to_string(i & 255) + "\n";
    }
    return text;
  };
  auto ok = zones::loadZoneText("example.com", zone(65535), "z.zone");
  REQUIRE_OK(ok);
  dns::NameBuf n;
  REQUIRE(dns::fromText("big.example.com.", n));
  const zones::RRset* rs =
      ok->zone->rrset(ok->zone->node(ok->zone->find(n.data, n.length)), dns::rrtype::kA);
  REQUIRE(rs != nullptr);
  CHECK(rs->rr_count == 65535);
  auto r = zones::loadZoneText("example.com", zone(65536), "z.zone");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message ==
        "z.zone:6: the RRset big.example.com. A has 65536 records, more than 65535");
}

TEST_CASE("duplicates inside a large RRset are dropped with a warning, first one kept") {
  std::string text = kHead;
  for (int i = 0; i < 1000; ++i)
    text += "m A 10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250) + "\n";
  text += "m A 10.0.0.7\n";  // line 1006
  auto r = zones::loadZoneText("example.com", text, "z.zone");
  REQUIRE_OK(r);
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0] == "z.zone:1006: duplicate record m.example.com. ignored");
  CHECK(r->zone->recordCount() == 3 + 1000);
}

TEST_CASE("data below a DNAME is refused (RFC 6672 section 2.3)") {
  auto r = zones::loadZoneText("example.com",
                               std::string(kHead) +
                                   "old DNAME example.net.\n"  // 6
                                   "old A 192.0.2.5\n"         // 7: at the owner: fine
                                   "www.old A 192.0.2.6\n"     // 8
                                   "a.b.old TXT \"deep\"\n",   // 9 (b.old is an ENT)
                               "z.zone");
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().message);
  CHECK(r.error().message ==
        "z.zone:8: www.old.example.com. is below the DNAME at old.example.com.; no data may exist "
        "there (RFC 6672 \u00a72.3)\n"
        "z.zone:9: a.b.old.example.com. is below the DNAME at old.example.com.; no data may exist "
        "there (RFC 6672 \u00a72.3)");
  auto ok = zones::loadZoneText(
      "example.com", std::string(kHead) + "old DNAME example.net.\nold A 192.0.2.5\n", "z.zone");
  REQUIRE_OK(ok);
}

TEST_CASE("several zone-level errors are all reported") {
  auto r = zones::loadZoneText("example.com",
                               std::string(kHead) +
                                   "w A 192.0.2.1\nw CNAME x\n"  // 6-7
                                   "c CNAME a\nc CNAME b\n"      // 8-9
                                   "sub SOA ns1 h 1 2 3 4 5\n",  // 10
                               "z.zone");
  REQUIRE_FALSE(r.has_value());
  const std::string& m = r.error().message;
  INFO(m);
  CHECK(m.find("z.zone:8: more than one CNAME at c.example.com.") != std::string::npos);
  CHECK(m.find("z.zone:7: CNAME at w.example.com. beside other data (z.zone:6)") !=
        std::string::npos);
  CHECK(m.find("z.zone:10: SOA record at sub.example.com. is not at the zone apex") !=
        std::string::npos);
}

TEST_CASE("DNSSEC records load with a warning that answers are not signed") {
  auto r = zones::loadZoneText(
      "example.com",
      std::string(kHead) +
          "@ DNSKEY 256 3 8 AwEAAQ==\n"
          "@ RRSIG SOA 8 2 3600 20300101000000 20200101000000 12345 example.com. AAAA\n"
          "@ NSEC3PARAM 1 0 10 AABB\n");
  REQUIRE_OK(r);
  REQUIRE(r->warnings.size() == 1);
  CHECK(r->warnings[0] ==
        "zone example.com. contains DNSSEC records (DNSKEY, RRSIG, NSEC3PARAM): they are served as "
        "plain data and answers are not signed (DNSSEC is not supported yet: DO is echoed but no "
        "RRSIGs are added to answers)");
  auto plain = zones::loadZoneText("example.com", kHead);
  REQUIRE_OK(plain);
  CHECK(plain->warnings.empty());
}

TEST_CASE("the zone digest changes with the served data, not with record order") {
  auto load = [](const std::string& body) {
    auto r = zones::loadZoneText("example.com", std::string(kHead) + body);
    REQUIRE_OK(r);
    return r->zone->digest();
  };
  const uint64_t base = load("a A 192.0.2.1\na A 192.0.2.2\nb TXT x\n");
  CHECK(load("b TXT x\na A 192.0.2.2\na A 192.0.2.1\n") == base);           // reordered
  CHECK(load("a A 192.0.2.1\na A 192.0.2.2\nb TXT x\nb TXT x\n") == base);  // duplicate
  CHECK(load("a A 192.0.2.1\na A 192.0.2.3\nb TXT x\n") != base);           // RDATA
  CHECK(load("a 60 A 192.0.2.1\na 60 A 192.0.2.2\nb TXT x\n") != base);     // TTL
  CHECK(load("a A 192.0.2.1\na A 192.0.2.2\nc TXT x\n") != base);           // owner
  CHECK(load("a A 192.0.2.1\na A 192.0.2.2\n") != base);                    // removed record
}

// Zone::find compares names that share their first 8 octets (the search key) word by word from
// octet 8 on; every name of such a run must be found, and its near misses (one octet more, less or
// changed past octet 8, at every length from 9 to beyond 24) must not.
TEST_CASE("Zone::find tells apart names that share their first 8 octets", "[zone]") {
  std::string text = kHead;
  std::vector<std::string> names;
  for (int i = 0; i < 400; ++i) {
    names.push_back("hostname" + std::to_string(i * 7919 % 100000) + "x" +
                    std::string(i % 13, 'q'));
    text += names.back() + " A 192.0.2.9\n";
  }
  auto z = zones::loadZoneText("example.com", text);
  REQUIRE_OK(z);
  for (const auto& name : names) {
    dns::NameBuf n;
    REQUIRE(dns::fromText(name + ".example.com.", n));
    INFO(name);
    const uint32_t i = z->zone->find(n.data, n.length);
    REQUIRE(i != zones::kNone);
    CHECK(dns::toText(z->zone->nodeName(z->zone->node(i))) == name + ".example.com.");
    for (const std::string& miss :
         {name + "z", name.substr(0, name.size() - 1) + "!", name.substr(0, name.size() - 1)}) {
      if (std::find(names.begin(), names.end(), miss) != names.end()) continue;
      REQUIRE(dns::fromText(miss + ".example.com.", n));
      INFO(miss);
      CHECK(z->zone->find(n.data, n.length) == zones::kNone);
    }
  }
}

// Zone::find's index on a large zone: every node (owners and empty non-terminals) is found at its
// own index, and absent names between, around and beside them are not: short and long names,
// names that share long prefixes or differ in one octet or in their length, lengths from 3 to past
// 40 octets. Checked on the zone as loaded (random seed) and on copies whose index keeps 1 or 0
// tag bits: there most or all slots' tags match any name, so find() is right only because it
// compares the names themselves on a tag match.
TEST_CASE("Zone::find finds every node of a large zone and nothing else", "[zone]") {
  std::string text = "$ORIGIN t.\n$TTL 3600\n@ SOA ns hm 1 7200 3600 1209600 300\n@ NS ns\n";
  std::vector<std::string> present, absent;
  for (int i = 0; i < 12000; ++i) {
    const std::string s = std::to_string(i * 7919 % 12007);
    if (i % 3 == 0) {
      absent.push_back("n" + s);
      absent.push_back("sharedprefixlabel" + s + "x");
      absent.push_back(s + ".sub");
      absent.push_back("prefix" + s);
      continue;
    }
    present.push_back("n" + s);                        // short names
    present.push_back("sharedprefixlabel" + s + "x");  // shares 18 octets with its run
    present.push_back(s + ".sub");                     // two labels under "sub"
    present.push_back("prefix" + s);                   // 10..15 octets sharing their first 7
    absent.push_back("n" + s + "0");                   // a longer neighbour
    absent.push_back("sharedprefixlabel" + s + "y");   // differs in the last octet
    absent.push_back("sharedprefixlabel" + s);         // one octet shorter
    absent.push_back(s + ".sub2");
    absent.push_back("prefix" + s + "!");
  }
  present.push_back("ns");
  for (const auto& name : present) text += name + " A 192.0.2.9\n";
  absent.push_back(std::string(60, 'z') + "." + std::string(60, 'z'));  // longest
  absent.push_back("a");                                                // shortest
  absent.push_back("sub.sub");
  auto z = zones::loadZoneText("t", text);
  REQUIRE_OK(z);
  REQUIRE(z->zone->nodeCount() == present.size() + 2);  // and the apex and "sub"
  std::sort(present.begin(), present.end());
  absent.erase(std::remove_if(absent.begin(), absent.end(),
                              [&](const std::string& name) {
                                return std::binary_search(present.begin(), present.end(), name);
                              }),
               absent.end());
  auto check = [&](const zones::Zone& zone) {
    size_t found = 0;
    for (uint32_t i = 0; i < zone.nodeCount(); ++i) {
      const zones::Node& node = zone.node(i);
      if (zone.find(zone.nodeName(node), node.name_length) == i) ++found;
    }
    CHECK(found == zone.nodeCount());
    size_t missed = 0;
    for (const auto& name : absent) {
      dns::NameBuf n;
      REQUIRE(dns::fromText(name + ".t.", n));
      if (zone.find(n.data, n.length) != zones::kNone) {
        UNSCOPED_INFO(name);
        ++missed;
      }
    }
    CHECK(missed == 0);
  };
  check(*z->zone);
  for (const uint32_t tag_mask : {1u, 0u}) {
    INFO("tag mask " << tag_mask);
    zones::Zone colliding = *z->zone;
    colliding.rebuildIndexForTesting(7, tag_mask);
    check(colliding);
  }
  const zones::Zone& zone = *z->zone;
  dns::NameBuf root;
  REQUIRE(dns::fromText(".", root));
  CHECK(zone.find(root.data, root.length) == zones::kNone);
  CHECK(zones::Zone().find(root.data, root.length) == zones::kNone);  // no nodes, no index
}

// A node keeps its octets below the apex inline when they fit (Node::kInlineOctets) and find()
// then compares the rest of the name with its copy of the apex. With every tag matching (mask 0),
// names of a node's length that differ only above the apex, only below it, or at the inline
// boundary (relative parts of 10, 11 and 12 octets) must not be taken for it.
TEST_CASE("Zone::find compares inline relative names and the apex", "[zone]") {
  std::string text = kHead;
  const std::vector<std::string> present = {"a",           "abcdefghi",  "abcdefghij",
                                            "abcdefghijk", "x.abcdefgh", "www.sub"};
  for (const auto& name : present) text += name + " A 192.0.2.9\n";
  auto z = zones::loadZoneText("example.com", text);
  REQUIRE_OK(z);
  zones::Zone colliding = *z->zone;
  colliding.rebuildIndexForTesting(7, 0);
  for (const zones::Zone* zone : {z->zone.get(), static_cast<const zones::Zone*>(&colliding)}) {
    for (const auto& name : present) {
      dns::NameBuf n;
      REQUIRE(dns::fromText(name + ".example.com.", n));
      INFO(name);
      const uint32_t i = zone->find(n.data, n.length);
      REQUIRE(i != zones::kNone);
      CHECK(dns::toText(zone->nodeName(zone->node(i))) == name + ".example.com.");
      // Same length, same relative octets, another apex; and the other way round.
      for (const std::string& miss : {name + ".example.org.", name + ".exbmple.com.",
                                      std::string(1, 'b').append(name, 1).append(".example.com."),
                                      name.substr(0, name.size() - 1) + "z.example.com."}) {
        REQUIRE(dns::fromText(miss, n));
        INFO(miss);
        CHECK(zone->find(n.data, n.length) == zones::kNone);
      }
    }
    dns::NameBuf apex;
    REQUIRE(dns::fromText("example.com.", apex));
    CHECK(zone->find(apex.data, apex.length) == zone->apexNode());
    REQUIRE(dns::fromText("example.org.", apex));
    CHECK(zone->find(apex.data, apex.length) == zones::kNone);
  }
}

// Zone::rrset stops scanning a node's RRsets (sorted by type) at the first type not below the one
// asked for; putRRset walks a plain RRset's records by their RDLENGTH in the blob and reads RRs
// only for records with compressible names; kCname marks the nodes answer() checks for a CNAME.
TEST_CASE("a node's RRsets are found by type and their records walked from the blob", "[zone]") {
  const std::string text = std::string(kHead) +
                           "h 300 TXT \"one\"\nh 300 TXT \"second string\"\nh 60 A 192.0.2.7\n"
                           "h 60 A 192.0.2.8\nh MX 10 ns1\nh MX 20 mail.example.net.\n"
                           "h AAAA 2001:db8::1\nh CAA 0 issue \"ca.example\"\n"
                           "h TYPE65280 \\# 3 abcdef\nh TYPE65280 \\# 1 00\nc CNAME h\n";
  auto z = zones::loadZoneText("example.com", text);
  REQUIRE_OK(z);
  const zones::Zone& zone = *z->zone;
  dns::NameBuf n;
  REQUIRE(dns::fromText("h.example.com.", n));
  const zones::Node& h = zone.node(zone.find(n.data, n.length));
  CHECK_FALSE(h.flags & zones::Node::kCname);
  struct Want {
    uint16_t type;
    uint16_t count;
    uint32_t ttl;
    bool plain;
  };
  for (const Want& want :
       {Want{1, 2, 60, true}, Want{15, 2, 3600, false}, Want{16, 2, 300, true},
        Want{28, 1, 3600, true}, Want{257, 1, 3600, true}, Want{65280, 2, 3600, true}}) {
    INFO("type " << want.type);
    const zones::RRset* rs = zone.rrset(h, want.type);
    REQUIRE(rs != nullptr);
    CHECK(rs->rr_count == want.count);
    CHECK(zone.ttl(*rs) == want.ttl);
    CHECK(rs->plain == want.plain);
    CHECK(rs->blob_offset == zone.rr(rs->first_rr).offset);
  }
  for (const uint16_t absent : {2, 5, 6, 14, 17, 27, 29, 256, 258, 65279, 65281}) {
    CHECK(zone.rrset(h, absent) == nullptr);
  }
  // Both TXT records and both MX records come out whole, in order, with their owner compressed.
  dns::Query q;
  q.qname = n;
  q.qname_lower = n;
  q.qclass = dns::rrclass::kIN;
  q.has_question = true;
  for (const uint16_t type : {dns::rrtype::kTXT, dns::rrtype::kMX, uint16_t{65280}}) {
    q.qtype = type;
    uint8_t buf[512];
    dns::ResponseWriter w;
    w.reset(buf, sizeof buf, 0);
    w.begin(q, true);
    const size_t before = w.size();
    REQUIRE(zones::putRRset(zone, *zone.rrset(h, type), nullptr, w,
                            dns::ResponseWriter::Section::kAnswer));
    const zones::RRset& rs = *zone.rrset(h, type);
    CHECK(w.mark().counts[0] == rs.rr_count);
    if (rs.plain) {  // each record: a pointer to the question name, then its octets as stored
      size_t expect = 0;
      for (uint32_t i = 0; i < rs.rr_count; ++i) expect += 2 + zone.rr(rs.first_rr + i).length;
      CHECK(w.size() - before == expect);
    }
  }
  REQUIRE(dns::fromText("c.example.com.", n));
  CHECK(zone.node(zone.find(n.data, n.length)).flags & zones::Node::kCname);
}

// The index's hash is keyed per zone from std::random_device, so names chosen (through a zone
// file, the API or a transfer) to collide under one load's keys do not collide under the next's.
TEST_CASE("each loaded zone's name index has its own random seed", "[zone]") {
  const std::string text = std::string(kHead) + "www A 192.0.2.2\n";
  auto a = zones::loadZoneText("example.com", text);
  auto b = zones::loadZoneText("example.com", text);
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  CHECK(a->zone->indexSeed() != b->zone->indexSeed());
  dns::NameBuf n;
  REQUIRE(dns::fromText("www.example.com.", n));
  CHECK(a->zone->find(n.data, n.length) == b->zone->find(n.data, n.length));
  CHECK(a->zone->find(n.data, n.length) != zones::kNone);
}
