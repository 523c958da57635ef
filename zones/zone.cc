#include "zones/zone.h"

#include <algorithm>

namespace meridian::zones {

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
      c = length <= 8 ? 0 : std::memcmp(names_.data() + n.name_offset + 8, name + 8, length - 8);
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
}

const Zone* ZoneSet::findZone(const dns::NameBuf& name, bool skip_exact) const {
  for (size_t label = skip_exact ? 1 : 0; label <= name.label_count; ++label) {
    const uint8_t* suffix =
        label == name.label_count ? name.data + name.length - 1 : name.suffix(label);
    const size_t suffix_len = label == name.label_count ? 1 : name.suffixLength(label);
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
