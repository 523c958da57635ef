// GeoIP2 / GeoLite2 databases (.mmdb, through libmaxminddb), opened and fully checked on the
// control thread, then read by DNS workers without locks. Opening walks the whole search tree once:
// every node must be well-formed and every data record must decode, so a corrupt file is refused at
// load (the previous database keeps serving) instead of failing per query. The distinct data
// records are decoded at that point into compact Locations, so a query is one tree walk plus a
// binary search, with no allocation and no string work.
#pragma once

#include <maxminddb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace meridian::georoute {

// Two ASCII letters packed big-endian ('G'<<8|'B'), upper-cased so codes compare
// case-insensitively; 0 = unknown.
[[nodiscard]] inline uint16_t packCode(const char* s, size_t len) {
  if (len != 2) return 0;
  auto up = [](char c) { return static_cast<uint8_t>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c); };
  return static_cast<uint16_t>((up(s[0]) << 8) | up(s[1]));
}
[[nodiscard]] std::string unpackCode(uint16_t code);

inline constexpr uint32_t kNoName = 0xFFFFFFFFu;

// Subdivision levels kept per location. GeoIP2 City data has at most two (GB: ENG then WBK, CZ:
// region then district); four leaves room without making a Location much bigger.
inline constexpr size_t kMaxSubdivisions = 4;

struct Location {
  uint16_t continent = 0;           // "EU"
  uint16_t country = 0;             // "GB" (`country` only; see registered_country)
  uint16_t registered_country = 0;  // where the network is registered, used only when asked
  uint8_t subdivision_count = 0;
  // ISO 3166-2 subdivision codes (up to 3 chars, packed), most general first as the database
  // lists them: GB-ENG, then GB-WBK.
  uint32_t subdivisions[kMaxSubdivisions] = {};
  uint32_t asn = 0;                // autonomous_system_number, 0 = none
  uint32_t region_name = kNoName;  // index into GeoDatabase::regionNames() ("meridian_region")
  bool has_coords = false;
  double latitude = 0;
  double longitude = 0;
};

[[nodiscard]] uint32_t packSubdivision(const char* s, size_t len);
[[nodiscard]] std::string unpackSubdivision(uint32_t code);

struct GeoResult {
  bool found = false;
  uint8_t prefix = 0;  // length of the network that decided the answer, in the client's family
  const Location* location = nullptr;
};

// A network: `address` (4 octets used for IPv4) and its prefix length; from aggregate(), also
// the class its addresses share.
struct Block {
  uint8_t address[16] = {};
  uint8_t prefix = 0;
  uint32_t leaf_class = 0;
};

class GeoDatabase {
 public:
  ~GeoDatabase();
  GeoDatabase(const GeoDatabase&) = delete;
  GeoDatabase& operator=(const GeoDatabase&) = delete;

  // Opens and validates; errors are "path: what is wrong".
  [[nodiscard]] static Result<std::shared_ptr<const GeoDatabase>> open(const std::string& path);

  // `address` is 4 or 16 octets. Thread-safe, no allocation.
  [[nodiscard]] GeoResult lookup(const uint8_t* address, bool ipv6) const;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& type() const { return type_; }
  [[nodiscard]] uint64_t buildEpoch() const { return build_epoch_; }
  [[nodiscard]] size_t recordCount() const { return offsets_.size(); }
  [[nodiscard]] const std::vector<std::string>& regionNames() const { return region_names_; }
  [[nodiscard]] std::string describe(const Location& l) const;
  [[nodiscard]] const std::vector<Location>& locations() const { return locations_; }

  // The maximal networks over which `leaf_class` is constant, sorted by address, each with that
  // class, for IPv4 (the ::/96 subtree of an IPv6 tree) or IPv6. `leaf_class` gets a locations()
  // index, or -1 for addresses the database does not map. Used to widen the ECS scope where
  // neighbouring networks get the same answer (RFC 7871 §7.2.1). Empty when the tree shares
  // subtrees so much that walking it by path would not end (a crafted file; see
  // Aggregator::budget). Control side only (app runs it on its load pool, off the control loop): a
  // read-only walk, never on the query path.
  template <typename LeafClass>
  [[nodiscard]] std::vector<Block> aggregate(bool ipv6, LeafClass&& leaf_class) const {
    std::vector<Block> out;
    aggregateImpl(
        ipv6, [&](int32_t i) -> uint32_t { return leaf_class(i); }, out);
    return out;
  }

 private:
  GeoDatabase() = default;
  void aggregateImpl(bool ipv6, const std::function<uint32_t(int32_t)>& leaf_class,
                     std::vector<Block>& out) const;
  MMDB_s mmdb_{};
  bool open_ = false;
  std::string path_;
  std::string type_;
  uint64_t build_epoch_ = 0;
  std::vector<uint32_t> offsets_;    // sorted data-section offsets of the distinct records
  std::vector<Location> locations_;  // parallel to offsets_
  std::vector<std::string> region_names_;
};

}  // namespace meridian::georoute
