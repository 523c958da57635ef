// libFuzzer target: arbitrary query bytes through the query pipeline (server::QueryHandler) over
// zones with steered services, the way the server runs them: the steering configuration below is
// parsed by app::loadConfig and compiled by georoute::compileSteering against a GeoIP database
// written by tools::MmdbWriter. The zones have geo, weighted, nearest and latency services, a
// wildcard service, a service in a served child zone below a delegation, DNAMEs and CNAME chains
// (within a zone and across zones) into steered names, wildcards and a CNAME loop; ECS, cookies and
// TSIG come from the input. Each input is answered four times: over UDP from an IPv4 peer (a
// trusted ECS resolver) with every target up, over TCP from an IPv6 peer with the eu targets down
// and RTTs measured, from an IPv4-mapped peer, and once more over UDP with a 512-octet reply
// buffer. Any crash, sanitizer report, or reply larger than its limit is a bug; every reply must
// start with the query's ID and QR set.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "app/config.h"
#include "fuzz_util.h"
#include "georoute/compile.h"
#include "healthcheck/state.h"
#include "server/pipeline.h"
#include "server/steering_zones.h"
#include "zones/loader.h"

namespace {

using namespace meridian;
using fuzz::check;

const char* kCom = R"(
$ORIGIN example.com.
$TTL 300
@       SOA   ns hostmaster 1 7200 3600 1209600 300
@       NS    ns
ns      A     192.0.2.1
www     A     192.0.2.99
www     TXT   "static"
alias   CNAME www
alias2  CNAME alias
*.wild  CNAME www
w8      A     192.0.2.98
near    A     192.0.2.97
lat     A     192.0.2.96
*.geo   A     192.0.2.95
togeo   CNAME x.geo
dgeo    DNAME geo.example.com.
dsub    DNAME sub.example.com.
tosub   CNAME www.sub
sub     NS    ns.sub
ns.sub  A     192.0.2.53
loop1   CNAME loop2
loop2   CNAME loop1
toout   CNAME cust.example.net.
*       MX    10 ns
)";

const char* kSub = R"(
$ORIGIN sub.example.com.
$TTL 300
@    SOA   ns hostmaster 1 7200 3600 1209600 300
@    NS    ns
ns   A     192.0.2.53
www  A     192.0.2.54
)";

const char* kNet = R"(
$ORIGIN example.net.
$TTL 300
@     SOA   ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@     NS    ns.example.com.
cust  CNAME www.example.com.
w8    CNAME w8.example.com.
dorg  DNAME example.org.
)";

const char* kOrg = R"(
$ORIGIN example.org.
$TTL 300
@    SOA   ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
@    NS    ns.example.com.
x    DNAME example.com.
)";

const char* kSteering = R"(
[geoip]
ecs_trusted = ["192.0.2.0/24", "2001:db8::/32"]

[lists]
europe-first = ["eu", "us"]

[[region]]
name = "eu"
latitude = 50.11
longitude = 8.68

[[region]]
name = "us"
latitude = 39.04
longitude = -77.49

[[region]]
name = "ap"
latitude = 35.68
longitude = 139.69
bias_km = -200

[[check]]
name = "web"
type = "tcp"
port = 80

[[service]]
name = "www.example.com"
ttl = 20
policy = ["up", "geo", "first_n"]
first_n = 2
check = "web"
[service.geo]
default = ["us", "eu"]
continent = { EU = "europe-first", AS = ["ap", "eu"] }
country = { JP = ["ap"] }
subdivision = { "GB-ENG" = ["eu"] }
cidr = { "10.0.0.0/8" = ["eu"], "2001:db8:1::/48" = ["ap"] }
asn = { "64500" = ["us"] }
[[service.pool]]
region = "eu"
endpoints = ["203.0.113.1", { address = "2001:db8::10", weight = 2 },
             { cname = "eu.cdn.example.net.", check = "none" }]
[[service.pool]]
region = "us"
endpoints = ["203.0.113.2", "203.0.113.3", "2001:db8::20"]
[[service.pool]]
region = "ap"
endpoints = ["203.0.113.4"]

[[service]]
name = "w8.example.com"
policy = ["up", "weighted"]
when_all_down = "nodata"
check = "web"
weighted_prefix_v4 = 16
[[service.pool]]
region = "eu"
endpoints = [{ address = "203.0.113.11", weight = 3 }, { address = "203.0.113.12", weight = 1 }]
[[service.pool]]
region = "us"
endpoints = [{ address = "203.0.113.13", weight = 5 }]

[[service]]
name = "near.example.com"
policy = ["up", "nearest"]
when_all_down = "servfail"
check = "web"
[[service.pool]]
region = "eu"
endpoints = ["203.0.113.21"]
[[service.pool]]
region = "us"
endpoints = ["203.0.113.22"]
[[service.pool]]
region = "ap"
endpoints = ["203.0.113.23", "2001:db8::23"]

[[service]]
name = "lat.example.com"
policy = ["up", "latency"]
when_all_down = "fallback"
check = "web"
[[service.pool]]
region = "eu"
endpoints = ["203.0.113.31"]
[[service.pool]]
region = "us"
endpoints = ["203.0.113.32"]

