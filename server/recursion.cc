#include "server/recursion.h"

#include <cstring>

namespace meridian::server {

RecursionSettings RecursionSettings::defaults() {
  RecursionSettings s;
  georoute::CidrEntry v4;
  v4.address[0] = 127;
  v4.prefix = 8;
  georoute::CidrEntry v6;
  v6.ipv6 = true;
  v6.address[15] = 1;
  v6.prefix = 128;
  s.allow = {v4, v6};
  return s;
}

bool RecursionSettings::allows(const uint8_t* address, bool ipv6) const {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (ipv6 && std::memcmp(address, kMapped, 12) == 0) {
    address += 12;
    ipv6 = false;
  }
  for (const auto& net : allow) {
    if (net.contains(address, ipv6)) return true;
  }
  return false;
}

}  // namespace meridian::server
