// The resolver's RRset and negative cache (resolver/cache.h): keys, TTLs on an injected clock,
// RFC 2308 negative answers, RFC 2181 ranking, the memory bound, serve-stale, prefetch, flush,
// dump, and readers racing a writer.
#include "resolver/cache.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "cache_fixture.h"
#include "zones/writer.h"

using namespace meridian;
using resolver::Cache;
using resolver::CacheConfig;
using resolver::InsertResult;
using resolver::LookupStatus;
using resolver::Negative;
using resolver::Rank;
using test::ipv4;
using test::TestRRset;

namespace {

// "<letter><n>.example.com", built with append(): GCC 12 at -O3 reports a false -Wrestrict for
// "lit" + std::string + "lit".
std::string numbered(char letter, long n) {
  std::string s(1, letter);
  s.append(std::to_string(n)).append(".example.com");
  return s;
}

constexpr uint16_t kA = dns::rrtype::kA, kAAAA = dns::rrtype::kAAAA, kIN = dns::rrclass::kIN;

struct Answer {
  resolver::LookupResult result;
  std::vector<test::DecodedRR> rrs;
};

Answer ask(const Cache& cache, const std::string& name, uint16_t type, resolver::Seconds now,
           bool stale_ok = false) {
  const dns::NameBuf n = test::wireName(name);
  uint8_t buf[4096];
  Answer a;
  a.result = cache.lookup(n.data, n.length, type, kIN, now, buf, stale_ok);
  if (a.result.status != LookupStatus::kMiss && a.result.status != LookupStatus::kNoSpace) {
    a.rrs = test::decodeRRs(buf, a.result.length, a.result.records + a.result.rrsigs);
  }
  return a;
}

InsertResult put(Cache& cache, const std::string& owner, uint16_t type, uint32_t ttl,
                 std::vector<std::vector<uint8_t>> rdatas, resolver::Seconds now,
                 Rank rank = Rank::kAnswer) {
  TestRRset s(owner, type, ttl, std::move(rdatas));
  return cache.insert(s.in, rank, now);
}

InsertResult putNegative(Cache& cache, const std::string& name, uint16_t type, Negative kind,
                         uint32_t soa_ttl, uint32_t minimum, resolver::Seconds now,
                         Rank rank = Rank::kAnswer) {
  TestRRset soa("example.com", dns::rrtype::kSOA, soa_ttl, {test::soaRdata(7, minimum)});
  const dns::NameBuf n = test::wireName(name);
  return cache.insertNegative(n.data, n.length, type, kIN, kind, soa.in, rank, now);
}

}  // namespace

TEST_CASE("cache: an RRset is answered with its records, owner lowercased", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  REQUIRE(put(cache, "WWW.Example.COM", kA, 300, {ipv4(192, 0, 2, 1), ipv4(192, 0, 2, 2)}, 1000) ==
          InsertResult::kStored);

  for (const char* q : {"www.example.com", "WwW.eXample.com", "WWW.EXAMPLE.COM"}) {
    const Answer a = ask(cache, q, kA, 1000);
    REQUIRE(a.result.status == LookupStatus::kAnswer);
    REQUIRE(a.result.records == 2);
    REQUIRE(a.result.rank == Rank::kAnswer);
    REQUIRE(a.rrs[0].owner == "www.example.com.");
    REQUIRE(a.rrs[0].type == kA);
    REQUIRE(a.rrs[0].ttl == 300);
    REQUIRE(a.rrs[1].rdata == ipv4(192, 0, 2, 2));
  }
  REQUIRE(ask(cache, "www.example.com", kAAAA, 1000).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "www.example.org", kA, 1000).result.status == LookupStatus::kMiss);
  const resolver::CacheStats s = cache.stats();
  REQUIRE(s.hits == 3);
  REQUIRE(s.misses == 2);
  REQUIRE(s.entries == 1);
}

TEST_CASE("cache: the answer's TTL is the remaining time", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  REQUIRE(put(cache, "www.example.com", kA, 300, {ipv4(192, 0, 2, 1)}, 1000) ==
          InsertResult::kStored);
  REQUIRE(ask(cache, "www.example.com", kA, 1100).rrs[0].ttl == 200);
  REQUIRE(ask(cache, "www.example.com", kA, 1299).rrs[0].ttl == 1);
  REQUIRE(ask(cache, "www.example.com", kA, 1300).result.status == LookupStatus::kMiss);
}

