// libFuzzer target: arbitrary bytes as a zone file through the loader (tokenizer, owner/TTL/type
// checks, ldns RDATA conversion, per-field diagnosis) and the zone builder. Any crash or sanitizer
// report is a bug; a refused file must come with a message, a loaded one with an SOA serial.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "zones/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A fixed head keeps most inputs past "no SOA" so the record paths get exercised.
  std::string text =
      "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2h 1h 2w 5m\n@ NS ns1\nns1 A 192.0.2.1\n";
  text.append(reinterpret_cast<const char*>(data), size);
  auto r = meridian::zones::loadZoneText("example.com", text, "fuzz");
  if (!r.has_value() && r.error().message.empty()) std::abort();
  if (r.has_value() && r->zone == nullptr) std::abort();
  return 0;
}
