// The in-memory zone: an immutable snapshot built once at load time and read, without locks, by
// every worker thread. Records are pre-encoded in wire form at load (type, class, TTL, RDLENGTH,
// RDATA), so answering is copying bytes plus name compression. Names are resolved to node indices
// at load: delegation cuts, wildcard children and additional-section targets (RFC 1034 §4.3.2 step
// 6) are precomputed per node or RRset, so a lookup is a few probes of the name index (a hash
// table).
//
// Built by ZoneBuilder (zone_builder.h) on the control thread; published inside a ZoneSet.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/memory.h"
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

// The records of an RRset are consecutive, in rrs_ and in the blob alike, so the blob offset of its
// first record and each record's RDLENGTH walk them all. `plain` RRsets (no record has a
// compressible name: A, AAAA, TXT, ...) are copied from the blob without reading their RRs, which
// saves a hit a cache line in a large zone (bench/README.md). The TTL is the records' own
// (Zone::ttl).
struct RRset {
  uint16_t type = 0;
  uint16_t rr_count = 0;
  uint32_t first_rr = 0;
  uint32_t blob_offset = 0;  // the first record's RR::offset
  // For NS/MX/SRV: nodes holding A/AAAA for the targets, added to the additional section.
  uint32_t additional_begin = 0;
  uint16_t additional_count = 0;
  bool plain = false;  // no record has a compressible name (RR::name_count 0 for all)
  // For CNAME and DNAME: the lowercase target name in the name pool (kNone otherwise).
  uint32_t target_offset = kNone;
};

// 32 octets, aligned, so a node never straddles two cache lines: Zone::find reads one line per
// node it compares, and the node's own octets below the apex (relative) are part of it.
struct alignas(32) Node {
  uint32_t name_offset = 0;  // lowercase wire owner name in the name pool
  uint8_t name_length = 0;
  uint8_t flags = 0;
  uint16_t rrset_count = 0;
  uint32_t rrset_begin = 0;
  uint32_t cut = kNone;       // topmost delegation point at or above this node, kNone if none
  uint32_t wildcard = kNone;  // the "*" child, if any (RFC 4592)
  // The owner name's labels below the apex (name_length - apex length octets, lowercase wire),
  // when they fit here; kNotInline otherwise (then the name pool holds the only copy find() reads).
  // For a hit in a large zone this saves the name pool's cache line (bench/README.md).
  static constexpr size_t kInlineOctets = 11;
  static constexpr uint8_t kNotInline = 0xFF;
  uint8_t relative_length = kNotInline;
  uint8_t relative[kInlineOctets] = {};

  // kCname: the node holds a CNAME (and nothing else but DNSSEC records, RFC 2181 §10.1).
  static constexpr uint8_t kApex = 1, kDelegation = 2, kDname = 4, kCname = 8;
};
static_assert(sizeof(Node) == 32);

class Zone {
 public:
  [[nodiscard]] const uint8_t* apex() const {
    return names_.data() + nodes_[apex_node_].name_offset;
  }
  [[nodiscard]] size_t apexLength() const { return nodes_[apex_node_].name_length; }
  [[nodiscard]] uint32_t apexNode() const { return apex_node_; }
  [[nodiscard]] const std::string& origin() const { return origin_; }
  [[nodiscard]] uint32_t serial() const { return serial_; }

  // Exact lookup of a lowercase wire name; returns the node index or kNone. Probes index_ (see
  // Slot) from the name's hash: usually one cache line of slots, then the node and its name in the
  // pool for a slot whose tag matches. No allocation, no lock.
  // STYLE.md asks for no string hashing per query; that rule is about configuration names
  // (services, regions, checks), which are resolved to integer ids at load. The question name has
  // to be mapped to a node somehow, and hashing it into a table built at load (as gdnsd's tree
  // hashes labels) costs 8.4 simulated cache misses per hit against 15.8 for the ordered index it
  // replaced, with a per-zone key so no zone content can be picked to collide (bench/README.md).
  [[nodiscard]] uint32_t find(const uint8_t* name, size_t length) const;

