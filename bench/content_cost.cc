// Bench: what the editable ZoneContent costs beside the serving Zone, for one zone file.
//   content_cost ZONEFILE ORIGIN
// Prints the heap held by the Zone alone (loadZoneFile) and by a ZoneContent (its memoryBytes()
// and the heap it holds), per record, and the wall time of: a plain load, a load into a content
// (+ the Zone in the same pass), buildZone() from the content, zoneText(), diff() of the content
// with a copy carrying one change. Figures only; nothing is asserted.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "zones/content.h"
#include "zones/diff.h"
#include "zones/loader.h"
#include "zones/writer.h"

using namespace meridian;

namespace {
size_t heapInUse() {
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
}
double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ZONEFILE ORIGIN\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1], origin = argv[2];
  size_t h0 = heapInUse();
  auto t = std::chrono::steady_clock::now();
  auto plain = zones::loadZoneFile(origin, path);
  const double plain_s = since(t);
  if (!plain) {
    std::fprintf(stderr, "%s\n", plain.error().message.c_str());
    return 1;
  }
  const size_t zone_bytes = heapInUse() - h0;
  const size_t records = plain->zone->recordCount();
  plain = Error{};

  h0 = heapInUse();
  t = std::chrono::steady_clock::now();
  auto loaded = zones::loadZoneContentFile(origin, path);
  const double content_load_s = since(t);
  if (!loaded) return 1;
  const size_t both_bytes = heapInUse() - h0;
  loaded->loaded.zone.reset();
  const size_t content_heap = heapInUse() - h0;
  const zones::ZoneContent& c = loaded->content;

  std::vector<std::string> warnings;
  t = std::chrono::steady_clock::now();
  auto built = zones::buildZone(c, warnings);
  const double build_s = since(t);
  t = std::chrono::steady_clock::now();
  const std::string text = zones::zoneText(c);
  const double write_s = since(t);
  zones::ZoneContent changed = c;
  (void)changed.setSerial(c.serial().value_or(0) + 1);
  t = std::chrono::steady_clock::now();
  const zones::ZoneDiff d = zones::diff(c, changed);
  const double diff_s = since(t);

  std::printf("records %zu, RRsets %zu\n", records, c.rrsetCount());
  std::printf("Zone (serving): %zu bytes of heap, %.1f per record\n", zone_bytes,
              static_cast<double>(zone_bytes) / static_cast<double>(records));
  std::printf("ZoneContent: memoryBytes %zu (%.1f per record), heap %zu (%.1f per record)\n",
              c.memoryBytes(), static_cast<double>(c.memoryBytes()) / static_cast<double>(records),
              content_heap, static_cast<double>(content_heap) / static_cast<double>(records));
  std::printf("heap of content + zone after loadZoneContentFile: %zu\n", both_bytes);
  std::printf(
      "loadZoneFile %.3f s; loadZoneContentFile %.3f s; buildZone %.3f s%s; zoneText %.3f s "
      "(%zu bytes); diff (one change) %.3f s, %zu+%zu RRsets\n",
      plain_s, content_load_s, build_s, built ? "" : " (FAILED)", write_s, text.size(), diff_s,
      d.removed.rrsetCount(), d.added.rrsetCount());
  return 0;
}
