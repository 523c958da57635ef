// Test helper: a one-endpoint pool for building steering configurations by hand.
#pragma once

#include <arpa/inet.h>

#include <string>

#include "georoute/policy.h"
#include "georoute/steering_config.h"

namespace meridian::test {

inline georoute::PoolConfig pool(const std::string& region, const std::string& address,
                                 uint32_t weight = 1) {
  georoute::PoolConfig p;
  p.region = region;
  p.where = "test";
  georoute::EndpointConfig e;
  e.address = address;
  e.weight = weight;
  e.where = "test";
  p.endpoints.push_back(e);
  return p;
}

// "KIND /SCOPE label label ...": a decision as the equivalence tests compare it.
inline std::string show(const georoute::Decision& d) {
  std::string out = std::to_string(static_cast<int>(d.kind)) + " /" + std::to_string(d.scope);
  for (uint16_t i = 0; i < d.count; ++i) out += " " + d.chosen[i]->label;
  return out;
}

// "ADDRESS/SOURCE-PREFIX".
inline std::string showClient(const georoute::Client& c) {
  char text[64];
  inet_ntop(c.ipv6 ? AF_INET6 : AF_INET, c.address, text, sizeof text);
  return std::string(text) + "/" + std::to_string(c.source_prefix);
}

}  // namespace meridian::test
