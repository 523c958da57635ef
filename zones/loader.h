// Zone-file loading: RFC 1035 §5 master files parsed with ldns ($ORIGIN, $TTL, relative names,
// parentheses, escapes, RFC 3597 "\#" RDATA; $INCLUDE handled here, relative to the including
// file), then handed to ZoneBuilder. ldns is used only here, on the control thread, never per
// query.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "zones/zone.h"

namespace meridian::zones {

struct LoadedZone {
  std::shared_ptr<const Zone> zone;
  std::vector<std::string> warnings;
};

// Errors read "file:line: what is wrong".
[[nodiscard]] Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path);

// The same from text in memory (tests, tools); `label` stands in for the file name in messages.
[[nodiscard]] Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                              const std::string& label = "<text>");

}  // namespace meridian::zones
