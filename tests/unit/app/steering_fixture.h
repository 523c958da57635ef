// The steering configuration the app tests share: regions eu and us, and one service whose geo map
// defaults to ["eu", "us"] with a pool in each region (eu 198.51.100.1 and .2, us 198.51.100.3).
// Each test picks the service name, the policy and the regions' coordinates it needs; the text is
// TOML to append to a configuration (it opens with a newline, so line numbers are predictable:
// the eu region's `name` is on the third line of it).
#pragma once

#include <string>

namespace meridian::test {

struct TwoRegionSteering {
  std::string service = "svc.a.test";
  std::string policy;  // a TOML array, e.g. R"(["up", "geo"])"; "" = the default chain
  // Lines after a region's name, e.g. "latitude = 50.1\nlongitude = 8.7\n"; "" = no coordinates.
  std::string eu_position;
  std::string us_position;
  std::string eu_endpoints = R"(["198.51.100.1", "198.51.100.2"])";
};

[[nodiscard]] inline std::string twoRegionSteering(const TwoRegionSteering& s = {}) {
  std::string out = "\n[[region]]\nname = \"eu\"\n" + s.eu_position +
                    "\n[[region]]\nname = \"us\"\n" + s.us_position + "\n[[service]]\nname = \"" +
                    s.service + "\"\n";
  if (!s.policy.empty()) out += "policy = " + s.policy + "\n";
  out +=
      "\n[service.geo]\ndefault = [\"eu\", \"us\"]\n\n[[service.pool]]\nregion = \"eu\"\n"
      "endpoints = " +
      s.eu_endpoints + "\n\n[[service.pool]]\nregion = \"us\"\nendpoints = [\"198.51.100.3\"]\n";
  return out;
}

}  // namespace meridian::test
