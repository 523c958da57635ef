#include "zones/zone.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace meridian::zones {

namespace {

// GCC and Clang's 128-bit integer (one MUL on x86-64 and AArch64); __extension__ keeps -Wpedantic
// quiet.
__extension__ using Uint128 = unsigned __int128;

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 128-bit product of a and b, its halves xored: every output bit depends on every input bit.
// It is 0 when either factor is 0, which is why every factor below is masked with a secret key
// (or the running hash): an input word equal to a key is as hard to hit as the key to guess.
uint64_t fold(uint64_t a, uint64_t b) {
  const Uint128 p = static_cast<Uint128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

// splitmix64's finaliser: spreads a seed into the two hash keys.
uint64_t mixSeed(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Equality of two names of `len` octets, 8 octets at a time; the last word overlaps the previous
// one (equal octets compare equal again), so no octet past `len` is read.
bool sameOctets(const uint8_t* a, const uint8_t* b, size_t len) {
  if (len >= 8) {
    for (size_t i = 0; i + 8 < len; i += 8) {
      if (load64(a + i) != load64(b + i)) return false;
    }
    return load64(a + len - 8) == load64(b + len - 8);
  }
  if (len >= 4) {
    return load32(a) == load32(b) && load32(a + len - 4) == load32(b + len - 4);
  }
  for (size_t i = 0; i < len; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// The slot a hash starts probing at: the high bits of h scaled to the table size (no modulo, and
// the table need not be a power of two, so it holds exactly 2 slots per node).
size_t homeSlot(uint64_t h, size_t slots) {
  return static_cast<size_t>((static_cast<Uint128>(h) * slots) >> 64);
}

// The name's 64-bit hash under a zone's keys, word-at-a-time over the wire name: 16 octets per
// multiplication; the last 1..16 octets as two words that may overlap (the length, mixed in first,
// tells such names apart).
uint64_t hashName(const uint64_t (&key)[2], const uint8_t* name, size_t length) {
  const uint64_t k0 = key[0], k1 = key[1];
  uint64_t h = k0 ^ length;
  size_t n = length;
  for (; n > 16; name += 16, n -= 16) h = fold(load64(name) ^ k1, load64(name + 8) ^ h);
  uint64_t a = 0, b = 0;
  if (n > 8) {
    a = load64(name);
    b = load64(name + n - 8);
  } else if (n >= 4) {
    a = load32(name);
    b = load32(name + n - 4);
  } else if (n > 0) {
    a = name[0] | (uint64_t{name[n / 2]} << 8) | (uint64_t{name[n - 1]} << 16);
  }
  return fold(a ^ k1, b ^ h);
}

}  // namespace

void Zone::buildIndex() {
  std::random_device random;
  buildIndex((uint64_t{random()} << 32) | random(), 0xFFFFFFFFu);
}

void Zone::rebuildIndexForTesting(uint64_t seed, uint32_t tag_mask) {
  buildIndex(seed, tag_mask);
}

void Zone::buildIndex(uint64_t seed, uint32_t tag_mask) {
  seed_ = seed;
  hash_key_[0] = mixSeed(seed);
  hash_key_[1] = mixSeed(seed + 0x9E3779B97F4A7C15ull);
  tag_mask_ = tag_mask;
  const size_t slots = std::max<size_t>(2 * nodes_.size(), 1);
  index_.assign(slots, Slot{});
  // The slots are written in random order: each node's home slot is prefetched kAhead nodes early
  // (a 1M-record zone's table is 9 MB, beyond the caches; 80 -> 27 ms for 574k nodes, measured
  // once).
  constexpr uint32_t kAhead = 16;
  const uint32_t n = static_cast<uint32_t>(nodes_.size());
  uint64_t hashes[kAhead];
  auto hashOf = [this](uint32_t i) {
    return hashName(hash_key_, names_.data() + nodes_[i].name_offset, nodes_[i].name_length);
  };
  for (uint32_t i = 0; i < std::min(n, kAhead); ++i) {
    hashes[i] = hashOf(i);
    __builtin_prefetch(&index_[homeSlot(hashes[i], slots)], 1);
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t h = hashes[i % kAhead];
    if (i + kAhead < n) {
      hashes[i % kAhead] = hashOf(i + kAhead);
      __builtin_prefetch(&index_[homeSlot(hashes[i % kAhead], slots)], 1);
    }
    size_t k = homeSlot(h, slots);
    while (index_[k].node != kNone) k = k + 1 == slots ? 0 : k + 1;
    index_[k] = {static_cast<uint32_t>(h) & tag_mask, i};
  }
}

uint32_t Zone::find(const uint8_t* name, size_t length) const {
  const uint64_t h = hashName(hash_key_, name, length);
  const uint32_t tag = static_cast<uint32_t>(h) & tag_mask_;
  const Slot* slots = index_.data();
  const size_t count = index_.size();
  size_t k = homeSlot(h, count);
  // At most half the slots are used, so an empty one ends the probe; the bound is the table.
  for (size_t probes = 0; probes < count; ++probes) {
    const Slot s = slots[k];
    if (s.node == kNone) return kNone;
    if (s.tag == tag) {
      const Node& node = nodes_[s.node];
      if (node.name_length == length) {
        // Equal lengths, so the name's last (length - relative_length) octets are the apex's
        // length: compare them with the apex's copy, and the rest with the node's inline octets.
        const size_t rel = node.relative_length;
        const bool same = rel == Node::kNotInline
                              ? sameOctets(names_.data() + node.name_offset, name, length)
                              : sameOctets(node.relative, name, rel) &&
                                    sameOctets(apex_copy_, name + rel, length - rel);
        if (same) return s.node;
      }
    }
    k = k + 1 == count ? 0 : k + 1;
  }
  return kNone;
}

ZoneSet::ZoneSet(std::vector<std::shared_ptr<const Zone>> zones) : zones_(std::move(zones)) {
  std::sort(zones_.begin(), zones_.end(), [](const auto& a, const auto& b) {
    return compareNames(a->apex(), a->apexLength(), b->apex(), b->apexLength()) < 0;
  });
  for (const auto& z : zones_) longest_apex_ = std::max(longest_apex_, z->apexLength());
}

const Zone* ZoneSet::findZone(const dns::NameBuf& name, bool skip_exact) const {
  for (size_t label = skip_exact ? 1 : 0; label <= name.label_count; ++label) {
    const uint8_t* suffix =
        label == name.label_count ? name.data + name.length - 1 : name.suffix(label);
    const size_t suffix_len = label == name.label_count ? 1 : name.suffixLength(label);
    if (suffix_len > longest_apex_) continue;  // longer than every apex: no search needed
    auto it = std::lower_bound(
        zones_.begin(), zones_.end(), 0, [&](const std::shared_ptr<const Zone>& z, int) {
          return compareNames(z->apex(), z->apexLength(), suffix, suffix_len) < 0;
        });
    if (it != zones_.end() &&
        compareNames((*it)->apex(), (*it)->apexLength(), suffix, suffix_len) == 0) {
      return it->get();
    }
  }
  return nullptr;
}

const Zone* ZoneSet::findZone(const uint8_t* name, size_t len) const {
  while (len > longest_apex_) {  // longer than every apex: strip labels without searching
    const size_t step = 1u + name[0];
    name += step;
    len -= step;
  }
  for (;;) {
    auto it = std::lower_bound(zones_.begin(), zones_.end(), 0,
                               [&](const std::shared_ptr<const Zone>& z, int) {
                                 return compareNames(z->apex(), z->apexLength(), name, len) < 0;
                               });
    if (it != zones_.end() && compareNames((*it)->apex(), (*it)->apexLength(), name, len) == 0) {
      return it->get();
    }
    if (len <= 1) return nullptr;
    const size_t step = 1u + name[0];
    name += step;
    len -= step;
  }
}

}  // namespace meridian::zones
