// The cost of a cache hit in the resolver's RRset cache (resolver/cache.h), without sockets: fills
// a cache with NAMES A RRsets of two records each and looks every name up ROUNDS times, as a worker
// answering from the cache does (mixed-case names, so the lowercasing is counted). Run it under
// `valgrind --tool=callgrind --toggle-collect='*Cache::lookup*' build/cache_cost NAMES ROUNDS` for
// the instructions per hit (Ir / (NAMES × ROUNDS)); alone it prints the wall time per hit, which on
// a shared machine is only a rough guide.
//
// Usage: cache_cost [NAMES] [ROUNDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "resolver/cache.h"

using namespace meridian;

int main(int argc, char** argv) {
  const int names = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 10;
  QuiescentDomain domain;
  resolver::CacheConfig cfg;
  cfg.cache_size = size_t{256} << 20;  // everything fits: hits only
  resolver::Cache cache(cfg, domain);

  std::vector<dns::NameBuf> queries(names);
  for (int i = 0; i < names; ++i) {
    dns::NameBuf owner;
    if (!dns::fromText("host" + std::to_string(i) + ".example.com", owner) ||
        !dns::fromText("Host" + std::to_string(i) + ".Example.COM", queries[i])) {
      return 1;
    }
    const uint8_t a[2][4] = {{192, 0, 2, 1}, {192, 0, 2, static_cast<uint8_t>(i)}};
    const resolver::Rdata rdatas[2] = {{a[0], 4}, {a[1], 4}};
    resolver::RRsetIn in;
    in.owner = owner.data;
    in.owner_length = owner.length;
    in.type = dns::rrtype::kA;
    in.ttl = 3600;
    in.rdatas = rdatas;
    if (cache.insert(in, resolver::Rank::kAnswer, 0) != resolver::InsertResult::kStored) return 1;
  }

  uint8_t buf[512];
  size_t found = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const dns::NameBuf& q : queries) {
      const auto res = cache.lookup(q.data, q.length, dns::rrtype::kA, dns::rrclass::kIN, 1, buf);
      found += res.status == resolver::LookupStatus::kAnswer;
    }
  }
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  const size_t total = size_t(names) * rounds;
  std::printf("cache_cost: %zu lookups, %zu hits, %.1f ns per lookup (wall, rough)\n", total, found,
              ns / total);
  return found == total ? 0 : 1;
}
