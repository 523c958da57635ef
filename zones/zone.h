// The in-memory zone: an immutable snapshot built once at load time and read, without locks, by
// every worker thread. Records are pre-encoded in wire form at load (type, class, TTL, RDLENGTH,
// RDATA), so answering is copying bytes plus name compression. Names are resolved to node indices
// at load: delegation cuts, wildcard children and additional-section targets (RFC 1034 §4.3.2 step
// 6) are precomputed per node or RRset, so a lookup is a few searches of the name index.
//
// Built by ZoneBuilder (zone_builder.h) on the control thread; published inside a ZoneSet.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::zones {

inline constexpr uint32_t kNone = 0xFFFFFFFFu;

// One resource record, pre-encoded: blob[offset .. offset+length) = TYPE CLASS TTL RDLENGTH RDATA.
struct RR {
  uint32_t offset = 0;
  uint16_t length = 0;
  // Positions (relative to RDATA) of names that may be compressed (RFC 3597 §4); at most two (SOA).
  uint8_t name_count = 0;
  uint16_t name_pos[2] = {0, 0};
};

struct RRset {
  uint16_t type = 0;
  uint16_t rr_count = 0;
  uint32_t first_rr = 0;
  uint32_t ttl = 0;
  // For NS/MX/SRV: nodes holding A/AAAA for the targets, added to the additional section.
  uint32_t additional_begin = 0;
  uint16_t additional_count = 0;
  // For CNAME and DNAME: the lowercase target name in the name pool (kNone otherwise).
  uint32_t target_offset = kNone;
};

struct Node {
  uint32_t name_offset = 0;  // lowercase wire owner name in the name pool
  uint8_t name_length = 0;
  uint8_t flags = 0;
  uint16_t rrset_count = 0;
  uint32_t rrset_begin = 0;
  uint32_t cut = kNone;       // topmost delegation point at or above this node, kNone if none
  uint32_t wildcard = kNone;  // the "*" child, if any (RFC 4592)

  static constexpr uint8_t kApex = 1, kDelegation = 2, kDname = 4;
};

class Zone {
 public:
  [[nodiscard]] const uint8_t* apex() const {
    return names_.data() + nodes_[apex_node_].name_offset;
  }
  [[nodiscard]] size_t apexLength() const { return nodes_[apex_node_].name_length; }
  [[nodiscard]] uint32_t apexNode() const { return apex_node_; }
  [[nodiscard]] const std::string& origin() const { return origin_; }
  [[nodiscard]] uint32_t serial() const { return serial_; }

  // Exact lookup of a lowercase wire name; returns the node index or kNone. Searches index_ (see
  // IndexKey): about log2(nodes) steps down a compact implicit tree, the next levels prefetched,
  // touching the name pool only for names that tie on their first 15 octets.
  [[nodiscard]] uint32_t find(const uint8_t* name, size_t length) const;

  [[nodiscard]] const Node& node(uint32_t i) const { return nodes_[i]; }
  [[nodiscard]] size_t nodeCount() const { return nodes_.size(); }
  [[nodiscard]] const uint8_t* nodeName(const Node& n) const {
    return names_.data() + n.name_offset;
  }
  [[nodiscard]] const RRset* rrset(const Node& n, uint16_t type) const {
    for (uint32_t i = 0; i < n.rrset_count; ++i) {
      if (rrsets_[n.rrset_begin + i].type == type) return &rrsets_[n.rrset_begin + i];
    }
    return nullptr;
  }
  [[nodiscard]] const RRset* rrsetsBegin(const Node& n) const { return &rrsets_[n.rrset_begin]; }
  [[nodiscard]] const RR& rr(uint32_t i) const { return rrs_[i]; }
  [[nodiscard]] const uint8_t* blob(uint32_t offset) const { return blob_.data() + offset; }
  [[nodiscard]] uint32_t additionalNode(uint32_t i) const { return additional_[i]; }
  [[nodiscard]] const uint8_t* pooledName(uint32_t offset) const { return names_.data() + offset; }

