// One forward zone ([[recursion.forward]]): its name and upstream servers. Kept apart from
// forwarder.h (c-ares, Asio) so the configuration and the data plane can hold it cheaply.
#pragma once

#include <string>
#include <vector>

namespace meridian::resolver {

struct ForwardZone {
  std::string zone;                  // lowercase wire form ("\0" for the root)
  std::vector<std::string> servers;  // "127.0.0.1:53", "[::1]:5353"
  bool operator==(const ForwardZone&) const = default;
};

}  // namespace meridian::resolver
