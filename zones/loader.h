// Zone-file loading: RFC 1035 §5 master files. Our own tokenizer splits the file into entries
// (comments, quoted strings, escapes, parentheses, $ORIGIN / $TTL / $INCLUDE, owner inheritance)
// and checks owner, TTL, class and type with precise messages. The RDATA of the common types (A,
// AAAA, NS, CNAME, DNAME, PTR, MX, TXT, SPF, SOA, SRV, CAA) is converted here; ldns converts the
// rest (with RFC 3597 "\#" support) and every record the native conversion declines, after the
// numeric and name fields have been checked here as strictly as kzonecheck does. Every error of a
// file is reported in one run. The records then go to ZoneBuilder. ldns is used only here, on the
// control thread, never per query.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "zones/zone.h"

namespace meridian::zones {

// A file read for a zone, with its status as seen just before it was read.
struct SourceFile {
  std::string path;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  int64_t size = 0;
  uint64_t inode = 0;
  // True when `path` still has this status (the same file, not modified since it was read).
  [[nodiscard]] bool unchanged() const;
};

struct LoadedZone {
  std::shared_ptr<const Zone> zone;
  std::vector<std::string> warnings;
  // Every $INCLUDE'd file (nested ones too), so that a reload notices an edit to one of them.
  std::vector<SourceFile> includes;
  // Records whose RDATA went through ldns's text parser (types without a native conversion).
  uint64_t rdata_via_ldns = 0;
};

// kNative: the common types' RDATA converted by the loader itself (the default). kLdns: every
// record through ldns's text parser, as before the native conversion (tests compare the two).
enum class RdataPath { kNative, kLdns };

// Errors read "file:line: what is wrong", one per line (every error of the file, in file order,
// then the zone-level checks); the first line is the first error.
[[nodiscard]] Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path);

// The same from text in memory (tests, tools); `label` stands in for the file name in messages.
[[nodiscard]] Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                              const std::string& label = "<text>",
                                              RdataPath path = RdataPath::kNative);

// Sees every record the loader hands to ZoneBuilder, its owner as written (the builder keeps it
// lowercase): how loadZoneContentFile() (content.h) reads a file into a ZoneContent in the same
// pass. Records of a file with errors may have been seen; the load's result says whether they
// count.
class RecordObserver {
 public:
  virtual void record(const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
                      size_t rdlen) = 0;

 protected:
  ~RecordObserver() = default;
};

[[nodiscard]] Result<LoadedZone> loadZoneFile(const std::string& origin, const std::string& path,
                                              RecordObserver& observer);
[[nodiscard]] Result<LoadedZone> loadZoneText(const std::string& origin, const std::string& text,
                                              const std::string& label, RecordObserver& observer);

// A load given up because the process is stopping: thrown out of every load on a thread that holds
// a LoadStopScope once its flag is set (checked every kLoadStopCheckRecords records and before the
// zone is built, so a record costs a counter). Nothing of the load is returned, nothing published.
// Control side only: app/runtime.cc sets the flag on SIGTERM/SIGINT and logs the abandoned zone.
class LoadAbandoned : public std::runtime_error {
 public:
  LoadAbandoned() : std::runtime_error("load abandoned: the server is stopping") {}
};
// 4096 records parse in about 5 ms: a stop waits no longer than that for the parse to notice.
inline constexpr uint64_t kLoadStopCheckRecords = 4096;

// While alive, loads on this thread (loadZoneFile, loadZoneText, loadZoneContentFile, and the
// EditableZone reads built on them) watch `stop`. Scopes do not nest.
class LoadStopScope {
 public:
  explicit LoadStopScope(const std::atomic<bool>& stop);
  ~LoadStopScope();
  LoadStopScope(const LoadStopScope&) = delete;
  LoadStopScope& operator=(const LoadStopScope&) = delete;
};

enum class TtlStatus { kOk, kSyntax, kRange };

// A TTL or SOA timer as BIND and Knot read it: a decimal number ("3600"), or numbers each followed
// by a unit s, m, h, d, w (case-insensitive, combinable: "1h30m", "2w"). Anything else ("12x3",
// "3600x", "1h30") is kSyntax; values above 2^31-1 (RFC 2181 §8) are kRange.
[[nodiscard]] TtlStatus parseTtl(std::string_view text, uint32_t& out);

}  // namespace meridian::zones