  // Tests only: rebuilds the index with a fixed seed and only the tag bits in `tag_mask` kept
  // (0: every slot's tag matches every name, so find() must tell names apart by comparing them).
  void rebuildIndexForTesting(uint64_t seed, uint32_t tag_mask);
  // The seed the index was built with (drawn from std::random_device for each zone built).
  [[nodiscard]] uint64_t indexSeed() const { return seed_; }

  [[nodiscard]] const Node& node(uint32_t i) const { return nodes_[i]; }
  [[nodiscard]] size_t nodeCount() const { return nodes_.size(); }
  [[nodiscard]] const uint8_t* nodeName(const Node& n) const {
    return names_.data() + n.name_offset;
  }
  // A node's RRsets are sorted by type, so the scan stops at the first type not below `type`.
  [[nodiscard]] const RRset* rrset(const Node& n, uint16_t type) const {
    for (uint32_t i = 0; i < n.rrset_count; ++i) {
      const RRset& rs = rrsets_[n.rrset_begin + i];
      if (rs.type >= type) return rs.type == type ? &rs : nullptr;
    }
    return nullptr;
  }
  [[nodiscard]] const RRset* rrsetsBegin(const Node& n) const { return &rrsets_[n.rrset_begin]; }
  [[nodiscard]] const RR& rr(uint32_t i) const { return rrs_[i]; }
  [[nodiscard]] const uint8_t* blob(uint32_t offset) const { return blob_.data() + offset; }
  // The TTL of an RRset's records (RFC 2181 §5.2: one per RRset), as encoded in its first record.
  [[nodiscard]] uint32_t ttl(const RRset& rs) const {
    return dns::readU32(blob_.data() + rs.blob_offset + 4);
  }
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

  // One slot of the open-addressing table index_: a node and 32 bits of its name's hash (the tag),
  // so a probe reads a node only when the tags agree. An empty slot has node == kNone.
  struct Slot {
    uint32_t tag = 0;
    uint32_t node = kNone;
  };

  // Fills index_ from nodes_ with a seed from std::random_device; called once by ZoneBuilder.
  void buildIndex();
  void buildIndex(uint64_t seed, uint32_t tag_mask);

  std::string origin_;
  uint32_t serial_ = 0;
  uint32_t apex_node_ = 0;
  size_t record_count_ = 0;
  uint64_t digest_ = 0;
  core::TableVector<Node> nodes_;  // sorted by name (compareNames: length, then octets)
  core::TableVector<RRset> rrsets_;
  core::TableVector<RR> rrs_;
  core::TableVector<uint8_t> blob_;
  core::TableVector<uint8_t> names_;
  std::vector<uint32_t> additional_;
  RRset negative_soa_;
  dns::ReplayRecord negative_soa_record_;
  // Open addressing with linear probing, 2 slots per node (load factor 0.5, so an absent name's
  // probe ends at an empty slot after 2.5 slots on average), 16 octets per node; read only by
  // find(). The hash is keyed by seed_ (drawn per zone), so names from a zone file, the API or a
  // transfer cannot be chosen to collide without knowing it.
  core::TableVector<Slot> index_ = core::TableVector<Slot>(1);  // empty zone: one empty slot
  uint64_t seed_ = 0;
  // The hash's keys, derived from seed_; the hash's high bits choose a name's first slot, its low
  // 32 bits are the tag.
  uint64_t hash_key_[2] = {0, 0};
  uint32_t tag_mask_ = 0xFFFFFFFFu;  // tag bits kept: all, except after rebuildIndexForTesting
  // A copy of the apex name beside the keys find() reads: a node whose relative octets are inline
  // is compared against the question without touching the name pool.
  uint8_t apex_copy_[dns::kMaxNameLength] = {};
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
