// RRset and negative cache: sharded open-addressing tables read without locks, CLOCK eviction,
// retirement through the QuiescentDomain (cache.h, README.md).
//
// Memory ordering. A writer (holding its shard's mutex) fully builds an Entry, then stores its
// pointer into a slot with memory_order_release; a reader loads the slot with memory_order_acquire,
// so every field it then reads was written before that store (release/acquire pairing on the same
// atomic). Fields other than the `referenced`/`hits`/`prefetch_sent` hints are never written after
// publication. A table (the slot array) is published the same way through Shard::table.
// Reclamation: a writer first unlinks an entry (a release store of another pointer or a tombstone
// into its slot), then retires it; QuiescentDomain::retire() bumps the domain's epoch with an
// acq_rel RMW under its mutex. A worker's quiescent point stores the epoch it read (acquire) into
// its slot (release) once it holds no pointer into the cache; reclaim() frees the entry only when
// every registered worker's stored epoch is at least the retirement epoch (acquire loads). So each
// worker's reads of the old entry are sequenced before its quiescent store, which happens before
// the free; and a worker that read the new epoch at a quiescent point synchronised with the
// retirement RMW, which the unlinking store precedes, so from then on it cannot load the unlinked
// pointer. The hints are relaxed: a lost hit or reference bit changes an eviction or prefetch
// choice, never what an answer contains.
#include "resolver/cache.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::resolver {

namespace {

// NXDOMAIN entries are keyed under type 0: RFC 6895 §3.1 reserves it, so no RRset has it.
constexpr uint16_t kNxdomainType = 0;
// A shard's first table; it doubles when more than half its slots hold entries.
constexpr size_t kInitialSlots = 64;
// Fixed part of a wire RR after its owner: type, class, TTL, RDLENGTH (RFC 1035 §4.1.3).
constexpr size_t kRRFixed = 10;

enum class Kind : uint8_t { kPositive, kNxdomain, kNodata };

}  // namespace

struct Cache::Entry {
  uint64_t hash;       // of (name, type, class): the slot's probe start and a quick reject
  uint64_t name_hash;  // of the name alone: the shard, and flush(name)
  Seconds expire;      // absolute; fresh while now < expire
  uint32_t original_ttl;
  uint32_t size;  // octets allocated, as counted in the shard's bytes
  uint16_t type;
  uint16_t rrclass;
  uint16_t records;
  uint16_t rrsigs;
  uint16_t data_length;  // octets of wire RRs after the name: records, then RRSIGs
  uint8_t name_length;
  uint8_t record_owner_length;  // the owner of the RRs written (the SOA's for negative entries)
  Kind kind;
  Rank rank;
  // Hints written by readers (relaxed, see the top of this file).
  mutable std::atomic<uint8_t> referenced{0};  // new entries go first unless hit (scan resistance)
  mutable std::atomic<uint8_t> hits{0};
  mutable std::atomic<uint8_t> prefetch_sent{0};

  [[nodiscard]] const uint8_t* name() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  [[nodiscard]] uint8_t* name() { return reinterpret_cast<uint8_t*>(this + 1); }
  [[nodiscard]] const uint8_t* data() const { return name() + name_length; }
  [[nodiscard]] uint8_t* data() { return name() + name_length; }
};

struct Cache::Table {
  explicit Table(size_t capacity)
      : mask(capacity - 1), slots(new std::atomic<Entry*>[capacity]()) {}
  [[nodiscard]] size_t capacity() const { return mask + 1; }
  [[nodiscard]] size_t bytes() const { return sizeof(Table) + capacity() * sizeof(slots[0]); }

  size_t mask;
  std::unique_ptr<std::atomic<Entry*>[]> slots;
};

struct Cache::Shard {
  // Read by every lookup; on its own line so the readers' counter updates do not bounce it.
  alignas(64) std::atomic<Table*> table{nullptr};
  alignas(64) mutable std::atomic<uint64_t> hits{0};
  mutable std::atomic<uint64_t> misses{0};
  // Writer side: under `mutex` (the atomics are read by stats() without it).
  alignas(64) std::mutex mutex;
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> entries{0};
  std::atomic<uint64_t> bytes{0};
  size_t used = 0;  // slots holding an entry or a tombstone
  size_t hand = 0;  // CLOCK hand
};

