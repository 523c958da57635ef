// Test helper: a one-endpoint pool for building steering configurations by hand.
#pragma once

#include <string>

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

}  // namespace meridian::test
