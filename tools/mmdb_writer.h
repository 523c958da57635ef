// MaxMind DB (MMDB v2.0, https://maxmind.github.io/MaxMind-DB/) writer: operators build their own
// network → region maps with `meridian mmdb build`, and tests build synthetic databases that the
// GeoIP loader then opens with libmaxminddb like any MaxMind file.
//
// Control plane only (CLI, tests, tools): it allocates freely and runs on the caller's thread. One
// MmdbWriter is not thread-safe; build it on one thread, then write().
//
// Layout of what is written, so readers in other tools know what to expect:
//   * an IPv6 tree (ip_version 6) unless constructed with ip_version 4. IPv4 networks live at
//     ::a.b.c.d/(96+prefix), which is where libmaxminddb looks IPv4 addresses up. Like MaxMind's
//     own databases, ::ffff:0:0/96 (IPv4-mapped) and 2002::/16 (6to4) point at that IPv4 subtree,
//     so
//     ::ffff:192.0.2.1 and 2002:c000:201:: find 192.0.2.1's record.
//   * record size 24, 28 or 32 bits: the smallest that holds the largest record value.
//   * one data-section entry per distinct MmdbRecord; map keys and repeated strings are stored
//     once and referenced by MMDB pointers.
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"

namespace meridian::tools {

// The data stored for one network: a small subset of the GeoIP2 City layout plus our own key.
// Empty strings and unset optionals are omitted from the written map.
struct MmdbRecord {
  std::string region;                         // "meridian_region"
  std::string country_iso;                    // {"country": {"iso_code": ...}}
  std::string continent_code;                 // {"continent": {"code": ...}}
  std::optional<double> latitude, longitude;  // {"location": {"latitude": d, "longitude": d}}
  std::optional<uint32_t> asn;                // "autonomous_system_number" (uint32)
  std::string registered_country_iso;         // {"registered_country": {"iso_code": ...}}
  std::vector<std::string> subdivisions;      // {"subdivisions": [{"iso_code": ...}, ...]}

  bool operator==(const MmdbRecord&) const = default;
};

struct MmdbNetwork {
  boost::asio::ip::address address;  // host bits beyond `prefix` must be zero
  unsigned prefix = 0;               // 0..32 for IPv4, 0..128 for IPv6
  MmdbRecord record;
};

class MmdbWriter {
 public:
  // ip_version 6 (the default) holds IPv4 and IPv6 networks; ip_version 4 holds IPv4 only (any
  // other value is treated as 6).
  explicit MmdbWriter(std::string database_type = "Meridian-Map", unsigned ip_version = 6);
  MmdbWriter(MmdbWriter&&) = default;
  MmdbWriter& operator=(MmdbWriter&&) = default;

  // Inserts one network. A later insert overwrites whatever earlier inserts stored in the part of
  // the address space it covers (so add a /16 before the /24s that carve exceptions out of it).
  // IPv4-mapped IPv6 networks (::ffff:a.b.c.d/96+n) are stored as the IPv4 network a.b.c.d/n.
  // Errors: prefix out of range, host bits set, IPv6 into an ip_version 4 tree, a network inside
  // the 2002::/16 alias, a string that is not UTF-8, a non-finite coordinate.
  [[nodiscard]] Result<void> add(const MmdbNetwork& network);

  // Writes the database to `path` atomically: a temporary file in the same directory, fsync,
  // rename. On error nothing is left behind and an existing `path` is untouched.
  [[nodiscard]] Result<void> write(const std::string& path) const;

  // Networks accepted by add() (including ones later overwritten).
  [[nodiscard]] size_t networkCount() const { return network_count_; }

  // Metadata "description" {"en": ...}; defaults to "Meridian network map (<database_type>)".
  void setDescription(std::string description) { description_ = std::move(description); }
  // Metadata "build_epoch"; defaults to the time write() is called. Set it for reproducible files.
  void setBuildEpoch(uint64_t epoch) { build_epoch_ = epoch; }

 private:
  // A record of the in-memory trie: a node index, the empty record, a data-section offset, or
  // the alias to the IPv4 subtree (resolved when writing). Tagged in the top bits of a uint32.
  using Ref = uint32_t;
  struct Node {
    Ref child[2];
  };

  Ref* descend(const std::array<uint8_t, 16>& bits, unsigned depth);
  void installAliases();
  Result<uint32_t> internRecord(const MmdbRecord& record);
  uint32_t internString(const std::string& s);
  void appendString(std::string& out, const std::string& s);

  std::string database_type_;
  unsigned ip_version_;
  std::string description_;
  std::optional<uint64_t> build_epoch_;
  size_t network_count_ = 0;

  std::vector<Node> nodes_;  // nodes_[0] is the root; overwritten subtrees become garbage
  // The data section, built as records arrive. On the heap so that the hash functors of records_,
  // which point at it, stay valid when the writer is moved.
  std::unique_ptr<std::string> data_;

  // Record dedup: spans of data_ hashed by their bytes. Every record is encoded with the same
  // pointer for the same key or string, so equal records have equal bytes.
  struct Span {
    uint32_t offset, length;
  };
  struct SpanHash {
    const std::string* data;
    size_t operator()(const Span& s) const;
  };
  struct SpanEq {
    const std::string* data;
    bool operator()(const Span& a, const Span& b) const;
  };
  std::unordered_set<Span, SpanHash, SpanEq> records_;
  std::unordered_map<std::string, uint32_t> strings_;  // string → offset of its copy in data_
};

// Reads "network,region,country,continent,latitude,longitude,asn" lines (header optional, '#'
// comments, empty fields allowed, CIDR like 192.0.2.0/24 or 2001:db8::/32) and writes the
// database. Returns the number of networks; errors name file:line. See docs/mmdb.md.
[[nodiscard]] Result<size_t> buildMmdbFromCsv(const std::string& csv_path,
                                              const std::string& out_path);

}  // namespace meridian::tools
