// DNS server cookies (RFC 7873, computed as RFC 9018 specifies so that anycast servers sharing a
// secret interoperate): version 1, a timestamp, and SipHash-2-4 over the client cookie, those
// fields and the client's address. Per query, on worker threads: no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meridian::dns {

// SipHash-2-4 (Aumasson & Bernstein) with a 16-octet key.
[[nodiscard]] uint64_t sipHash24(const uint8_t key[16], const uint8_t* data, size_t len);

inline constexpr size_t kServerCookieSize = 16;  // RFC 9018 §4: 8 octets of fields + 8 of hash

// Writes the 16-octet server cookie for `client_cookie` (8 octets) and the client address
// (4 or 16 octets) at time `now` (seconds, serial arithmetic per RFC 9018 §4.3).
void makeServerCookie(const uint8_t secret[16], const uint8_t* client_cookie,
                      const uint8_t* address, size_t address_len, uint32_t now,
                      uint8_t out[kServerCookieSize]);

// RFC 9018 §4.3: the hash matches and the timestamp is at most 1 hour old and 5 minutes ahead.
[[nodiscard]] bool validServerCookie(const uint8_t secret[16], const uint8_t* client_cookie,
                                     const uint8_t* server_cookie, size_t server_len,
                                     const uint8_t* address, size_t address_len, uint32_t now);

// What a query's COOKIE option says about its sender (RFC 7873 §5.2.3-§5.2.5).
enum class CookieStatus {
  kNone,        // no COOKIE option
  kClientOnly,  // §5.2.3: a client cookie alone (a first contact, or a client that lost ours)
  kInvalid,     // §5.2.4: a server cookie we did not issue to this client, or expired (§4.3)
  kValid,       // §5.2.5: a server cookie we issued to this client and address, in its window
};

// `cookie` is the option's data as received (`len`: 0, or 8 octets of client cookie followed by 0
// or 8..32 of server cookie; dns::parseQuery has already answered other lengths with FORMERR, as
// RFC 7873 §5.2.2 says, and any other length counts as kInvalid here).
[[nodiscard]] CookieStatus checkCookie(const uint8_t secret[16], const uint8_t* cookie, size_t len,
                                       const uint8_t* address, size_t address_len, uint32_t now);

}  // namespace meridian::dns