[[service]]
name = "*.geo.example.com"
policy = ["geo"]
[service.geo]
default = ["us"]
country = { DE = ["eu"] }
[[service.pool]]
region = "eu"
endpoints = ["203.0.113.41"]
[[service.pool]]
region = "us"
endpoints = ["203.0.113.42"]

[[service]]
name = "www.sub.example.com"
[[service.pool]]
region = "eu"
endpoints = ["203.0.113.51"]
[[service.pool]]
region = "us"
endpoints = ["203.0.113.52"]
)";

std::shared_ptr<const georoute::GeoDatabase> makeGeo() {
  tools::MmdbWriter w("GeoIP2-City");
  fuzz::addNetwork(w, "192.0.2.0", 24, {"", "DE", "EU", 50.1, 8.7, 3320, "DE", {"HE"}});
  fuzz::addNetwork(w, "198.51.100.0", 24, {"", "GB", "EU", 51.5, -0.1, 2856, "GB", {"ENG", "WBK"}});
  fuzz::addNetwork(w, "203.0.113.0", 24, {"", "JP", "AS", 35.7, 139.7, std::nullopt, "", {}});
  fuzz::addNetwork(w, "100.64.0.0", 10, {"", "US", "NA", 39.0, -77.5, 64500, "US", {"VA"}});
  fuzz::addNetwork(w, "2001:db8::", 32, {"", "US", "NA", 37.3, -121.9, std::nullopt, "US", {"CA"}});
  fuzz::addNetwork(w, "2001:db8:1::", 48, {"", "AU", "OC", -33.9, 151.2, std::nullopt, "AU", {}});
  return fuzz::openWritten(w, "steered");
}

struct Harness {
  Published<server::ServingState> state{std::make_shared<const server::ServingState>()};
  std::shared_ptr<healthcheck::Verdicts> health;
  size_t targets = 0;
  std::unique_ptr<server::QueryHandler> handler;

  Harness() {
    std::vector<std::shared_ptr<const zones::Zone>> list;
    for (auto [origin, text] : {std::pair{"example.com", kCom}, std::pair{"sub.example.com", kSub},
                                std::pair{"example.net", kNet}, std::pair{"example.org", kOrg}}) {
      auto z = zones::loadZoneText(origin, text);
      check(z.has_value());
      list.push_back(z->zone);
    }
    auto s = std::make_shared<server::ServingState>();
    s->zones = zones::ZoneSet(list);
    s->protocol.nsid = "fuzz";
    for (int i = 0; i < 16; ++i) s->protocol.cookie_secret[i] = static_cast<uint8_t>(i);

    fuzz::MemFile conf("fuzz_steered_conf");
    conf.assign(reinterpret_cast<const uint8_t*>(kSteering), std::strlen(kSteering));
    app::CommandLine cmd;
    cmd.config_file = conf.path();
    auto cfg = app::loadConfig(cmd);
    if (!cfg) std::fprintf(stderr, "fuzz_steered: %s\n", cfg.error().message.c_str());
    check(cfg.has_value());
    auto compiled =
        georoute::compileSteering(cfg->steering, server::zoneLocator(s->zones), makeGeo());
    if (!compiled) std::fprintf(stderr, "fuzz_steered: %s\n", compiled.error().message.c_str());
    check(compiled.has_value());
    s->services = compiled->services;
    targets = compiled->targets.size();
    health = std::make_shared<healthcheck::Verdicts>(targets);
    s->health = health;
    state.publish(s);
    handler = std::make_unique<server::QueryHandler>(state);
  }

  // All up, no RTTs; or the even targets down and RTTs on the rest.
  void setHealth(bool degraded) {
    for (size_t i = 0; i < targets; ++i) {
      healthcheck::TargetState t;
      t.up = !(degraded && i % 2 == 0);
      t.rtt_us = degraded ? static_cast<uint32_t>(1000 * (i + 1)) : 0;
      (void)health->set(static_cast<uint32_t>(i), t);
    }
  }
};

constexpr size_t kMaxReply = 65535;

void answer(Harness& h, const uint8_t* data, size_t size, size_t cap, server::Transport t,
            const server::Peer& peer) {
  static uint8_t out[kMaxReply];
  const size_t n = h.handler->handle(data, size, out, cap, t, peer);
  if (n == 0) return;
  check(n <= cap && n >= 12);
  if (t == server::Transport::kUdp) check(n <= 1232);  // ProtocolSettings::max_udp_payload
  check(std::memcmp(out, data, 2) == 0 && (out[2] & 0x80) != 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  server::Peer v4;
  v4.known = true;
  const uint8_t a4[4] = {192, 0, 2, 53};
  std::memcpy(v4.address, a4, 4);
  server::Peer v6;
  v6.known = true;
  v6.ipv6 = true;
  const uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53};
  std::memcpy(v6.address, a6, 16);
  server::Peer mapped = v6;
  const uint8_t am[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7};
  std::memcpy(mapped.address, am, 16);

  h.setHealth(false);
  answer(h, data, size, kMaxReply, server::Transport::kUdp, v4);
  h.setHealth(true);
  answer(h, data, size, kMaxReply, server::Transport::kTcp, v6);
  answer(h, data, size, kMaxReply, server::Transport::kUdp, mapped);
  answer(h, data, size, 512, server::Transport::kUdp, v4);
  return 0;
}