namespace {

// The names' hash: 64-bit multiply-fold rounds (the 128-bit product's halves xored, as wyhash
// does) over 8-octet words, seeded by the cache's random key so that names chosen by a client
// cannot be made to collide in the open-addressing tables. SipHash-2-4 (dns/cookie.h) cost two
// thirds of a hit (about 660 of 1000 instructions, bench/cache_cost under callgrind); this costs a
// few dozen.
__extension__ typedef unsigned __int128 Wide;

uint64_t fold(uint64_t a, uint64_t b) {
  const Wide r = static_cast<Wide>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// `p` is followed by at least 8 readable octets that are zero (kHashPad): the last word is read
// whole, a fixed-size load instead of a variable-length copy (about 35 instructions a hit).
constexpr size_t kHashPad = 8;

uint64_t keyedHash(const uint64_t key[2], const uint8_t* p, size_t n) {
  constexpr uint64_t kOdd1 = 0xa0761d6478bd642full, kOdd2 = 0xe7037ed1a0b428dbull;
  uint64_t h = key[0] ^ (n * kOdd1);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = fold(h ^ w, key[1] ^ kOdd2);
  }
  uint64_t w;
  std::memcpy(&w, p, 8);  // n < 8 octets of name, then zeros
  h = fold(h ^ w, key[1] ^ kOdd1);
  return fold(h, key[0] ^ kOdd2);
}

// A slot whose entry was removed: probes continue past it (a null slot ends them).
Cache::Entry* const kTombstone = reinterpret_cast<Cache::Entry*>(uintptr_t{1});

bool live(const Cache::Entry* e) {
  return e != nullptr && e != kTombstone;
}

uint64_t slotHash(uint64_t name_hash, uint16_t type, uint16_t rrclass) {
  uint64_t h = name_hash ^ ((uint64_t{type} << 16 | rrclass) * 0x9E3779B97F4A7C15ull);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 32);
}

bool matches(const Cache::Entry* e, uint64_t hash, uint16_t type, uint16_t rrclass,
             const uint8_t* name, size_t length) {
  return e->hash == hash && e->type == type && e->rrclass == rrclass && e->name_length == length &&
         std::memcmp(e->name(), name, length) == 0;
}

// The slot index holding the key, or SIZE_MAX; *found is the entry read there (one acquire load,
// so a reader uses exactly the entry it compared). Readers and writers both probe this way.
size_t findSlot(const Cache::Table& t, uint64_t hash, uint16_t type, uint16_t rrclass,
                const uint8_t* name, size_t length, const Cache::Entry** found = nullptr) {
  size_t i = hash & t.mask;
  for (size_t n = 0; n <= t.mask; ++n, i = (i + 1) & t.mask) {
    const Cache::Entry* e = t.slots[i].load(std::memory_order_acquire);
    if (e == nullptr) return SIZE_MAX;
    if (e != kTombstone && matches(e, hash, type, rrclass, name, length)) {
      if (found != nullptr) *found = e;
      return i;
    }
  }
  return SIZE_MAX;
}

// A structurally valid uncompressed wire name of exactly `length` octets.
bool validName(const uint8_t* p, size_t length) {
  if (p == nullptr || length == 0 || length > dns::kMaxNameLength) return false;
  size_t pos = 0;
  while (pos < length) {
    const uint8_t label = p[pos];
    if (label == 0) return pos + 1 == length;
    if (label > dns::kMaxLabelLength) return false;
    pos += 1 + label;
  }
  return false;
}

void destroyEntry(const Cache::Entry* e) {
  e->~Entry();
  ::operator delete(const_cast<Cache::Entry*>(e));
}

size_t rrsetOctets(size_t owner_length, std::span<const Rdata> rdatas) {
  size_t n = 0;
  for (const Rdata& r : rdatas) n += owner_length + kRRFixed + r.length;
  return n;
}

// Appends RRs with TTL 0 (lookup() writes the remaining TTL); owner lowercased.
uint8_t* writeRRs(uint8_t* p, const uint8_t* owner, size_t owner_length, uint16_t type,
                  uint16_t rrclass, std::span<const Rdata> rdatas) {
  for (const Rdata& r : rdatas) {
    dns::lowerCopy(p, owner, owner_length);
    p += owner_length;
    dns::writeU16(p, type);
    dns::writeU16(p + 2, rrclass);
    dns::writeU32(p + 4, 0);
    dns::writeU16(p + 8, r.length);
    p += kRRFixed;
    if (r.length != 0) std::memcpy(p, r.data, r.length);
    p += r.length;
  }
  return p;
}

