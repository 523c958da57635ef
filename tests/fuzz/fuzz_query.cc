// libFuzzer target: arbitrary bytes through the whole query pipeline (parser, lookup, response
// writer) over UDP and TCP, against a zone with wildcards, CNAMEs and a delegation. Any crash,
// sanitizer report or reply larger than the limit is a bug.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "server/pipeline.h"
#include "zones/loader.h"

namespace {

const char* kZone = R"(
$ORIGIN example.com.
$TTL 300
@ SOA ns1 h 1 2 3 4 5
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.1
mail A 192.0.2.2
www A 192.0.2.3
a CNAME b
b CNAME a
*.w TXT "x"
sub NS ns.sub
ns.sub A 192.0.2.4
)";

struct Harness {
  meridian::Published<meridian::server::ServingState> state{
      std::make_shared<const meridian::server::ServingState>()};
  std::unique_ptr<meridian::server::QueryHandler> handler;
  Harness() {
    auto z = meridian::zones::loadZoneText("example.com", kZone);
    if (!z) std::abort();
    auto s = std::make_shared<meridian::server::ServingState>();
    s->zones = meridian::zones::ZoneSet({z->zone});
    s->protocol.nsid = "fuzz";
    state.publish(s);
    handler = std::make_unique<meridian::server::QueryHandler>(state);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;
  static uint8_t out[65535];
  size_t n = h.handler->handle(data, size, out, sizeof out, meridian::server::Transport::kUdp);
  if (n > 1232) std::abort();
  n = h.handler->handle(data, size, out, sizeof out, meridian::server::Transport::kTcp);
  if (n > sizeof out) std::abort();
  return 0;
}
