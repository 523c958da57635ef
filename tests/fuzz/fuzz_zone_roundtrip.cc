// libFuzzer target: arbitrary bytes as a zone file; whatever loads must survive the zone-file
// writer: zoneText() loads back to the same ZoneContent (owner spelling, TTLs, RDATA octets and
// order) and the same Zone digest, and diff()/apply() of the two is empty. Any abort is a writer or
// content bug (an escape the loader reads differently, a presentation form that is not exact).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "zones/content.h"
#include "zones/diff.h"
#include "zones/writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meridian::zones;
  // The same head as fuzz_zonefile: most inputs get past "no SOA".
  std::string text =
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2h 1h 2w 5m\n@ NS ns1\nns1 A 192.0.2.1\n";
  text.append(reinterpret_cast<const char*>(data), size);
  auto a = loadZoneContentText("example.com", text, "fuzz");
  if (!a.has_value()) return 0;
  const std::string written = zoneText(a->content);
  auto b = loadZoneContentText("example.com", written, "written");
  if (!b.has_value()) std::abort();
  if (!(b->content == a->content)) std::abort();
  if (b->loaded.zone->digest() != a->loaded.zone->digest()) std::abort();
  if (!diff(a->content, b->content).empty()) std::abort();
  return 0;
}
