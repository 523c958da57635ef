// The resolver's RRset cache and negative cache (RFC 2308), shared by every worker thread.
//
// Writers are the resolver's completions (and the forwarder's), on any worker thread; readers are
// the query path on every worker. An entry is one RRset (or one negative answer) keyed by (owner
// wire name lowercased, type, class), with its records in uncompressed wire form, the RRSIGs that
// cover it (kept for DNSSEC validation later), its RFC 2181 §5.4.1 trust rank and its absolute
// expiry. Negative entries: NXDOMAIN per name (stored under type 0, which no RRset has), NODATA per
// name and type, each with the SOA to answer with.
//
// Concurrency (README.md, "Concurrency"): the cache is split into shards by a keyed hash of the
// owner name. Each shard has an open-addressing table of entry pointers; a lookup reads it with
// acquire loads and takes no lock and allocates nothing. Entries are immutable once published
// (except two relaxed hint bytes: the CLOCK reference bit and a saturating hit count). A writer
// locks its shard, builds the new entry, publishes it with a release store into the slot and
// retires the entry it replaced (or evicted) to the QuiescentDomain (core/snapshot.h): it is freed
// once every registered worker has passed a quiescent point, so no reader ever touches freed
// memory. Readers must be registered in that domain (workers are) and must not keep pointers into
// the cache across their quiescent point; lookup() copies the answer out into the caller's buffer,
// so they never do.
//
// Time is passed in by the caller (seconds on any monotonic clock): the query path reads its clock
// once per batch, and tests inject it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "core/snapshot.h"

namespace meridian::resolver {

using Seconds = int64_t;

// RFC 2181 §5.4.1 ranking, lowest first. Its two top levels (zone file, zone transfer) are
// authoritative data, which Meridian answers from its zones and never caches.
enum class Rank : uint8_t {
  kAdditional = 1,     // additional section, authority section of a non-authoritative answer, glue
  kNonAuthAnswer = 2,  // answer section of a non-authoritative answer
  kAuthority = 3,      // authority section of an authoritative answer
  kAnswer = 4,         // answer section of an authoritative answer
};

struct CacheConfig {
  // Memory bound of the whole cache in bytes: entries plus the shards' slot tables.
  size_t cache_size = 4u << 20;
  // Unbound's cache-min-ttl, cache-max-ttl and cache-max-negative-ttl defaults.
  uint32_t min_ttl = 0;
  uint32_t max_ttl = 86400;
  uint32_t max_negative_ttl = 3600;
  // RFC 8767 §5 suggests keeping expired data for 1 to 3 days; we take the lower end. (Unbound's
  // serve-expired-ttl defaults to 0, no limit, which NLnetLabs/unbound#1175 argues against.)
  // 0 here turns serve-stale off: expired entries are never answered.
  uint32_t stale_ttl = 86400;
  // Power of two. 16: more shards than worker threads on the machines this runs on, so two writers
  // rarely share a lock, and few enough that a shard's budget holds many entries.
  size_t shards = 16;
};

// One record's RDATA, uncompressed (names inside it expanded by the response parser).
struct Rdata {
  const uint8_t* data = nullptr;
  uint16_t length = 0;
};

// An RRset as the resolver hands it to the cache. RFC 2181 §5.2: one TTL for the whole set (the
// caller passes the lowest of its records').
struct RRsetIn {
  const uint8_t* owner = nullptr;  // uncompressed wire name, any case
  size_t owner_length = 0;
  uint16_t type = 0;
  uint16_t rrclass = 1;
  uint32_t ttl = 0;
  std::span<const Rdata> rdatas;
  std::span<const Rdata> rrsigs;  // RRSIG RDATA covering this set (RFC 4034 §3)
};

enum class Negative : uint8_t { kNxdomain, kNodata };

enum class InsertResult : uint8_t {
  kStored,
  kKeptHigherRank,  // RFC 2181 §5.4.1: a live entry of higher rank stays
  kTooBig,          // larger than half a shard's budget, or than a wire message
  kZeroTtl,         // RFC 1035 §3.2.1: TTL 0 (after min_ttl) is not cached
  kInvalid,         // empty set, bad name
};

enum class LookupStatus : uint8_t {
  kMiss,
  kAnswer,    // the RRset asked for
  kCname,     // no RRset of that type, but a CNAME at the name (the resolver chases it)
  kNxdomain,  // RFC 2308: the name does not exist; the SOA is written
  kNodata,    // RFC 2308: the name exists, the type does not; the SOA is written
  kNoSpace,   // found, but the caller's buffer is too small
};

struct LookupResult {
  LookupStatus status = LookupStatus::kMiss;
  bool stale = false;     // RFC 8767: served from expired data (TTL 30 s)
  bool prefetch = false;  // popular and in the last 10 % of its TTL: refresh it (once per entry)
  Rank rank = Rank::kAdditional;
  uint16_t records = 0;  // RRs written first (the RRset, the CNAME or the SOA)
  uint16_t rrsigs = 0;   // RRSIG RRs written after them
  uint32_t ttl = 0;      // the TTL written into every RR (the remaining time)
  size_t length = 0;     // octets written
};

struct CacheStats {
  uint64_t hits = 0, misses = 0, evictions = 0, entries = 0, bytes = 0;
};

class Cache {
 public:
  // RFC 8767 §4: "a recommended value of 30 seconds" for the TTL of stale answers.
  static constexpr uint32_t kStaleAnswerTtl = 30;
  // Hits an entry needs before it counts as popular for prefetch: one lookup in the last 10 % of
  // the TTL is not worth an upstream query, three show it is being asked for.
  static constexpr uint8_t kPrefetchMinHits = 3;

