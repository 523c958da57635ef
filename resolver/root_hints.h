// Root hints (RFC 8109 §2): the file Debian's dns-root-data installs as /usr/share/dns/root.hints,
// in zone-file syntax: ". NS A.ROOT-SERVERS.NET." and the A/AAAA records of those names. Only the
// addresses matter to the iterator (priming replaces the rest); a line it cannot read is an error
// with its file:line, and a file without one address of a root name server is refused.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "resolver/iterator.h"

namespace meridian::resolver {

inline constexpr const char* kDefaultRootHints = "/usr/share/dns/root.hints";

// Addresses of the root name servers in `text` (named `source` in errors). With ipv6 false the
// AAAA records are read (checked) but not returned.
[[nodiscard]] meridian::Result<std::vector<Endpoint>> parseRootHints(std::string_view text,
                                                                     const std::string& source,
                                                                     bool ipv6);
[[nodiscard]] meridian::Result<std::vector<Endpoint>> loadRootHints(const std::string& path,
                                                                    bool ipv6);

}  // namespace meridian::resolver