// RFC 3597 §5 presentation, the default of dump(): `TYPEnnn`, `CLASSnnn`, `\# length hex`.
std::string genericType(uint16_t type) {
  return "TYPE" + std::to_string(type);
}

std::string className(uint16_t rrclass) {
  if (rrclass == dns::rrclass::kIN) return "IN";
  if (rrclass == dns::rrclass::kCH) return "CH";
  return "CLASS" + std::to_string(rrclass);
}

std::string genericRdata(uint16_t, std::span<const uint8_t> rdata) {
  std::string s = "\\# " + std::to_string(rdata.size());
  if (!rdata.empty()) s += ' ';
  static const char kHex[] = "0123456789abcdef";
  for (uint8_t b : rdata) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

const char* rankText(Rank r) {
  switch (r) {
    case Rank::kAdditional:
      return "additional";
    case Rank::kNonAuthAnswer:
      return "nonauth-answer";
    case Rank::kAuthority:
      return "authority";
    case Rank::kAnswer:
      return "answer";
  }
  return "?";
}

}  // namespace

Cache::Cache(const CacheConfig& config, QuiescentDomain& domain)
    : config_(config), domain_(&domain) {
  size_t shards = 1;
  while (shards < config_.shards && shards < 256) shards <<= 1;
  config_.shards = shards;
  shard_budget_ = config_.cache_size / shards;
  std::random_device random;
  for (uint64_t& k : hash_key_) k = (uint64_t{random()} << 32) ^ random();
  shards_ = std::make_unique<Shard[]>(shards);
  for (size_t i = 0; i < shards; ++i) {
    auto* t = new Table(kInitialSlots);
    shards_[i].table.store(t, std::memory_order_release);
    shards_[i].bytes.store(t->bytes(), std::memory_order_relaxed);
  }
}

Cache::~Cache() {
  // Readers are stopped before the cache goes; what was retired belongs to the domain.
  for (size_t s = 0; s < config_.shards; ++s) {
    Table* t = shards_[s].table.load(std::memory_order_acquire);
    for (size_t i = 0; i < t->capacity(); ++i) {
      Entry* e = t->slots[i].load(std::memory_order_relaxed);
      if (live(e)) destroyEntry(e);
    }
    delete t;
  }
}

uint64_t Cache::hashName(const uint8_t* lower, size_t length) const {
  return keyedHash(hash_key_, lower, length);
}

Cache::Shard& Cache::shardFor(uint64_t name_hash) const {
  return shards_[(name_hash >> 40) & (config_.shards - 1)];
}

InsertResult Cache::insert(const RRsetIn& rrset, Rank rank, Seconds now) {
  if (!validName(rrset.owner, rrset.owner_length) || rrset.rdatas.empty() ||
      rrset.type == kNxdomainType || rrset.rdatas.size() > UINT16_MAX ||
      rrset.rrsigs.size() > UINT16_MAX) {
    return InsertResult::kInvalid;
  }
  // RFC 1035 §3.2.1: a zero TTL is for the transaction in progress only; not cached.
  const uint32_t ttl = std::min(std::max(rrset.ttl, config_.min_ttl), config_.max_ttl);
  if (ttl == 0) return InsertResult::kZeroTtl;
  const size_t data =
      rrsetOctets(rrset.owner_length, rrset.rdatas) + rrsetOctets(rrset.owner_length, rrset.rrsigs);
  if (data > dns::kMaxMessageSize) return InsertResult::kTooBig;
  const size_t size = sizeof(Entry) + rrset.owner_length + data;

  auto* e = new (::operator new(size)) Entry;
  e->expire = now + ttl;
  e->original_ttl = ttl;
  e->size = static_cast<uint32_t>(size);
  e->type = rrset.type;
  e->rrclass = rrset.rrclass;
  e->records = static_cast<uint16_t>(rrset.rdatas.size());
  e->rrsigs = static_cast<uint16_t>(rrset.rrsigs.size());
  e->data_length = static_cast<uint16_t>(data);
  e->name_length = static_cast<uint8_t>(rrset.owner_length);
  e->record_owner_length = e->name_length;
  e->kind = Kind::kPositive;
  e->rank = rank;
  dns::lowerCopy(e->name(), rrset.owner, rrset.owner_length);
  uint8_t* p =
      writeRRs(e->data(), rrset.owner, rrset.owner_length, rrset.type, rrset.rrclass, rrset.rdatas);
  writeRRs(p, rrset.owner, rrset.owner_length, dns::rrtype::kRRSIG, rrset.rrclass, rrset.rrsigs);
  uint8_t padded[dns::kMaxNameLength + kHashPad] = {};
  std::memcpy(padded, e->name(), e->name_length);
  e->name_hash = hashName(padded, e->name_length);
  e->hash = slotHash(e->name_hash, e->type, e->rrclass);
  return store(e, now);
}

