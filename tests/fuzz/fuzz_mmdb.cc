// libFuzzer target: arbitrary bytes as a GeoIP database through georoute::GeoDatabase::open (the
// libmaxminddb open, our whole-tree walk and the decoding of every data record into Locations),
// then, when it opened, lookups of a few IPv4 and IPv6 addresses, the ECS aggregation walk of both
// families and describe() of every location. The reader needs a path: the input is written to a
// memfd and opened as /proc/self/fd/N (nothing on disk). Any crash or sanitizer report is a bug; a
// refused file must come with a message, and a lookup must return one of the decoded locations.
//
// Seeds (tests/fuzz/mmdb_corpus/) are small databases written by tools::MmdbWriter
// (fuzz_mmdb_seeds.cc); `make test-slow` adds the MaxMind test and bad-data files of
// /work/shared/geoip as extra seeds without copying them into the repository.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"

namespace {

namespace georoute = meridian::georoute;
using meridian::fuzz::check;

// Addresses a City test database and our seeds map: 1.x, 2.x, 81.2.69.x (GeoIP2 test data),
// 89.160.20.x, 192.0.2.x, 203.0.113.x, an IPv4-mapped one, 6to4 and plain IPv6.
const uint8_t kV4[][4] = {{1, 1, 1, 1},     {2, 125, 160, 216},  {81, 2, 69, 160},
                          {89, 160, 20, 1}, {192, 0, 2, 1},      {203, 0, 113, 9},
                          {0, 0, 0, 0},     {255, 255, 255, 255}};
const uint8_t kV6[][16] = {
    {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
    {0x20, 0x01, 0x02, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1},
    {0x20, 0x02, 0xc0, 0x00, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff},
};

void checkResult(const georoute::GeoDatabase& db, const georoute::GeoResult& r, bool ipv6) {
  if (!r.found) return;
  check(r.location != nullptr);
  const auto& locs = db.locations();
  check(!locs.empty() && r.location >= locs.data() && r.location < locs.data() + locs.size());
  check(r.prefix <= (ipv6 ? 128 : 32));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static meridian::fuzz::MemFile file("fuzz_mmdb");
  file.assign(data, size);
  auto db = georoute::GeoDatabase::open(file.path());
  if (!db) {
    check(!db.error().message.empty());
    return 0;
  }
  const georoute::GeoDatabase& g = **db;
  for (const auto& a : kV4) checkResult(g, g.lookup(a, false), false);
  for (const auto& a : kV6) checkResult(g, g.lookup(a, true), true);
  for (const auto& l : g.locations()) (void)g.describe(l);
  const int32_t count = static_cast<int32_t>(g.locations().size());
  for (const bool v6 : {false, true}) {
    const auto blocks = g.aggregate(v6, [&](int32_t i) -> uint32_t {
      check(i >= -1 && i < count);
      return static_cast<uint32_t>(i + 1);
    });
    for (const auto& b : blocks) check(b.prefix <= (v6 ? 128 : 32));
  }
  return 0;
}
