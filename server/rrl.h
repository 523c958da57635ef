// Response rate limiting (RRL), as BIND and Knot define it: responses sent over UDP are counted per
// flow (the client's source block, /24 for IPv4 and /56 for IPv6 by default, the kind of answer
// and the name it is about) and a flow above `responses_per_second` gets, for each response over
// the limit, either nothing (dropped) or, every `slip`-th time, a minimal truncated reply (TC=1,
// no records) so that a real resolver behind a spoofed address retries over TCP, which is never
// limited. That keeps Meridian from being a useful amplifier for reflection attacks.
//
// Each flow is a token bucket: it earns `responses_per_second` credits a second, holds at most
// `window` seconds of them (a fresh or long-quiet flow may send that burst at once, as Knot's
// four-second bucket does) and spends one per response sent.
//
// One RrlTable per worker thread (owned by its QueryHandler): with SO_REUSEPORT the kernel hashes
// a client's address and port to one worker, so a single source is counted exactly; a flood
// spread over many ports of one block is limited by each worker on its own share. The table has a
// fixed number of buckets, allocated when the handler is built; per query the work is one hash of
// the key and one probe of a 4-bucket set (one cache line): no allocation, no lock. (The one
// per-query string hash on the authoritative path, and only with RRL on: the flow is the name.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace meridian::server {

// An exempted network (BIND's exempt-clients, Knot's whitelist); address bits past `prefix` zero.
struct RrlNetwork {
  bool ipv6 = false;
  uint8_t prefix = 0;
  uint8_t address[16] = {};
  // `addr` is 4 octets for IPv4, 16 for IPv6.
  [[nodiscard]] bool contains(const uint8_t* addr, bool v6) const;
};

struct RrlSettings {
  bool enabled = false;  // off by default, as in BIND and Knot
  // Credits a flow earns per second; 20 is the rate of the Knot comparison in tests/integration.
  uint32_t responses_per_second = 20;
  // Every slip-th limited response is sent truncated, the others dropped; 0 drops them all, 1
  // truncates them all. 2 is BIND's default (half the limited responses still reach a victim,
  // small, and legitimate clients retry over TCP).
  uint32_t slip = 2;
  // Seconds of credit a flow can hold: the burst a quiet client may send. Knot's fixed value.
  uint32_t window = 4;
  uint8_t ipv4_prefix_length = 24;
  uint8_t ipv6_prefix_length = 56;
  std::vector<RrlNetwork> exempt;
  // Buckets per worker (rounded up to a power of two); 16 octets each. Read when the workers
  // start: changing it, or enabling RRL on a server started without it, needs a restart.
  uint32_t table_size = 65536;
};

// What the response is, for counting (the classes of BIND's RRL): each class counts apart, and
// names only separate flows where the response depends on them.
enum class RrlClass : uint8_t {
  kPositive,  // an answer: counted by question name and type
  kWildcard,  // an answer synthesized from a wildcard: by the wildcard's owner and the type
  kNoData,    // the name exists without that type: by the question name
  kNxDomain,  // no such name: by the zone, whatever the name (random-subdomain floods are one flow)
  kReferral,  // a delegation: by the zone cut
  kError,     // any other rcode (REFUSED, SERVFAIL, FORMERR...): one flow per source block
};

// The flow a response belongs to. `name` is lowercase wire format (`name_len` octets) and may be
// null (errors).
struct RrlKey {
  const uint8_t* address = nullptr;  // the client: 4 octets (IPv4) or 16 (IPv6)
  bool ipv6 = false;
  RrlClass cls = RrlClass::kError;
  uint16_t qtype = 0;  // used for kPositive and kWildcard only
  const uint8_t* name = nullptr;
  size_t name_len = 0;
};

enum class RrlVerdict : uint8_t { kSend, kSlip, kDrop };

class RrlTable {
 public:
  // Milliseconds from a monotonic clock. Injected so tests step time by hand.
  using Clock = uint64_t (*)();
  [[nodiscard]] static uint64_t monotonicMs();

  // `buckets` is rounded up to a power of two (at least one set of 4); `seed` varies the hash so
  // an attacker cannot aim flows at one set (the handler passes a random one).
  RrlTable(uint32_t buckets, uint64_t seed, Clock clock = &monotonicMs);

  // True when `addr` lies in one of the exempt networks.
  [[nodiscard]] static bool exempt(const RrlSettings& s, const uint8_t* addr, bool v6);

  // Accounts one response of flow `key` and says what to do with it. Worker thread only.
  [[nodiscard]] RrlVerdict account(const RrlSettings& s, const RrlKey& key);

  [[nodiscard]] size_t buckets() const { return buckets_.size(); }
  void setClock(Clock clock) { clock_ = clock; }

 private:
  // 16 octets, so a set of 4 fills one 64-octet cache line.
  struct Bucket {
    uint32_t tag = 0;      // high half of the key's hash, never 0 in a used bucket; 0 = free
    int32_t credit = 0;    // thousandths of a response
    uint32_t stamp = 0;    // clock milliseconds (mod 2^32) when credit was last brought up to date
    uint16_t limited = 0;  // limited responses since the last slip
    uint16_t unused = 0;
  };
  static constexpr size_t kWays = 4;

  [[nodiscard]] uint64_t hash(const RrlSettings& s, const RrlKey& key) const;

  std::vector<Bucket> buckets_;
  size_t set_mask_ = 0;  // (number of sets - 1)
  uint64_t seed_;
  Clock clock_;
};

}  // namespace meridian::server
