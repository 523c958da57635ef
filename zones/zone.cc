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

// memcmp's sign for two names of `len` octets whose first 8 (the key) are equal, compared 8
// octets at a time as big-endian words; the last word overlaps the previous one (equal octets
// compare equal again). The names in a zone often share their first 8 octets ("\x09host123"),
// so the last steps of every search come here: inline words instead of a memcmp call each.
int compareAfterKey(const uint8_t* a, const uint8_t* b, size_t len) {
  if (len <= 8) return 0;
  size_t i = 8;
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

}  // namespace

uint32_t Zone::find(const uint8_t* name, size_t length) const {
  const uint64_t key = nameKey(name, length);
  size_t lo = 0;
  size_t hi = nodes_.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const Node& n = nodes_[mid];
    int c;
    if (n.name_length != length) {
      c = n.name_length < length ? -1 : 1;
    } else if (n.key != key) {
      c = n.key < key ? -1 : 1;
    } else {
      c = compareAfterKey(names_.data() + n.name_offset, name, length);
    }
    if (c == 0) return static_cast<uint32_t>(mid);
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
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
