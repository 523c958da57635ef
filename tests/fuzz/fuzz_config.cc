// libFuzzer target: arbitrary bytes as the TOML configuration file through app::loadConfig (toml++,
// [server], [rrl], [[zone]], [geoip], [[region]], [[check]], [[service]] with its pools and geo
// map, [lists]) and, when it loads, georoute::compileSteering (georoute/compile.cc: geo maps, named
// lists, CIDR and ASN keys, policies) against a fixed zone set and GeoIP database. Lines of the
// form "#set KEY=VALUE" (TOML comments, so the file is unchanged by them) are also passed as
// --set overrides. The API must return every error, never throw or crash: an exception escaping
// here is reported by libFuzzer as a crash. A refused configuration must say why.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "app/config.h"
#include "fuzz_util.h"
#include "georoute/compile.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

namespace {

using namespace meridian;
using fuzz::check;

const char* kZone = R"(
$ORIGIN example.com.
$TTL 300
@ SOA ns1 h 1 2 3 4 5
@ NS ns1
ns1 A 192.0.2.1
www A 192.0.2.3
www AAAA 2001:db8::3
api A 192.0.2.2
*.geo A 192.0.2.5
sub NS ns.sub
ns.sub A 192.0.2.4
)";

// FUZZ_CONFIG_VERBOSE=1: print what each input came to (for writing seeds that get far).
void report(const char* what, const std::string& detail) {
  static const bool verbose = std::getenv("FUZZ_CONFIG_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "fuzz_config: %s%s\n", what, detail.c_str());
}

// The zones and the GeoIP databases (a City-like map and an ASN one) the services compile against.
struct Fixture {
  zones::ZoneSet zones;
  std::shared_ptr<const georoute::GeoDatabase> geo, asn;
  fuzz::MemFile file{"fuzz_config"};

  Fixture() {
    auto z = zones::loadZoneText("example.com", kZone);
    check(z.has_value());
    zones = zones::ZoneSet({z->zone});
    tools::MmdbWriter city("GeoIP2-City");
    fuzz::addNetwork(city, "192.0.2.0", 24,
                     {"", "DE", "EU", 50.1, 8.7, std::nullopt, "DE", {"HE"}});
    geo = fuzz::openWritten(city, "city");
    tools::MmdbWriter as("GeoLite2-ASN");
    tools::MmdbRecord r;
    r.asn = 64500;
    fuzz::addNetwork(as, "192.0.2.0", 24, r);
    asn = fuzz::openWritten(as, "asn");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture f;
  f.file.assign(data, size);
  app::CommandLine cmd;
  cmd.config_file = f.file.path();
  cmd.threads = 1;  // not the machine's CPU count: the same input gives the same result anywhere
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (line.substr(0, 5) == "#set ") cmd.sets.emplace_back(line.substr(5));
    pos = end + 1;
  }

  auto cfg = app::loadConfig(cmd);
  if (!cfg) {
    report("refused: ", cfg.error().message);
    check(!cfg.error().message.empty());
    return 0;
  }
  check(!cfg->server.listen.empty() && cfg->server.threads == 1);
  if (cfg->steering.empty()) {
    report("loaded, no steering", "");
    return 0;
  }
  auto compiled =
      georoute::compileSteering(cfg->steering, server::zoneLocator(f.zones), f.geo, f.asn);
  if (!compiled) {
    report("steering refused: ", compiled.error().message);
    check(!compiled.error().message.empty());
    return 0;
  }
  report("steering compiled, services: ",
         std::to_string(compiled->services ? compiled->services->services.size() : 0));
  return 0;
}