InsertResult Cache::insertNegative(const uint8_t* name, size_t name_length, uint16_t type,
                                   uint16_t rrclass, Negative kind, const RRsetIn& soa, Rank rank,
                                   Seconds now) {
  // SOA RDATA ends with the 32-bit MINIMUM (RFC 1035 §3.3.13); two names of at least one octet.
  constexpr size_t kSoaMinRdata = 2 + 20;
  if (!validName(name, name_length) || !validName(soa.owner, soa.owner_length) ||
      soa.rdatas.size() != 1 || soa.rdatas[0].length < kSoaMinRdata ||
      (kind == Negative::kNodata && type == kNxdomainType) || soa.rrsigs.size() > UINT16_MAX) {
    return InsertResult::kInvalid;
  }
  const Rdata& rd = soa.rdatas[0];
  // RFC 2308 §5: the negative TTL is the lower of the SOA's TTL and its MINIMUM field.
  const uint32_t minimum = dns::readU32(rd.data + rd.length - 4);
  const uint32_t ttl = std::min({soa.ttl, minimum, config_.max_negative_ttl});
  if (ttl == 0) return InsertResult::kZeroTtl;
  const size_t data =
      rrsetOctets(soa.owner_length, soa.rdatas) + rrsetOctets(soa.owner_length, soa.rrsigs);
  if (data > dns::kMaxMessageSize) return InsertResult::kTooBig;
  const size_t size = sizeof(Entry) + name_length + data;

  auto* e = new (::operator new(size)) Entry;
  e->expire = now + ttl;
  e->original_ttl = ttl;
  e->size = static_cast<uint32_t>(size);
  e->type = kind == Negative::kNxdomain ? kNxdomainType : type;
  e->rrclass = rrclass;
  e->records = 1;
  e->rrsigs = static_cast<uint16_t>(soa.rrsigs.size());
  e->data_length = static_cast<uint16_t>(data);
  e->name_length = static_cast<uint8_t>(name_length);
  e->record_owner_length = static_cast<uint8_t>(soa.owner_length);
  e->kind = kind == Negative::kNxdomain ? Kind::kNxdomain : Kind::kNodata;
  e->rank = rank;
  dns::lowerCopy(e->name(), name, name_length);
  uint8_t* p =
      writeRRs(e->data(), soa.owner, soa.owner_length, dns::rrtype::kSOA, rrclass, soa.rdatas);
  writeRRs(p, soa.owner, soa.owner_length, dns::rrtype::kRRSIG, rrclass, soa.rrsigs);
  uint8_t padded[dns::kMaxNameLength + kHashPad] = {};
  std::memcpy(padded, e->name(), e->name_length);
  e->name_hash = hashName(padded, e->name_length);
  e->hash = slotHash(e->name_hash, e->type, e->rrclass);
  return store(e, now);
}

