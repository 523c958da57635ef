// Recursion access control and its settings ([recursion], docs/recursion.md): who may have names
// not served here resolved for them, what RD=0 questions get, the limits on outstanding questions
// and the forward zones. Read on the data plane by QueryHandler::handle (the snapshot carries it:
// ProtocolSettings::recursion) and by the Recursor's thread (each parked query holds a reference).
#pragma once

#include <cstdint>
#include <vector>

#include "dns/message.h"
#include "dns/response.h"
#include "georoute/service.h"
#include "resolver/forward_zone.h"
#include "resolver/iterator.h"

namespace meridian::server {

// RFC 8914 §4: the Extended DNS Error codes this server sends.
namespace ede {
inline constexpr uint16_t kNone = 0xFFFF;  // not a code: nothing to send
inline constexpr uint16_t kProhibited = 18;
inline constexpr uint16_t kNotAuthoritative = 20;
inline constexpr uint16_t kNoReachableAuthority = 22;
inline constexpr uint16_t kNetworkError = 23;
inline constexpr size_t kOptionSize = 6;  // code, length, INFO-CODE; no EXTRA-TEXT
}  // namespace ede

enum class Rd0Policy {
  kCache,   // RFC 1034 §4.3.1: answer from the cache only (refused until the cache is wired in)
  kRefuse,  // REFUSED with EDE 20 (Not Authoritative)
};

struct RecursionSettings {
  bool enabled = false;
  // Client networks allowed to recurse; the config fills in 127.0.0.0/8 and ::1 when not given.
  std::vector<georoute::CidrEntry> allow;
  Rd0Policy rd0 = Rd0Policy::kRefuse;
  // PowerDNS Recursor's max-mthreads default: at most 2048 client questions being resolved at once.
  unsigned max_outstanding = 2048;
  // Neither Unbound nor the Recursor caps one client's concurrent questions by default (Unbound's
  // ip-ratelimit is per second and off); 100, a twentieth of the total, keeps one client from
  // taking the whole table while a busy stub or a NAT gateway still fits.
  unsigned max_outstanding_per_client = 100;
  std::vector<resolver::ForwardZone> forward;
  // Names no forward zone covers are resolved by the iterator (resolver/iterator.h) from these
  // root hints, within these limits.
  std::string root_hints = "/usr/share/dns/root.hints";
  resolver::Limits limits;

  // The defaults: off, allow loopback (127.0.0.0/8, ::1).
  [[nodiscard]] static RecursionSettings defaults();
  // Is this client (4 or 16 octets) in `allow`? IPv4-mapped IPv6 clients count as IPv4.
  [[nodiscard]] bool allows(const uint8_t* address, bool ipv6) const;
};

// The Recursor's counters (server/recursor.h): queries parked, answered, dropped over a limit,
// upstream queries sent and questions that joined one already in flight.
struct RecursorTotals {
  uint64_t submitted = 0, answered = 0, over_limit = 0, upstream_queries = 0, shared = 0;
};

// Appends an EDE option (RFC 8914 §2) to the OPT record written at `opt_at`, the last record of
// the message in `w`: the option, then OPT's RDLENGTH grown by its size. False when it does not
// fit (the OPT stays as it was).
[[nodiscard]] inline bool appendEde(dns::ResponseWriter& w, size_t opt_at, uint16_t code) {
  if (!w.writeU16(dns::edns_option::kExtendedError)) return false;
  if (!w.writeU16(2) || !w.writeU16(code)) return false;
  uint8_t* rdlength = w.data() + opt_at + 9;  // owner (root, 1) + TYPE, CLASS, TTL (8)
  dns::writeU16(rdlength, static_cast<uint16_t>(dns::readU16(rdlength) + ede::kOptionSize));
  return true;
}

}  // namespace meridian::server