  // The SOA for negative answers: TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
  [[nodiscard]] const RRset& negativeSoa() const { return negative_soa_; }
  // The same SOA as written after a question for the apex, to be replayed after other questions
  // (dns::ResponseWriter::replay; zones/lookup.h putNegativeSoa).
  [[nodiscard]] const dns::ReplayRecord& negativeSoaRecord() const { return negative_soa_record_; }
  [[nodiscard]] size_t recordCount() const { return record_count_; }
  // A 64-bit digest of the served records (owner, type, TTL, RDATA; independent of their order in
  // the file): two loads with equal digests serve the same data. Reload compares it to notice
  // content changes without a serial increase.
  [[nodiscard]] uint64_t digest() const { return digest_; }

 private:
  friend class ZoneBuilder;

  // A node's search key: the name's length and its first 15 octets (zero-padded) as two big-endian
  // words, so comparing keys orders names like nodes_ (length, then octets); names of up to 15
  // octets are told apart by the key alone.
  struct IndexKey {
    uint64_t hi = 0;  // length, then octets 0..6
    uint64_t lo = 0;  // octets 7..14
  };
  // Four keys to a cache line: index_ keeps one tree level's children (and, three levels down,
  // eight grandchildren in two lines) together.
  struct alignas(64) IndexBlock {
    IndexKey key[4];
  };

  [[nodiscard]] static IndexKey makeKey(const uint8_t* name, size_t length);
  // Fills index_ and index_nodes_ from nodes_ (sorted); called once by ZoneBuilder.
  void buildIndex();
  [[nodiscard]] const IndexKey& indexKey(size_t k) const { return index_[k / 4].key[k % 4]; }

  std::string origin_;
  uint32_t serial_ = 0;
  uint32_t apex_node_ = 0;
  size_t record_count_ = 0;
  uint64_t digest_ = 0;
  std::vector<Node> nodes_;  // sorted by name (length-then-bytes order, see find())
  std::vector<RRset> rrsets_;
  std::vector<RR> rrs_;
  std::vector<uint8_t> blob_;
  std::vector<uint8_t> names_;
  std::vector<uint32_t> additional_;
  RRset negative_soa_;
  dns::ReplayRecord negative_soa_record_;
  // nodes_' keys in Eytzinger (BFS) order: position k's children are 2k and 2k+1, position 0 is
  // unused; index_nodes_[k] is the node at position k. 20 octets per node, read only by find().
  std::vector<IndexBlock> index_ = std::vector<IndexBlock>(1);  // empty zone: one block, unread
  std::vector<uint32_t> index_nodes_ = std::vector<uint32_t>(1, kNone);  // empty zone: n = 0
};

// All zones served, immutable; the longest-match zone for a name is found by exact lookups of the
// name's suffixes (RFC 1034 §4.3.2 step 2).
class ZoneSet {
 public:
  ZoneSet() = default;
  explicit ZoneSet(std::vector<std::shared_ptr<const Zone>> zones);

  // The zone with the longest apex that is equal to or above `name` (lowercase), or nullptr.
  // `skip_exact` ignores a zone whose apex equals the name (DS is answered by the parent side).
  [[nodiscard]] const Zone* findZone(const dns::NameBuf& name, bool skip_exact = false) const;
  // The same for a trusted, lowercase, uncompressed wire name of `len` octets.
  [[nodiscard]] const Zone* findZone(const uint8_t* name, size_t len) const;
  [[nodiscard]] const std::vector<std::shared_ptr<const Zone>>& zones() const { return zones_; }

 private:
  std::vector<std::shared_ptr<const Zone>> zones_;  // sorted like Zone's nodes, by apex
  // The longest apex (octets): a name's longer suffixes cannot be a zone, so the per-query search
  // starts at this length (for one zone, one comparison instead of one per label).
  size_t longest_apex_ = 0;
};

using dns::compareNames;

}  // namespace meridian::zones
