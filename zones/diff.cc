// diff() walks two canonically sorted contents side by side; apply() checks the whole diff against
// the content before it changes anything, then merges it in one pass. Control thread only.
#include "zones/diff.h"

#include <string>

#include "zones/writer.h"

namespace meridian::zones {
namespace {

// owner+type order of two RRsets, possibly of different contents.
int compareRRsets(const ZoneContent::RRsetView& x, const ZoneContent::RRsetView& y) {
  const int c = canonicalCompare(x.owner(), y.owner());
  if (c != 0) return c;
  return x.type() == y.type() ? 0 : (x.type() < y.type() ? -1 : 1);
}

std::string describe(const ZoneContent::RRsetView& v) {
  return v.ownerText() + " " + typeToText(v.type());
}

// Copies one RRset into a diff's list (the walk below visits RRsets in canonical order).
void copyInto(ZoneContent& into, const ZoneContent::RRsetView& v) {
  // Only refused past 4 GiB of record data, which the source content could not hold either.
  (void)into.append(v);
}

}  // namespace

ZoneDiff diff(const ZoneContent& a, const ZoneContent& b) {
  ZoneDiff d{a.serial().value_or(0), b.serial().value_or(0), ZoneContent(a.apex()),
             ZoneContent(a.apex())};
  size_t i = 0, j = 0;
  while (i < a.rrsetCount() || j < b.rrsetCount()) {
    const int c = i == a.rrsetCount()   ? 1
                  : j == b.rrsetCount() ? -1
                                        : compareRRsets(a.rrset(i), b.rrset(j));
    if (c < 0) {
      copyInto(d.removed, a.rrset(i++));
    } else if (c > 0) {
      copyInto(d.added, b.rrset(j++));
    } else {
      if (!a.rrset(i).sameAs(b.rrset(j))) {
        copyInto(d.removed, a.rrset(i));
        copyInto(d.added, b.rrset(j));
      }
      ++i;
      ++j;
    }
  }
  return d;
}

Result<void> apply(ZoneContent& content, const ZoneDiff& d) {
  const std::string zone = "zone " + content.origin();
  if (!dns::equalNames(content.apex().data, d.removed.apex().data) ||
      !dns::equalNames(content.apex().data, d.added.apex().data)) {
    return Error{"the change is for zone " + d.added.origin() + ", not " + content.origin()};
  }
  const uint32_t serial = content.serial().value_or(0);
  if (serial != d.old_serial) {
    return Error{"the change applies to serial " + std::to_string(d.old_serial) + " but " + zone +
                 " is at serial " + std::to_string(serial)};
  }
  for (size_t k = 0; k < d.removed.rrsetCount(); ++k) {
    const auto want = d.removed.rrset(k);
    const auto have = content.find(want.owner(), want.type());
    if (!have) {
      return Error{"the change removes " + describe(want) + ", which " + zone + " does not have"};
    }
    if (!have->sameAs(want)) {
      return Error{"the change removes " + describe(want) + ", which differs in " + zone +
                   " from what the change expects"};
    }
  }
  for (size_t k = 0; k < d.added.rrsetCount(); ++k) {
    const auto add = d.added.rrset(k);
    if (content.find(add.owner(), add.type()) && !d.removed.find(add.owner(), add.type())) {
      return Error{"the change adds " + describe(add) + ", which " + zone +
                   " already has (and the change does not remove)"};
    }
  }
  return content.merge(d.removed, d.added);
}

}  // namespace meridian::zones