InsertResult Cache::store(Entry* e, Seconds now) {
  if (size_t{e->size} * 2 > shard_budget_) {
    destroyEntry(e);
    return InsertResult::kTooBig;
  }
  Shard& sh = shardFor(e->name_hash);
  std::vector<std::shared_ptr<const void>> retired;
  auto retire = [&](Entry* old) {
    retired.emplace_back(old, &destroyEntry);
    sh.bytes.fetch_sub(old->size, std::memory_order_relaxed);
  };
  auto unlink = [&](Table& t, size_t i) {
    Entry* old = t.slots[i].load(std::memory_order_relaxed);
    t.slots[i].store(kTombstone, std::memory_order_release);
    sh.entries.fetch_sub(1, std::memory_order_relaxed);
    retire(old);
  };
  {
    std::lock_guard<std::mutex> lock(sh.mutex);
    Table* t = sh.table.load(std::memory_order_relaxed);
    const size_t at = findSlot(*t, e->hash, e->type, e->rrclass, e->name(), e->name_length);
    // RFC 2181 §5.4.1: data of a lower rank does not replace live data of a higher one.
    const auto outranks = [&](size_t i) {
      const Entry* old = t->slots[i].load(std::memory_order_relaxed);
      return now < old->expire && old->rank > e->rank;
    };
    if (at != SIZE_MAX && outranks(at)) {
      destroyEntry(e);
      return InsertResult::kKeptHigherRank;
    }
    if (e->kind != Kind::kNxdomain) {
      // Data at the name ends a cached NXDOMAIN for it, unless that one ranks higher.
      const size_t nx = findSlot(*t, slotHash(e->name_hash, kNxdomainType, e->rrclass),
                                 kNxdomainType, e->rrclass, e->name(), e->name_length);
      if (nx != SIZE_MAX) {
        if (outranks(nx)) {
          destroyEntry(e);
          return InsertResult::kKeptHigherRank;
        }
        unlink(*t, nx);
      }
    }
    sh.bytes.fetch_add(e->size, std::memory_order_relaxed);
    if (at != SIZE_MAX) {
      retire(t->slots[at].load(std::memory_order_relaxed));
      t->slots[at].store(e, std::memory_order_release);
    } else {
      if ((sh.used + 1) * 4 > t->capacity() * 3) {
        // Rehash into a table without tombstones, twice as large when half of it is entries.
        const size_t n = sh.entries.load(std::memory_order_relaxed);
        auto* next = new Table((n + 1) * 2 > t->capacity() ? t->capacity() * 2 : t->capacity());
        for (size_t i = 0; i < t->capacity(); ++i) {
          Entry* x = t->slots[i].load(std::memory_order_relaxed);
          if (!live(x)) continue;
          size_t j = x->hash & next->mask;
          while (next->slots[j].load(std::memory_order_relaxed) != nullptr)
            j = (j + 1) & next->mask;
          next->slots[j].store(x, std::memory_order_relaxed);
        }
        sh.table.store(next, std::memory_order_release);  // publishes the slots stored above
        sh.bytes.fetch_add(next->bytes() - t->bytes(), std::memory_order_relaxed);
        retired.emplace_back(std::shared_ptr<const void>(t));
        t = next;
        sh.used = n;
        sh.hand = 0;
      }
      size_t i = e->hash & t->mask;
      for (;;) {
        Entry* x = t->slots[i].load(std::memory_order_relaxed);
        if (x == nullptr) {
          ++sh.used;
          break;
        }
        if (x == kTombstone) break;
        i = (i + 1) & t->mask;
      }
      t->slots[i].store(e, std::memory_order_release);
      sh.entries.fetch_add(1, std::memory_order_relaxed);
    }
    // CLOCK (second chance): the hand clears reference bits and takes the first entry whose bit
    // is clear (or that is past serving, stale window included). Two turns always find one.
    while (sh.bytes.load(std::memory_order_relaxed) > shard_budget_) {
      bool evicted = false;
      for (size_t step = 0; step < 2 * t->capacity() && !evicted; ++step) {
        const size_t i = sh.hand++ & t->mask;
        Entry* x = t->slots[i].load(std::memory_order_relaxed);
        if (!live(x) || x == e) continue;
        const bool dead = now >= x->expire + static_cast<Seconds>(config_.stale_ttl);
        if (!dead && x->referenced.load(std::memory_order_relaxed) != 0) {
          x->referenced.store(0, std::memory_order_relaxed);
          continue;
        }
        unlink(*t, i);
        sh.evictions.fetch_add(1, std::memory_order_relaxed);
        evicted = true;
      }
      if (!evicted) break;  // only `e` is left
    }
  }
  // Unlinked above; retire() takes the domain's mutex, so outside the shard's.
  for (auto& r : retired) domain_->retire(std::move(r));
  return InsertResult::kStored;
}

