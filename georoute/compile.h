// The steering compile: a SteeringConfig (steering_config.h) becomes a ServiceSet (service.h) and
// the list of health-check targets, with every name resolved to an integer id and every reference
// checked; errors name the entry's source position ("file:line: ..."). It needs no TOML: the
// configuration loader (app/config.cc) fills the structs, and anything else that builds them can
// validate and compile services the same way. Control side: the runtime compiles on its load pool
// (compileSteering reads only its arguments). Implemented in compile.cc.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <functional>
#include "core/result.h"
#include "georoute/geoip.h"
#include "georoute/service.h"

#include "dns/name.h"
#include "georoute/steering_config.h"

namespace meridian::healthcheck {
struct CheckSpec;
}

namespace meridian::georoute {

// One health-table slot; its index is the health id used by the ServiceSet. A checked slot is an
// (address, check) pair, shared by every endpoint with that address and check, labelled
// "ADDRESS (CHECK)". An unchecked slot is one endpoint without a check, labelled like the endpoint
// ("REGION/ADDRESS" or "REGION/CNAME-TARGET"), shared by the services that list it in that
// region: never probed, always up unless an operator override says otherwise.
struct HealthTarget {
  std::string label;
  std::string address;  // empty for a CNAME endpoint
  CheckConfig check;    // meaningful when checked
  bool checked = true;
};

// The probe a checked slot runs: its [[check]] as the health checker takes it (the type is
// healthcheck/prober.h's; include it to call this).
[[nodiscard]] healthcheck::CheckSpec checkSpec(const CheckConfig& c);

struct CompiledSteering {
  std::shared_ptr<const ServiceSet> services;
  std::vector<HealthTarget> targets;
  // Things that load but are probably not what the operator meant (an unknown country code, a
  // subdivision key that can never match), each "file:line: ...". `meridian check` prints them,
  // the server logs them.
  std::vector<std::string> warnings;
};

// Where a service's owner sits among the served zones, as the compile needs to know it. georoute
// does not depend on zones/ (DESIGN.md): the caller answers from its zone set
// (server::zoneLocator in server/steering_zones.h).
struct ZonePlacement {
  enum class Kind : uint8_t {
    kOutside,    // in no served zone
    kDelegated,  // at or below a delegation of the zone that holds it
    kNoRecords,  // the zone has no node at the name (no fallback RRset)
    kInZone,
  };
  Kind kind = Kind::kOutside;
  std::string origin;  // the zone's origin (presentation form), unless kOutside
};
// `owner` is the lowercase wire name of the service.
using ZoneLocator = std::function<ZonePlacement(const dns::NameBuf& owner)>;

// Resolves names to ids and validates: regions exist, services lie in served zones and not below a
// delegation, endpoints parse, checks exist, policies are known. `geo` may be null.
//
// `previous`: the targets of the steering this one replaces (a reload). A slot that both have
// (same label, checked or not) keeps its previous id where it fits in the new table, so that the
// services and the health table, which are published one after the other, agree on every
// unchanged slot in between.
[[nodiscard]] Result<CompiledSteering> compileSteering(
    const SteeringConfig& cfg, const ZoneLocator& zones, std::shared_ptr<const GeoDatabase> geo,
    std::shared_ptr<const GeoDatabase> asn = nullptr,
    const std::vector<HealthTarget>* previous = nullptr);

// Opens the configured GeoIP databases and compiles: for `meridian check` and `explain`, which have
// no previous state to fall back on (the server keeps its own, see app/runtime.h).
[[nodiscard]] Result<CompiledSteering> loadSteering(const SteeringConfig& cfg,
                                                    const ZoneLocator& zones);

// An IP address in its canonical text (RFC 5952 for IPv6: 2001:DB8:0::1 -> 2001:db8::1), as
// health labels show it and overrides match it; anything else is returned unchanged.
[[nodiscard]] std::string canonicalAddress(const std::string& text);

// "192.0.2.0/24" or "2001:db8::/32".
[[nodiscard]] Result<CidrEntry> parseCidr(const std::string& text);

}  // namespace meridian::georoute