TEST_CASE("cache: TTL floor and cap; TTL 0 is not cached", "[cache]") {
  QuiescentDomain domain;
  CacheConfig cfg;
  cfg.min_ttl = 60;
  cfg.max_ttl = 3600;
  Cache cache(cfg, domain);
  REQUIRE(put(cache, "short.example.com", kA, 5, {ipv4(192, 0, 2, 1)}, 0) == InsertResult::kStored);
  REQUIRE(put(cache, "long.example.com", kA, 100000, {ipv4(192, 0, 2, 1)}, 0) ==
          InsertResult::kStored);
  REQUIRE(ask(cache, "short.example.com", kA, 0).rrs[0].ttl == 60);
  REQUIRE(ask(cache, "long.example.com", kA, 0).rrs[0].ttl == 3600);

  Cache no_floor(CacheConfig{}, domain);
  REQUIRE(put(no_floor, "zero.example.com", kA, 0, {ipv4(192, 0, 2, 1)}, 0) ==
          InsertResult::kZeroTtl);
  REQUIRE(ask(no_floor, "zero.example.com", kA, 0).result.status == LookupStatus::kMiss);
}

TEST_CASE("cache: NXDOMAIN per name, NODATA per name and type (RFC 2308)", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  // RFC 2308 §5: the lower of the SOA's TTL (3600) and MINIMUM (300).
  REQUIRE(putNegative(cache, "nx.example.com", kA, Negative::kNxdomain, 3600, 300, 0) ==
          InsertResult::kStored);
  for (uint16_t type : {kA, kAAAA, dns::rrtype::kMX}) {
    const Answer a = ask(cache, "NX.example.com", type, 10);
    REQUIRE(a.result.status == LookupStatus::kNxdomain);
    REQUIRE(a.result.records == 1);
    REQUIRE(a.rrs[0].owner == "example.com.");
    REQUIRE(a.rrs[0].type == dns::rrtype::kSOA);
    REQUIRE(a.rrs[0].ttl == 290);
    REQUIRE(a.rrs[0].rdata == test::soaRdata(7, 300));
  }

  // The SOA's own TTL lower than MINIMUM.
  REQUIRE(putNegative(cache, "www.example.com", kAAAA, Negative::kNodata, 120, 600, 0) ==
          InsertResult::kStored);
  const Answer nodata = ask(cache, "www.example.com", kAAAA, 0);
  REQUIRE(nodata.result.status == LookupStatus::kNodata);
  REQUIRE(nodata.rrs[0].ttl == 120);
  REQUIRE(ask(cache, "www.example.com", kA, 0).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "www.example.com", kAAAA, 120).result.status == LookupStatus::kMiss);

  // max_negative_ttl caps both.
  REQUIRE(putNegative(cache, "big.example.com", kA, Negative::kNxdomain, 86400, 86400, 0) ==
          InsertResult::kStored);
  REQUIRE(ask(cache, "big.example.com", kA, 0).rrs[0].ttl == 3600);

  // Data at the name ends its NXDOMAIN.
  REQUIRE(put(cache, "nx.example.com", kA, 60, {ipv4(192, 0, 2, 9)}, 20) == InsertResult::kStored);
  REQUIRE(ask(cache, "nx.example.com", kA, 20).result.status == LookupStatus::kAnswer);
  REQUIRE(ask(cache, "nx.example.com", kAAAA, 20).result.status == LookupStatus::kMiss);
}

TEST_CASE("cache: a CNAME answers for an absent type; RRSIGs kept with their set", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  const dns::NameBuf target = test::wireName("www.example.com");
  const std::vector<uint8_t> sig(40, 0xab);
  TestRRset cname("alias.example.com", dns::rrtype::kCNAME, 300,
                  {{target.data, target.data + target.length}}, {sig});
  REQUIRE(cache.insert(cname.in, Rank::kAnswer, 0) == InsertResult::kStored);

  const Answer a = ask(cache, "alias.example.com", kA, 0);
  REQUIRE(a.result.status == LookupStatus::kCname);
  REQUIRE(a.result.records == 1);
  REQUIRE(a.result.rrsigs == 1);
  REQUIRE(a.rrs[0].type == dns::rrtype::kCNAME);
  REQUIRE(a.rrs[1].type == dns::rrtype::kRRSIG);
  REQUIRE(a.rrs[1].rdata == sig);
  REQUIRE(a.rrs[1].ttl == 300);
  REQUIRE(ask(cache, "alias.example.com", dns::rrtype::kCNAME, 0).result.status ==
          LookupStatus::kAnswer);

  // The caller's buffer too small: nothing written, said so.
  const dns::NameBuf n = test::wireName("alias.example.com");
  uint8_t small[16];
  REQUIRE(cache.lookup(n.data, n.length, kA, kIN, 0, small).status == LookupStatus::kNoSpace);
}

