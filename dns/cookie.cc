#include "dns/cookie.h"

#include <cstring>

#include "dns/wire.h"

namespace meridian::dns {
namespace {

uint64_t rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

uint64_t load64le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = rotl(v1, 13);
  v1 ^= v0;
  v0 = rotl(v0, 32);
  v2 += v3;
  v3 = rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = rotl(v1, 17);
  v1 ^= v2;
  v2 = rotl(v2, 32);
}

}  // namespace

uint64_t sipHash24(const uint8_t key[16], const uint8_t* data, size_t len) {
  const uint64_t k0 = load64le(key);
  const uint64_t k1 = load64le(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0;
  uint64_t v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0;
  uint64_t v3 = 0x7465646279746573ull ^ k1;
  const size_t whole = len - len % 8;
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = load64le(data + i);
    v3 ^= m;
    round(v0, v1, v2, v3);
    round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(len & 0xFF) << 56;
  for (size_t i = 0; i < len % 8; ++i) last |= static_cast<uint64_t>(data[whole + i]) << (8 * i);
  v3 ^= last;
  round(v0, v1, v2, v3);
  round(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xFF;
  for (int i = 0; i < 4; ++i) round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

namespace {

uint64_t cookieHash(const uint8_t secret[16], const uint8_t* client_cookie, const uint8_t* fields,
                    const uint8_t* address, size_t address_len) {
  // Client Cookie | Version | Reserved | Timestamp | Client-IP (RFC 9018 §4.4)
  uint8_t input[8 + 8 + 16];
  std::memcpy(input, client_cookie, 8);
  std::memcpy(input + 8, fields, 8);
  std::memcpy(input + 16, address, address_len);
  return sipHash24(secret, input, 16 + address_len);
}

}  // namespace

void makeServerCookie(const uint8_t secret[16], const uint8_t* client_cookie,
                      const uint8_t* address, size_t address_len, uint32_t now,
                      uint8_t out[kServerCookieSize]) {
  out[0] = 1;  // version
  out[1] = out[2] = out[3] = 0;
  writeU32(out + 4, now);
  const uint64_t h = cookieHash(secret, client_cookie, out, address, address_len);
  // RFC 9018 §4.4 puts the hash in the order SipHash produces it (little-endian).
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<uint8_t>(h >> (8 * i));
}

bool validServerCookie(const uint8_t secret[16], const uint8_t* client_cookie,
                       const uint8_t* server_cookie, size_t server_len, const uint8_t* address,
                       size_t address_len, uint32_t now) {
  if (server_len != kServerCookieSize || server_cookie[0] != 1) return false;
  const uint32_t stamp = readU32(server_cookie + 4);
  const int32_t age = static_cast<int32_t>(now - stamp);  // serial number arithmetic
  if (age > 3600 || age < -300) return false;
  const uint64_t h = cookieHash(secret, client_cookie, server_cookie, address, address_len);
  for (int i = 0; i < 8; ++i) {
    if (server_cookie[8 + i] != static_cast<uint8_t>(h >> (8 * i))) return false;
  }
  return true;
}

CookieStatus checkCookie(const uint8_t secret[16], const uint8_t* cookie, size_t len,
                         const uint8_t* address, size_t address_len, uint32_t now) {
  if (len == 0) return CookieStatus::kNone;
  if (len == 8) return CookieStatus::kClientOnly;
  if (len < 16 || len > 40) return CookieStatus::kInvalid;
  return validServerCookie(secret, cookie, cookie + 8, len - 8, address, address_len, now)
             ? CookieStatus::kValid
             : CookieStatus::kInvalid;
}

}  // namespace meridian::dns
