// A cache lookup allocates nothing (resolver/cache.h): hits of every kind, stale hits and misses.
// Linked into no_alloc_test, whose replaced operator new counts
// (tests/unit/server/no_alloc_test.cc).
#include <catch2/catch.hpp>

#include "cache_fixture.h"
#include "resolver/cache.h"

uint64_t allocationsOnThisThread();

using namespace meridian;

TEST_CASE("no allocation per cache lookup", "[alloc][cache]") {
  QuiescentDomain domain;
  resolver::Cache cache(resolver::CacheConfig{}, domain);
  test::TestRRset a("www.example.com", dns::rrtype::kA, 300, {test::ipv4(192, 0, 2, 1)});
  const dns::NameBuf target = test::wireName("www.example.com");
  test::TestRRset cname("alias.example.com", dns::rrtype::kCNAME, 300,
                        {{target.data, target.data + target.length}}, {std::vector<uint8_t>(40)});
  test::TestRRset old("old.example.com", dns::rrtype::kA, 10, {test::ipv4(192, 0, 2, 2)});
  test::TestRRset soa("example.com", dns::rrtype::kSOA, 60, {test::soaRdata(1, 60)});
  REQUIRE(cache.insert(a.in, resolver::Rank::kAnswer, 0) == resolver::InsertResult::kStored);
  REQUIRE(cache.insert(cname.in, resolver::Rank::kAnswer, 0) == resolver::InsertResult::kStored);
  REQUIRE(cache.insert(old.in, resolver::Rank::kAnswer, 0) == resolver::InsertResult::kStored);
  const dns::NameBuf nx = test::wireName("nx.example.com");
  REQUIRE(cache.insertNegative(nx.data, nx.length, dns::rrtype::kA, dns::rrclass::kIN,
                               resolver::Negative::kNxdomain, soa.in, resolver::Rank::kAnswer,
                               0) == resolver::InsertResult::kStored);
  REQUIRE(cache.insertNegative(target.data, target.length, dns::rrtype::kAAAA, dns::rrclass::kIN,
                               resolver::Negative::kNodata, soa.in, resolver::Rank::kAnswer,
                               0) == resolver::InsertResult::kStored);

  struct Case {
    const char* name;
    uint16_t type;
    bool stale_ok;
    resolver::LookupStatus expect;
  };
  const Case cases[] = {
      {"WWW.example.com", dns::rrtype::kA, false, resolver::LookupStatus::kAnswer},
      {"alias.example.com", dns::rrtype::kA, false, resolver::LookupStatus::kCname},
      {"nx.example.com", dns::rrtype::kMX, false, resolver::LookupStatus::kNxdomain},
      {"www.example.com", dns::rrtype::kAAAA, false, resolver::LookupStatus::kNodata},
      {"old.example.com", dns::rrtype::kA, true, resolver::LookupStatus::kAnswer},  // stale
      {"old.example.com", dns::rrtype::kA, false, resolver::LookupStatus::kMiss},
      {"none.example.com", dns::rrtype::kA, false, resolver::LookupStatus::kMiss},
  };
  uint8_t out[1024];
  for (const Case& c : cases) {
    const dns::NameBuf n = test::wireName(c.name);
    const uint64_t before = allocationsOnThisThread();
    const auto r = cache.lookup(n.data, n.length, c.type, dns::rrclass::kIN, 20, out, c.stale_ok);
    const uint64_t used = allocationsOnThisThread() - before;
    INFO(c.name << " type " << c.type << " allocated " << used);
    CHECK(r.status == c.expect);
    CHECK(used == 0);
  }
}