TEST_CASE("cache: RFC 2181 ranking: glue never replaces an answer, an answer replaces glue",
          "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 1)}, 0, Rank::kAdditional) ==
          InsertResult::kStored);
  REQUIRE(ask(cache, "ns1.example.com", kA, 0).result.rank == Rank::kAdditional);
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 2)}, 1, Rank::kAnswer) ==
          InsertResult::kStored);
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 3)}, 2, Rank::kAdditional) ==
          InsertResult::kKeptHigherRank);
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 3)}, 2, Rank::kAuthority) ==
          InsertResult::kKeptHigherRank);
  Answer a = ask(cache, "ns1.example.com", kA, 2);
  REQUIRE(a.result.rank == Rank::kAnswer);
  REQUIRE(a.rrs[0].rdata == ipv4(192, 0, 2, 2));

  // Same rank: the newer data.
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 4)}, 3) == InsertResult::kStored);
  REQUIRE(ask(cache, "ns1.example.com", kA, 3).rrs[0].rdata == ipv4(192, 0, 2, 4));
  // Once the answer expired, glue may take its place.
  REQUIRE(put(cache, "ns1.example.com", kA, 300, {ipv4(192, 0, 2, 5)}, 303, Rank::kAdditional) ==
          InsertResult::kStored);
  a = ask(cache, "ns1.example.com", kA, 303);
  REQUIRE(a.result.rank == Rank::kAdditional);
  REQUIRE(a.rrs[0].rdata == ipv4(192, 0, 2, 5));
}

TEST_CASE("cache: eviction keeps the bytes under cache_size; a hit entry survives (CLOCK)",
          "[cache]") {
  QuiescentDomain domain;
  CacheConfig cfg;
  cfg.cache_size = 32 * 1024;
  cfg.shards = 2;
  Cache cache(cfg, domain);
  REQUIRE(put(cache, "keep.example.com", kA, 3600, {ipv4(192, 0, 2, 1)}, 0) ==
          InsertResult::kStored);
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(put(cache, numbered('n', i), kA, 3600,
                {ipv4(10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i))},
                0) == InsertResult::kStored);
    REQUIRE(cache.stats().bytes <= cfg.cache_size);
    REQUIRE(ask(cache, "keep.example.com", kA, 0).result.status == LookupStatus::kAnswer);
  }
  const resolver::CacheStats s = cache.stats();
  REQUIRE(s.evictions > 0);
  REQUIRE(s.entries + s.evictions == 2001);
  REQUIRE(ask(cache, "n1999.example.com", kA, 0).result.status == LookupStatus::kAnswer);
  REQUIRE(ask(cache, "n0.example.com", kA, 0).result.status == LookupStatus::kMiss);
  // Replaced and evicted entries wait for the readers' quiescent points, then go.
  REQUIRE(domain.pending() >= s.evictions);
  REQUIRE(domain.reclaim() == 0);
}

TEST_CASE("cache: stale data only when asked and only within stale_ttl (RFC 8767)", "[cache]") {
  QuiescentDomain domain;
  CacheConfig cfg;
  cfg.stale_ttl = 3600;
  Cache cache(cfg, domain);
  REQUIRE(put(cache, "www.example.com", kA, 300, {ipv4(192, 0, 2, 1)}, 1000) ==
          InsertResult::kStored);
  Answer a = ask(cache, "www.example.com", kA, 1299, true);
  REQUIRE(a.result.status == LookupStatus::kAnswer);
  REQUIRE_FALSE(a.result.stale);
  REQUIRE(a.rrs[0].ttl == 1);

  REQUIRE(ask(cache, "www.example.com", kA, 1400).result.status == LookupStatus::kMiss);
  a = ask(cache, "www.example.com", kA, 1400, true);
  REQUIRE(a.result.status == LookupStatus::kAnswer);
  REQUIRE(a.result.stale);
  REQUIRE(a.rrs[0].ttl == Cache::kStaleAnswerTtl);
  REQUIRE(ask(cache, "www.example.com", kA, 1300 + 3599, true).result.stale);
  REQUIRE(ask(cache, "www.example.com", kA, 1300 + 3600, true).result.status ==
          LookupStatus::kMiss);

  // Negative answers go stale the same way.
  REQUIRE(putNegative(cache, "nx.example.com", kA, Negative::kNxdomain, 60, 60, 0) ==
          InsertResult::kStored);
  REQUIRE(ask(cache, "nx.example.com", kA, 100, true).result.status == LookupStatus::kNxdomain);
  REQUIRE(ask(cache, "nx.example.com", kA, 100).result.status == LookupStatus::kMiss);

  CacheConfig off;
  off.stale_ttl = 0;
  Cache no_stale(off, domain);
  REQUIRE(put(no_stale, "www.example.com", kA, 300, {ipv4(192, 0, 2, 1)}, 1000) ==
          InsertResult::kStored);
  REQUIRE(ask(no_stale, "www.example.com", kA, 1300, true).result.status == LookupStatus::kMiss);
}

