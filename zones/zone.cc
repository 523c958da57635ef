#include "zones/zone.h"

#include <algorithm>
#include <cstring>

namespace meridian::zones {

namespace {

uint64_t loadBigEndian64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

// memcmp's sign for two names of `len` octets whose first `from` octets are equal (the key's 15),
// compared 8 octets at a time as big-endian words; the last word overlaps the previous one (equal
// octets compare equal again).
int compareFrom(const uint8_t* a, const uint8_t* b, size_t len, size_t from) {
  size_t i = from;
  for (; i + 8 <= len; i += 8) {
    const uint64_t x = loadBigEndian64(a + i);
    const uint64_t y = loadBigEndian64(b + i);
    if (x != y) return x < y ? -1 : 1;
  }
  if (i < len) {
    const uint64_t x = loadBigEndian64(a + len - 8);
    const uint64_t y = loadBigEndian64(b + len - 8);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

constexpr size_t kKeyOctets = 15;

}  // namespace

// A fixed 16-octet copy of the name's length and head (not a hash: the key orders names).
Zone::IndexKey Zone::makeKey(const uint8_t* name, size_t length) {
  uint8_t buf[16] = {};
  buf[0] = static_cast<uint8_t>(length);
  std::memcpy(buf + 1, name, std::min(length, kKeyOctets));
  return {loadBigEndian64(buf), loadBigEndian64(buf + 8)};
}

void Zone::buildIndex() {
  const size_t n = nodes_.size();
  index_.assign((n + 1 + 3) / 4, IndexBlock{});
  index_nodes_.assign(n + 1, kNone);
  // An in-order walk of the implicit tree visits its positions in sorted order.
  uint32_t next = 0;
  auto fill = [&](auto&& self, size_t k) -> void {
    if (k > n) return;
    self(self, 2 * k);
    const Node& node = nodes_[next];
    index_[k / 4].key[k % 4] = makeKey(names_.data() + node.name_offset, node.name_length);
    index_nodes_[k] = next++;
    self(self, 2 * k + 1);
  };
  fill(fill, 1);
}

uint32_t Zone::find(const uint8_t* name, size_t length) const {
  const IndexKey key = makeKey(name, length);
  const IndexKey* keys = index_.data()->key;
  const uint32_t* nodes = index_nodes_.data();
  const size_t n = index_nodes_.size() - 1;
  // Prefetch addresses are computed as integers: past the last level they point beyond the array,
  // which a prefetch may do (it never faults) but pointer arithmetic may not.
  const uintptr_t base = reinterpret_cast<uintptr_t>(keys);
  size_t k = 1;
  while (k <= n) {
    // Position k's descendants four levels down are 16k .. 16k+15: four cache lines.
    const uintptr_t ahead = base + 16 * k * sizeof(IndexKey);
    __builtin_prefetch(reinterpret_cast<const void*>(ahead));
    __builtin_prefetch(reinterpret_cast<const void*>(ahead + 64));
    __builtin_prefetch(reinterpret_cast<const void*>(ahead + 128));
    __builtin_prefetch(reinterpret_cast<const void*>(ahead + 192));
    const IndexKey& e = keys[k];
    int c;
    if (e.hi != key.hi) {
      c = e.hi < key.hi ? -1 : 1;
    } else if (e.lo != key.lo) {
      c = e.lo < key.lo ? -1 : 1;
    } else if (length <= kKeyOctets) {
      return nodes[k];
    } else {
      const Node& node = nodes_[nodes[k]];
      c = compareFrom(names_.data() + node.name_offset, name, length, kKeyOctets);
      if (c == 0) return nodes[k];
    }
    k = 2 * k + (c < 0 ? 1 : 0);
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