LookupResult Cache::lookup(const uint8_t* name, size_t name_length, uint16_t type, uint16_t rrclass,
                           Seconds now, std::span<uint8_t> out, bool stale_ok) const {
  LookupResult r;
  if (name_length == 0 || name_length > dns::kMaxNameLength) return r;
  uint8_t lower[dns::kMaxNameLength + kHashPad];
  dns::lowerCopy(lower, name, name_length);
  std::memset(lower + name_length, 0, kHashPad);
  const uint64_t name_hash = hashName(lower, name_length);
  Shard& sh = shardFor(name_hash);
  const Table* t = sh.table.load(std::memory_order_acquire);
  const Seconds stale_until = stale_ok ? static_cast<Seconds>(config_.stale_ttl) : 0;

  // The exact RRset (or NODATA), else a CNAME at the name, else an NXDOMAIN for it.
  const Entry* e = nullptr;
  LookupStatus status = LookupStatus::kMiss;
  const auto probe = [&](uint16_t key_type) {
    const uint64_t h = slotHash(name_hash, key_type, rrclass);
    const Entry* found = nullptr;
    if (findSlot(*t, h, key_type, rrclass, lower, name_length, &found) == SIZE_MAX ||
        now >= found->expire + stale_until) {
      return false;
    }
    e = found;
    return true;
  };
  if (probe(type)) {
    status = e->kind == Kind::kNodata ? LookupStatus::kNodata : LookupStatus::kAnswer;
  } else if (type != dns::rrtype::kCNAME && probe(dns::rrtype::kCNAME)) {
    status = LookupStatus::kCname;
  } else if (probe(kNxdomainType)) {
    status = LookupStatus::kNxdomain;
  } else {
    sh.misses.fetch_add(1, std::memory_order_relaxed);
    return r;
  }

  r.rank = e->rank;
  if (out.size() < e->data_length) {
    r.status = LookupStatus::kNoSpace;
    return r;
  }
  const bool fresh = now < e->expire;
  r.status = status;
  r.stale = !fresh;
  r.ttl = fresh ? static_cast<uint32_t>(e->expire - now) : kStaleAnswerTtl;
  r.records = e->records;
  r.rrsigs = e->rrsigs;
  r.length = e->data_length;
  std::memcpy(out.data(), e->data(), e->data_length);
  uint8_t* p = out.data();
  for (size_t n = size_t{e->records} + e->rrsigs; n != 0; --n) {
    p += e->record_owner_length;
    dns::writeU32(p + 4, r.ttl);
    p += kRRFixed + dns::readU16(p + 8);
  }

  // Hints: plain load-then-store (no locked RMW on the hit path), saturating, lossy by design.
  if (e->referenced.load(std::memory_order_relaxed) == 0) {
    e->referenced.store(1, std::memory_order_relaxed);
  }
  const uint8_t hits = e->hits.load(std::memory_order_relaxed);
  if (hits != UINT8_MAX) e->hits.store(hits + 1, std::memory_order_relaxed);
  // Unbound's prefetch window: the last 10 % of the original TTL. The exchange makes one lookup
  // report it, so one refresh is started.
  if (fresh && hits + 1 >= kPrefetchMinHits && uint64_t{r.ttl} * 10 <= e->original_ttl &&
      e->prefetch_sent.load(std::memory_order_relaxed) == 0) {
    r.prefetch = e->prefetch_sent.exchange(1, std::memory_order_relaxed) == 0;
  }
  sh.hits.fetch_add(1, std::memory_order_relaxed);
  return r;
}

size_t Cache::flush(const uint8_t* name, size_t name_length) {
  if (!validName(name, name_length)) return 0;
  uint8_t lower[dns::kMaxNameLength + kHashPad] = {};
  dns::lowerCopy(lower, name, name_length);
  const uint64_t name_hash = hashName(lower, name_length);
  Shard& sh = shardFor(name_hash);
  std::vector<std::shared_ptr<const void>> retired;
  {
    std::lock_guard<std::mutex> lock(sh.mutex);
    Table* t = sh.table.load(std::memory_order_relaxed);
    for (size_t i = 0; i < t->capacity(); ++i) {
      Entry* e = t->slots[i].load(std::memory_order_relaxed);
      if (!live(e) || e->name_hash != name_hash || e->name_length != name_length ||
          std::memcmp(e->name(), lower, name_length) != 0) {
        continue;
      }
      t->slots[i].store(kTombstone, std::memory_order_release);
      sh.entries.fetch_sub(1, std::memory_order_relaxed);
      sh.bytes.fetch_sub(e->size, std::memory_order_relaxed);
      retired.emplace_back(e, &destroyEntry);
    }
  }
  for (auto& r : retired) domain_->retire(std::move(r));
  return retired.size();
}