TEST_CASE("cache: prefetch is signalled once, for a popular entry in its last 10 %", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  REQUIRE(put(cache, "hot.example.com", kA, 100, {ipv4(192, 0, 2, 1)}, 0) == InsertResult::kStored);
  REQUIRE(put(cache, "cold.example.com", kA, 100, {ipv4(192, 0, 2, 1)}, 0) ==
          InsertResult::kStored);
  for (int i = 0; i < 3; ++i) REQUIRE_FALSE(ask(cache, "hot.example.com", kA, i).result.prefetch);
  REQUIRE_FALSE(ask(cache, "hot.example.com", kA, 89).result.prefetch);  // 11 s of 100 left
  REQUIRE(ask(cache, "hot.example.com", kA, 90).result.prefetch);        // 10 s left
  REQUIRE_FALSE(ask(cache, "hot.example.com", kA, 91).result.prefetch);  // already signalled
  // Asked once only: not popular.
  REQUIRE_FALSE(ask(cache, "cold.example.com", kA, 95).result.prefetch);
  // A refresh is a new entry, which may signal again in its own last 10 %.
  REQUIRE(put(cache, "hot.example.com", kA, 100, {ipv4(192, 0, 2, 1)}, 92) ==
          InsertResult::kStored);
  for (int i = 0; i < 3; ++i) REQUIRE_FALSE(ask(cache, "hot.example.com", kA, 92).result.prefetch);
  REQUIRE(ask(cache, "hot.example.com", kA, 182).result.prefetch);
}

TEST_CASE("cache: flush NAME removes every type at the name; flush-all everything", "[cache]") {
  QuiescentDomain domain;
  Cache cache(CacheConfig{}, domain);
  REQUIRE(put(cache, "www.example.com", kA, 300, {ipv4(192, 0, 2, 1)}, 0) == InsertResult::kStored);
  REQUIRE(put(cache, "www.example.com", kAAAA, 300, {std::vector<uint8_t>(16, 1)}, 0) ==
          InsertResult::kStored);
  REQUIRE(putNegative(cache, "www.example.com", dns::rrtype::kMX, Negative::kNodata, 60, 60, 0) ==
          InsertResult::kStored);
  REQUIRE(put(cache, "mail.example.com", kA, 300, {ipv4(192, 0, 2, 2)}, 0) ==
          InsertResult::kStored);
  REQUIRE(putNegative(cache, "nx.example.com", kA, Negative::kNxdomain, 60, 60, 0) ==
          InsertResult::kStored);

  const dns::NameBuf www = test::wireName("WWW.example.com");
  REQUIRE(cache.flush(www.data, www.length) == 3);
  REQUIRE(ask(cache, "www.example.com", kA, 0).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "www.example.com", kAAAA, 0).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "www.example.com", dns::rrtype::kMX, 0).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "mail.example.com", kA, 0).result.status == LookupStatus::kAnswer);
  REQUIRE(cache.stats().entries == 2);

  REQUIRE(cache.flushAll() == 2);
  REQUIRE(ask(cache, "mail.example.com", kA, 0).result.status == LookupStatus::kMiss);
  REQUIRE(ask(cache, "nx.example.com", kA, 0).result.status == LookupStatus::kMiss);
  REQUIRE(cache.stats().entries == 0);
}

