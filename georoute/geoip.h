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
  // From aggregateShared() only, IPv6: the network is a copy of the IPv4 subtree (MaxMind's
  // ::ffff:0:0/96, 2002::/16 and 2001::/32 point at it, besides ::/96 itself). Its addresses are
  // answered by the IPv4 blocks: the 32 bits after `prefix` are the IPv4 address, and the IPv4
  // block's prefix + `prefix` is the IPv6 network's (`leaf_class` unused).
  bool ipv4_alias = false;
};

// The IPv4 address an address of an IPv4-alias block (Block::ipv4_alias) stands for: the 32 bits
// of the 16-octet `address` after the alias's `prefix` (at most 96) bits, e.g. ::ffff:a.b.c.d and
// 2002:AABB:CCDD:: -> a.b.c.d; 2001:0:AABB:CCDD:: -> A.B.C.D (the Teredo server's address, which
// is where MaxMind's databases alias 2001::/32, not the client's inverted one).
[[nodiscard]] inline uint32_t aliasedIpv4(const uint8_t* address, unsigned prefix) {
  const unsigned first = prefix / 8;
  uint64_t w = 0;
  for (unsigned i = 0; i < 5; ++i) w = (w << 8) | (first + i < 16 ? address[first + i] : 0u);
  return static_cast<uint32_t>(w >> (8 - prefix % 8));
}

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
        ipv6, [&](int32_t i) -> uint32_t { return leaf_class(i); }, kNoAlias, nullptr, out);
    return out;
  }

  // Both families at once, the IPv4 blocks stored once: where the IPv6 tree reaches the IPv4
  // subtree again (its aliases, and ::/96 itself) the IPv6 blocks have one `ipv4_alias` block
  // instead of a copy of every IPv4 block. Answers as aggregate(true, ...) does, mapped through
  // aliasedIpv4(). Without aliases to share (an IPv4 tree, all of IPv4 one class, a crafted tree
  // whose IPv4 subtree goes deeper than 32 bits) `v6` is aggregate(true, ...)'s.
  struct Shared {
    std::vector<Block> v4, v6;
    size_t aliases = 0;  // ipv4_alias blocks in v6
  };
  template <typename LeafClass>
  [[nodiscard]] Shared aggregateShared(LeafClass&& leaf_class) const {
    const std::function<uint32_t(int32_t)> f = [&](int32_t i) -> uint32_t { return leaf_class(i); };
    Shared out;
    WalkInfo v4;
    aggregateImpl(false, f, kNoAlias, &v4, out.v4);
    const bool share =
        v4.ipv4_root != kNoAlias && v4.ipv4_root != 0 && v4.mixed && !v4.cut && !out.v4.empty();
    aggregateImpl(true, f, share ? v4.ipv4_root : kNoAlias, nullptr, out.v6);
    for (const Block& b : out.v6) out.aliases += b.ipv4_alias ? 1 : 0;
    return out;
  }

 private:
  static constexpr uint32_t kNoAlias = 0xFFFFFFFFu;
  // What the IPv4 walk saw: the node of the IPv4 subtree in an IPv6 tree, whether its addresses
  // differ in class, and whether a search node sat where the 32 bits ended (cut off there).
  struct WalkInfo {
    uint32_t ipv4_root = kNoAlias;
    bool mixed = false;
    bool cut = false;
  };
  GeoDatabase() = default;
  // `alias_node`: in an IPv6 walk, the node answered by an ipv4_alias block wherever it is met.
  void aggregateImpl(bool ipv6, const std::function<uint32_t(int32_t)>& leaf_class,
                     uint32_t alias_node, WalkInfo* info, std::vector<Block>& out) const;
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
