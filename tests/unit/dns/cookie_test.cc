#include <catch2/catch.hpp>

#include "dns/cookie.h"

using namespace meridian::dns;

TEST_CASE("SipHash-2-4 matches the reference vector", "[cookie]") {
  // The SipHash paper's example: key 00..0f, message 00..0e.
  uint8_t key[16], msg[15];
  for (int i = 0; i < 16; ++i) key[i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 15; ++i) msg[i] = static_cast<uint8_t>(i);
  CHECK(sipHash24(key, msg, 15) == 0xa129ca6149be45e5ull);
  CHECK(sipHash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);  // empty message, same key
}

TEST_CASE("server cookies validate for the same client and expire", "[cookie]") {
  const uint8_t secret[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const uint8_t client[8] = {0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3};
  const uint8_t ip[4] = {192, 0, 2, 7};
  const uint8_t other_ip[4] = {192, 0, 2, 8};
  uint8_t sc[kServerCookieSize];
  makeServerCookie(secret, client, ip, 4, 1000000, sc);
  CHECK(sc[0] == 1);
  CHECK(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000));
  CHECK(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 + 3600));
  CHECK_FALSE(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 + 3601));  // too old
  CHECK_FALSE(
      validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000 - 301));  // from the future
  CHECK_FALSE(
      validServerCookie(secret, client, sc, sizeof sc, other_ip, 4, 1000000));  // another client
  uint8_t other_secret[16] = {};
  CHECK_FALSE(validServerCookie(other_secret, client, sc, sizeof sc, ip, 4, 1000000));
  sc[15] ^= 1;
  CHECK_FALSE(validServerCookie(secret, client, sc, sizeof sc, ip, 4, 1000000));
}