TEST_CASE("cache: dump writes one RRset per line with the remaining TTL", "[cache]") {
  QuiescentDomain domain;
  CacheConfig cfg;
  cfg.shards = 1;  // one table: a stable order is not needed, but the lines are few
  Cache cache(cfg, domain);
  REQUIRE(put(cache, "www.example.com", kA, 300, {ipv4(192, 0, 2, 1), ipv4(192, 0, 2, 2)}, 0) ==
          InsertResult::kStored);
  REQUIRE(putNegative(cache, "nx.example.com", kA, Negative::kNxdomain, 60, 60, 0) ==
          InsertResult::kStored);
  REQUIRE(put(cache, "old.example.com", kA, 10, {ipv4(192, 0, 2, 3)}, 0, Rank::kAdditional) ==
          InsertResult::kStored);
  const std::string d = cache.dump(20, {zones::typeToText, zones::rdataToText});
  INFO(d);
  CHECK(d.find("www.example.com. 280 IN A 192.0.2.1 | 192.0.2.2 ; rank=answer\n") !=
        std::string::npos);
  CHECK(d.find("nx.example.com. 40 IN NXDOMAIN ; soa example.com. SOA . . 7 0 0 0 60 "
               "rank=answer\n") != std::string::npos);
  CHECK(d.find("old.example.com. 0 IN A 192.0.2.3 ; rank=additional stale\n") != std::string::npos);
  CHECK(std::count(d.begin(), d.end(), '\n') == 3);
  // Without formatters: RFC 3597 §5.
  CHECK(cache.dump(20).find("www.example.com. 280 IN TYPE1 \\# 4 c0000201 | \\# 4 c0000202 ;") !=
        std::string::npos);
}

TEST_CASE("cache: two readers look up while a writer replaces and evicts", "[cache][threads]") {
  QuiescentDomain domain;
  CacheConfig cfg;
  cfg.cache_size = 64 * 1024;  // small: the writer's inserts evict all along
  cfg.shards = 4;
  Cache cache(cfg, domain);
  constexpr int kNames = 64;
  constexpr int kRounds = 300;
  // Every record of one version carries that version: a reader that saw half of one entry and
  // half of another (or freed memory) would find records that disagree.
  const auto version = [&](int name, int v, resolver::Seconds now) {
    std::vector<std::vector<uint8_t>> rdatas;
    for (int r = 0; r < 1 + v % 5; ++r) {
      rdatas.push_back(ipv4(static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
                            static_cast<uint8_t>(name), static_cast<uint8_t>(r)));
    }
    return put(cache, numbered('n', name), kA, 3600, std::move(rdatas), now);
  };
  for (int n = 0; n < kNames; ++n) REQUIRE(version(n, 0, 0) == InsertResult::kStored);

  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, hits{0};
  auto reader = [&] {
    QuiescentDomain::Slot* slot = domain.enter();
    uint8_t buf[1024];
    std::vector<dns::NameBuf> names;
    for (int n = 0; n < kNames; ++n) names.push_back(test::wireName(numbered('n', n)));
    while (!done.load(std::memory_order_acquire)) {
      for (int n = 0; n < kNames; ++n) {
        const auto r = cache.lookup(names[n].data, names[n].length, kA, kIN, 0, buf);
        if (r.status != LookupStatus::kAnswer) continue;
        hits.fetch_add(1, std::memory_order_relaxed);
        const auto rrs = test::decodeRRs(buf, r.length, r.records);
        const uint8_t v0 = rrs[0].rdata[0], v1 = rrs[0].rdata[1];
        if (rrs.size() != size_t(1 + (v0 | v1 << 8) % 5)) bad.fetch_add(1);
        for (size_t i = 0; i < rrs.size(); ++i) {
          if (rrs[i].rdata != ipv4(v0, v1, static_cast<uint8_t>(n), static_cast<uint8_t>(i))) {
            bad.fetch_add(1);
          }
        }
      }
      domain.quiescent(*slot);
    }
    domain.leave(slot);
  };
  std::thread r1(reader), r2(reader);
  for (int round = 1; round <= kRounds; ++round) {
    for (int n = 0; n < kNames; ++n) REQUIRE(version(n, round, 0) == InsertResult::kStored);
    // Filler that pushes the cache over its bound.
    for (int f = 0; f < 20; ++f) {
      REQUIRE(put(cache, numbered('f', round * 20 + f), kA, 3600, {ipv4(10, 0, 0, 1)}, 0) ==
              InsertResult::kStored);
    }
    domain.reclaim();
  }
  done.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  REQUIRE(bad.load() == 0);
  REQUIRE(cache.stats().evictions > 0);
  REQUIRE(cache.stats().bytes <= cfg.cache_size);
  INFO("hits " << hits.load());
  // Readers gone: everything retired can go now.
  REQUIRE(domain.reclaim() == 0);
  REQUIRE(domain.freed() > uint64_t{kNames} * kRounds);
}
