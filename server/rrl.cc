// The per-worker RRL table (see rrl.h): a flat array of 4-bucket sets indexed by a seeded hash of
// the flow, each bucket a token bucket kept in thousandths of a response so that credit is earned
// per millisecond, not in whole-second steps.
#include "server/rrl.h"

#include <time.h>

#include <algorithm>
#include <cstring>

namespace meridian::server {

namespace {

// Config limits (app/config.cc) keep rate x window x 1000 within int32: 10000 x 60 x 1000 < 2^31.
constexpr int64_t kMilli = 1000;

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

uint64_t loadTail(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

}  // namespace

bool RrlNetwork::contains(const uint8_t* addr, bool v6) const {
  if (v6 != ipv6) return false;
  const unsigned whole = prefix / 8u;
  if (std::memcmp(addr, address, whole) != 0) return false;
  const unsigned rest = prefix % 8u;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (addr[whole] & mask) == address[whole];
}

uint64_t RrlTable::monotonicMs() {
  // The coarse clock is read from the vDSO without a system call; its few-millisecond resolution
  // is ample for per-second rates.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1000000u;
}

RrlTable::RrlTable(uint32_t buckets, uint64_t seed, Clock clock) : seed_(seed), clock_(clock) {
  size_t n = kWays;
  while (n < buckets) n <<= 1;
  buckets_.resize(n);
  set_mask_ = n / kWays - 1;
}

bool RrlTable::exempt(const RrlSettings& s, const uint8_t* addr, bool v6) {
  for (const RrlNetwork& net : s.exempt) {
    if (net.contains(addr, v6)) return true;
  }
  return false;
}

uint64_t RrlTable::hash(const RrlSettings& s, const RrlKey& key) const {
  // The source block: the address with the bits past the configured prefix cleared.
  uint8_t block[16] = {};
  const unsigned len = key.ipv6 ? 16u : 4u;
  const unsigned prefix = key.ipv6 ? s.ipv6_prefix_length : s.ipv4_prefix_length;
  std::memcpy(block, key.address, len);
  for (unsigned i = 0; i < len; ++i) {
    const unsigned first = i * 8u;
    if (first >= prefix) {
      block[i] = 0;
    } else if (first + 8u > prefix) {
      block[i] &= static_cast<uint8_t>(0xFF << (first + 8u - prefix));
    }
  }
  uint64_t h = seed_;
  h = mix(h, loadTail(block, 8));
  h = mix(h, loadTail(block + 8, 8));
  const bool typed = key.cls == RrlClass::kPositive || key.cls == RrlClass::kWildcard;
  h = mix(h, (static_cast<uint64_t>(key.cls) << 40) | (uint64_t{key.ipv6} << 32) |
                 (typed ? key.qtype : 0u));
  size_t i = 0;
  for (; i + 8 <= key.name_len; i += 8) h = mix(h, loadTail(key.name + i, 8));
  if (i < key.name_len) h = mix(h, loadTail(key.name + i, key.name_len - i) ^ (uint64_t{1} << 63));
  return mix(h, key.name_len);
}

RrlVerdict RrlTable::account(const RrlSettings& s, const RrlKey& key) {
  const uint64_t h = hash(s, key);
  auto tag = static_cast<uint32_t>(h >> 32);
  if (tag == 0) tag = 1;
  Bucket* set = &buckets_[(h & set_mask_) * kWays];
  const auto now = static_cast<uint32_t>(clock_());
  const int64_t cap = static_cast<int64_t>(s.responses_per_second) * s.window * kMilli;

  Bucket* b = nullptr;
  for (size_t w = 0; w < kWays && b == nullptr; ++w) {
    if (set[w].tag == tag) b = &set[w];
  }
  if (b == nullptr) {
    // A new flow takes a free bucket, else the one idle longest (it starts again with a full
    // bucket if it comes back: eviction errs towards answering).
    b = &set[0];
    for (size_t w = 0; w < kWays; ++w) {
      if (set[w].tag == 0) {
        b = &set[w];
        break;
      }
      if (static_cast<uint32_t>(now - set[w].stamp) > static_cast<uint32_t>(now - b->stamp)) {
        b = &set[w];
      }
    }
    *b = Bucket{tag, static_cast<int32_t>(cap), now, 0, 0};
  } else {
    // Earn credit for the time since the last response; a long pause fills the bucket anyway, so
    // the elapsed time is capped before multiplying (no overflow).
    const int64_t elapsed =
        std::min<int64_t>(static_cast<uint32_t>(now - b->stamp), int64_t{s.window} * kMilli);
    b->credit = static_cast<int32_t>(
        std::min<int64_t>(cap, b->credit + elapsed * static_cast<int64_t>(s.responses_per_second)));
    b->stamp = now;
  }
  if (b->credit >= kMilli) {
    b->credit -= static_cast<int32_t>(kMilli);
    return RrlVerdict::kSend;
  }
  if (s.slip == 0) return RrlVerdict::kDrop;
  // As BIND does, the first limited response slips, then slip - 1 are dropped, and so on.
  const bool slip_now = b->limited == 0;
  if (++b->limited >= s.slip) b->limited = 0;
  return slip_now ? RrlVerdict::kSlip : RrlVerdict::kDrop;
}

}  // namespace meridian::server
