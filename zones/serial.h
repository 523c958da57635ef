// SOA serial number arithmetic (RFC 1982). Used when a zone is reloaded (is the new serial newer?)
// and, later, by zone transfers (IXFR, NOTIFY, refresh) to decide whether a peer's copy is newer.
// Header-only and constexpr: no state, callable from any thread.
#pragma once

#include <cstdint>

namespace meridian::zones {

enum class SerialOrder { kEqual, kLess, kGreater, kUndefined };

// RFC 1982 §3.2 (SERIAL_BITS = 32): i1 < i2 when (i1 < i2 and i2 - i1 < 2^31) or (i1 > i2 and
// i1 - i2 > 2^31). Pairs exactly 2^31 apart are neither less nor greater: kUndefined.
[[nodiscard]] constexpr SerialOrder compareSerials(uint32_t a, uint32_t b) {
  if (a == b) return SerialOrder::kEqual;
  constexpr uint32_t kHalf = 0x80000000u;
  const uint32_t forward = b - a;  // distance from a up to b, modulo 2^32
  if (forward == kHalf) return SerialOrder::kUndefined;
  return forward < kHalf ? SerialOrder::kLess : SerialOrder::kGreater;
}

// Is `next` strictly newer than `current`?
[[nodiscard]] constexpr bool serialNewer(uint32_t next, uint32_t current) {
  return compareSerials(next, current) == SerialOrder::kGreater;
}

}  // namespace meridian::zones
