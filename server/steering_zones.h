// The steering compile's view of the served zones (georoute::ZoneLocator) answered from a
// zones::ZoneSet: georoute validates service names without depending on zones/ (DESIGN.md), and
// whoever holds the zone set (the runtime, `meridian check`, tests) passes zoneLocator(set).
// Control side only; the locator refers to `set`, which must outlive the compile.
#pragma once

#include "georoute/compile.h"
#include "zones/zone.h"

namespace meridian::server {

[[nodiscard]] inline georoute::ZoneLocator zoneLocator(const zones::ZoneSet& set) {
  return [&set](const dns::NameBuf& owner) {
    georoute::ZonePlacement p;
    const zones::Zone* zone = set.findZone(owner);
    if (zone == nullptr) return p;
    p.origin = zone->origin();
    // The name and each ancestor down to the apex must be outside every delegation.
    for (size_t label = 0;
         label < owner.label_count && owner.suffixLength(label) > zone->apexLength(); ++label) {
      const uint32_t n = zone->find(owner.suffix(label), owner.suffixLength(label));
      if (n != zones::kNone && zone->node(n).cut != zones::kNone) {
        p.kind = georoute::ZonePlacement::Kind::kDelegated;
        return p;
      }
    }
    p.kind = zone->find(owner.data, owner.length) == zones::kNone
                 ? georoute::ZonePlacement::Kind::kNoRecords
                 : georoute::ZonePlacement::Kind::kInZone;
    return p;
  };
}

}  // namespace meridian::server
