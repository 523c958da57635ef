// SOA serial number arithmetic (RFC 1982). Used when a zone is reloaded (is the new serial newer?)
// and, later, by zone transfers (IXFR, NOTIFY, refresh) to decide whether a peer's copy is newer.
// Header-only and constexpr: no state, callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

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

// How a change picks the zone's next serial (per zone; PowerDNS calls it SOA-EDIT-API).
//   kIncrement: current + 1 (modulo 2^32: 4294967295 is followed by 0, which RFC 1982 calls newer).
//   kDate:      YYYYMMDDnn of the change's UTC day (RFC 1912 §2.2), nn = 00 on the first change of
//               the day; when that is not newer than the current serial (a later change the same
//               day, a 100th one, a serial already ahead of the date), current + 1: after ...99
//               comes the next day's 00, as BIND's "serial-update-method date" does.
//   kUnixtime:  the change's time in seconds since 1970, or current + 1 when that is not newer
//               (the clock went back, two changes in one second, a serial ahead of the clock).
// Every policy returns a serial that is newer than `current` by RFC 1982, so a secondary always
// sees the change.
enum class SerialPolicy { kIncrement, kDate, kUnixtime };

// The names of the configuration (`[[zone]] serial_policy`): "increment", "date", "unixtime".
[[nodiscard]] constexpr std::string_view serialPolicyName(SerialPolicy policy) {
  switch (policy) {
    case SerialPolicy::kDate:
      return "date";
    case SerialPolicy::kUnixtime:
      return "unixtime";
    case SerialPolicy::kIncrement:
      break;
  }
  return "increment";
}

[[nodiscard]] constexpr std::optional<SerialPolicy> parseSerialPolicy(std::string_view name) {
  for (const auto p : {SerialPolicy::kIncrement, SerialPolicy::kDate, SerialPolicy::kUnixtime}) {
    if (serialPolicyName(p) == name) return p;
  }
  return std::nullopt;
}

// The UTC day of a Unix time as YYYYMMDD (H. Hinnant's days-to-civil algorithm: proleptic
// Gregorian calendar, exact for every 64-bit day count used here).
[[nodiscard]] constexpr uint32_t utcDate(int64_t unix_seconds) {
  int64_t days = unix_seconds / 86400;
  if (unix_seconds % 86400 < 0) --days;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return static_cast<uint32_t>(y * 10000 + m * 100 + d);
}

[[nodiscard]] constexpr uint32_t nextSerial(uint32_t current, SerialPolicy policy,
                                            int64_t unix_seconds) {
  uint32_t candidate = current + 1;  // RFC 1982 §3.1: addition modulo 2^32
  switch (policy) {
    case SerialPolicy::kIncrement:
      return candidate;
    case SerialPolicy::kDate:
      candidate = utcDate(unix_seconds) * 100u;
      break;
    case SerialPolicy::kUnixtime:
      candidate = static_cast<uint32_t>(unix_seconds);
      break;
  }
  return serialNewer(candidate, current) ? candidate : current + 1;
}

}  // namespace meridian::zones
