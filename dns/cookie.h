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

}  // namespace meridian::dns