  explicit Cache(const CacheConfig& config, QuiescentDomain& domain = QuiescentDomain::global());
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Writer side (any thread; locks one shard; allocates).
  InsertResult insert(const RRsetIn& rrset, Rank rank, Seconds now);
  // RFC 2308 §5: the negative TTL is the lower of the SOA's TTL and its MINIMUM field, capped by
  // max_negative_ttl; `soa` is the SOA RRset of the authority section (one record).
  InsertResult insertNegative(const uint8_t* name, size_t name_length, uint16_t type,
                              uint16_t rrclass, Negative kind, const RRsetIn& soa, Rank rank,
                              Seconds now);
  // Removes every entry owned by `name` (all types, negative ones too); returns how many.
  size_t flush(const uint8_t* name, size_t name_length);
  size_t flushAll();

  // Reader side (worker threads registered in the domain): no lock, no allocation. Writes the RRs
  // in uncompressed wire form, owner lowercased, TTL = remaining time (or 30 s when stale), into
  // `out`. With `stale_ok`, expired entries within stale_ttl answer (marked stale).
  LookupResult lookup(const uint8_t* name, size_t name_length, uint16_t type, uint16_t rrclass,
                      Seconds now, std::span<uint8_t> out, bool stale_ok = false) const;

  // Control side: one RRset per line, zone-file style: `owner TTL CLASS TYPE rdata | rdata ... ;`
  // with the remaining TTL and a comment giving rank, RRSIG count and `stale`; negative entries as
  // `owner TTL CLASS NXDOMAIN ; soa ...` or `owner TTL CLASS NODATA TYPE ; soa ...`. Mnemonics and
  // RDATA text come from the caller (the app passes the zone writer's, zones/writer.h); without
  // them, RFC 3597 §5's generic `TYPEnnn` and `\# length hex`.
  using TypeText = std::function<std::string(uint16_t type)>;
  using RdataText = std::function<std::string(uint16_t type, std::span<const uint8_t> rdata)>;
  struct DumpText {
    TypeText type;
    RdataText rdata;
  };
  [[nodiscard]] std::string dump(Seconds now, const DumpText& format = {}) const;

  [[nodiscard]] CacheStats stats() const;
  [[nodiscard]] const CacheConfig& config() const { return config_; }

  struct Entry;
  struct Table;
  struct Shard;

 private:
  // `lower` is followed by 8 zero octets (cache.cc, kHashPad).
  [[nodiscard]] uint64_t hashName(const uint8_t* lower, size_t length) const;
  [[nodiscard]] Shard& shardFor(uint64_t name_hash) const;
  InsertResult store(Entry* entry, Seconds now);

  CacheConfig config_;
  QuiescentDomain* domain_;
  uint64_t hash_key_[2];  // random per cache: names from the network cannot be made to collide
  size_t shard_budget_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace meridian::resolver