size_t Cache::flushAll() {
  size_t removed = 0;
  for (size_t s = 0; s < config_.shards; ++s) {
    Shard& sh = shards_[s];
    std::vector<std::shared_ptr<const void>> retired;
    {
      std::lock_guard<std::mutex> lock(sh.mutex);
      Table* t = sh.table.load(std::memory_order_relaxed);
      auto* next = new Table(kInitialSlots);
      sh.table.store(next, std::memory_order_release);
      for (size_t i = 0; i < t->capacity(); ++i) {
        Entry* e = t->slots[i].load(std::memory_order_relaxed);
        if (live(e)) retired.emplace_back(e, &destroyEntry);
      }
      removed += retired.size();
      retired.emplace_back(std::shared_ptr<const void>(t));
      sh.entries.store(0, std::memory_order_relaxed);
      sh.bytes.store(next->bytes(), std::memory_order_relaxed);
      sh.used = 0;
      sh.hand = 0;
    }
    for (auto& r : retired) domain_->retire(std::move(r));
  }
  return removed;
}

std::string Cache::dump(Seconds now, const DumpText& format) const {
  const TypeText type_text = format.type ? format.type : TypeText(genericType);
  const RdataText text = format.rdata ? format.rdata : RdataText(genericRdata);
  std::string out;
  for (size_t s = 0; s < config_.shards; ++s) {
    Shard& sh = shards_[s];
    std::lock_guard<std::mutex> lock(sh.mutex);
    const Table* t = sh.table.load(std::memory_order_relaxed);
    for (size_t i = 0; i < t->capacity(); ++i) {
      const Entry* e = t->slots[i].load(std::memory_order_relaxed);
      if (!live(e) || now >= e->expire + static_cast<Seconds>(config_.stale_ttl)) continue;
      const bool fresh = now < e->expire;
      out += dns::toText(e->name());
      out += ' ';
      out += std::to_string(fresh ? e->expire - now : 0);
      out += ' ';
      out += className(e->rrclass);
      // The RRs: records first; each is owner, fixed part, RDATA.
      std::string records;
      const uint8_t* p = e->data();
      for (size_t n = 0; n < e->records; ++n) {
        const uint16_t rdlength = dns::readU16(p + e->record_owner_length + 8);
        const uint8_t* rdata = p + e->record_owner_length + kRRFixed;
        if (n != 0) records += " | ";
        records += text(dns::readU16(p + e->record_owner_length), {rdata, rdlength});
        if (e->kind != Kind::kPositive)
          records = dns::toText(p) + ' ' + type_text(dns::rrtype::kSOA) + ' ' + records;
        p = rdata + rdlength;
      }
      switch (e->kind) {
        case Kind::kPositive:
          out += ' ' + type_text(e->type) + ' ' + records + " ;";
          break;
        case Kind::kNxdomain:
          out += " NXDOMAIN ; soa " + records;
          break;
        case Kind::kNodata:
          out += " NODATA " + type_text(e->type) + " ; soa " + records;
          break;
      }
      out += std::string(" rank=") + rankText(e->rank);
      if (e->rrsigs != 0) out += " rrsigs=" + std::to_string(e->rrsigs);
      if (!fresh) out += " stale";
      out += '\n';
    }
  }
  return out;
}

CacheStats Cache::stats() const {
  CacheStats s;
  for (size_t i = 0; i < config_.shards; ++i) {
    const Shard& sh = shards_[i];
    s.hits += sh.hits.load(std::memory_order_relaxed);
    s.misses += sh.misses.load(std::memory_order_relaxed);
    s.evictions += sh.evictions.load(std::memory_order_relaxed);
    s.entries += sh.entries.load(std::memory_order_relaxed);
    s.bytes += sh.bytes.load(std::memory_order_relaxed);
  }
  return s;
}

}  // namespace meridian::resolver
