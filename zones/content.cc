// ZoneContent: canonical ordering, lookup, REPLACE / delete of RRsets, the builder the zone-file
// loader feeds, and compilation into a serving Zone. Control thread only.
#include "zones/content.h"

#include <algorithm>
#include <cstring>

#include "zones/loader.h"
#include "zones/zone_builder.h"

namespace meridian::zones {
namespace {

// Start offsets of a trusted wire name's labels (root excluded); returns how many.
size_t labelOffsets(const uint8_t* name, uint8_t (&out)[dns::kMaxLabels]) {
  size_t n = 0;
  for (size_t p = 0; name[p] != 0; p += 1 + name[p]) out[n++] = static_cast<uint8_t>(p);
  return n;
}

// A canonical sort key of a name (RFC 4034 §6.1): its labels from the rightmost, each lowercased,
// octets 0x00 and 0x01 escaped as 0x01 0x01 and 0x01 0x02, and ended by 0x00. Comparing keys as
// octet strings orders names canonically (0x00 ends a label before any octet of a longer one;
// an ancestor's key is a prefix of its descendants').
void appendSortKey(const uint8_t* name, std::vector<uint8_t>& out) {
  uint8_t offsets[dns::kMaxLabels];
  const size_t n = labelOffsets(name, offsets);
  for (size_t k = n; k-- > 0;) {
    const uint8_t* l = name + offsets[k];
    for (size_t i = 1; i <= l[0]; ++i) {
      const uint8_t c = dns::asciiLower(l[i]);
      if (c <= 1) {
        out.push_back(1);
        out.push_back(static_cast<uint8_t>(c + 1));
      } else {
        out.push_back(c);
      }
    }
    out.push_back(0);
  }
}

constexpr size_t kMaxRRsetRecords = 0xFFFF;  // RRset::rr_count, ANCOUNT: 16 bits

// dup[k] is true when rdata[k] equals an earlier one. Small RRsets compare pairs; large ones (an
// RRset may hold tens of thousands of records) sort.
std::vector<bool> duplicates(const std::vector<std::string_view>& rdata) {
  std::vector<bool> dup(rdata.size(), false);
  constexpr size_t kPairwise = 16;  // up to here the pairs cost less than a sort
  if (rdata.size() <= kPairwise) {
    for (size_t k = 1; k < rdata.size(); ++k) {
      for (size_t j = 0; j < k && !dup[k]; ++j) dup[k] = rdata[j] == rdata[k];
    }
    return dup;
  }
  std::vector<uint32_t> order(rdata.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<uint32_t>(k);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return rdata[a] < rdata[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    if (rdata[order[k]] == rdata[order[k - 1]]) dup[order[k]] = true;
  }
  return dup;
}

std::string_view asText(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

// Offset of the serial inside an SOA RDATA, or 0 if the RDATA is not a well-formed SOA.
size_t soaSerialOffset(std::span<const uint8_t> rd) {
  size_t p = 0;
  for (int k = 0; k < 2; ++k) {
    while (p < rd.size() && rd[p] != 0) p += 1 + rd[p];
    if (p >= rd.size()) return 0;
    ++p;
  }
  return rd.size() == p + 20 ? p : 0;
}

}  // namespace

int canonicalCompare(const uint8_t* a, const uint8_t* b) {
  uint8_t ao[dns::kMaxLabels], bo[dns::kMaxLabels];
  const size_t an = labelOffsets(a, ao), bn = labelOffsets(b, bo);
  for (size_t i = 1; i <= an && i <= bn; ++i) {
    const uint8_t* la = a + ao[an - i];
    const uint8_t* lb = b + bo[bn - i];
    const size_t common = std::min(la[0], lb[0]);
    for (size_t k = 1; k <= common; ++k) {
      const uint8_t x = dns::asciiLower(la[k]), y = dns::asciiLower(lb[k]);
      if (x != y) return x < y ? -1 : 1;
    }
    if (la[0] != lb[0]) return la[0] < lb[0] ? -1 : 1;
  }
  if (an != bn) return an < bn ? -1 : 1;
  return 0;
}

// RRsetView

RRsetSpec ZoneContent::RRsetView::spec() const {
  RRsetSpec s;
  std::memcpy(s.owner.data, owner_, owner_length_);
  s.owner.length = owner_length_;
  s.type = type_;
  s.ttl = ttl_;
  s.rdata.reserve(count_);
  for (auto rd : rdata()) s.rdata.emplace_back(rd.begin(), rd.end());
  return s;
}

bool ZoneContent::RRsetView::sameAs(const RRsetView& o) const {
  return type_ == o.type_ && ttl_ == o.ttl_ && count_ == o.count_ &&
         owner_length_ == o.owner_length_ && rdata_size_ == o.rdata_size_ &&
         std::memcmp(owner_, o.owner_, owner_length_) == 0 &&
         std::memcmp(rdata_, o.rdata_, rdata_size_) == 0;
}

// ZoneContent

const dns::NameBuf& ZoneContent::rootName() {
  static const dns::NameBuf root = [] {
    dns::NameBuf n;
    n.data[0] = 0;
    n.length = 1;
    return n;
  }();
  return root;
}

ZoneContent::ZoneContent(const dns::NameBuf& apex) : apex_(apex) {
  dns::lowercase(apex_);
}

ZoneContent::RRsetView ZoneContent::view(const Entry& e) const {
  RRsetView v;
  v.owner_ = arena_.data() + e.owner;
  v.owner_length_ = e.owner_length;
  v.rdata_ = arena_.data() + e.rdata;
  v.rdata_size_ = e.rdata_size;
  v.ttl_ = e.ttl;
  v.type_ = e.type;
  v.count_ = e.count;
  return v;
}

ZoneContent::RRsetView ZoneContent::rrset(size_t i) const {
  return view(entries_[i]);
}

int ZoneContent::compareKey(const Entry& e, const uint8_t* owner, uint16_t type) const {
  const int c = canonicalCompare(arena_.data() + e.owner, owner);
  if (c != 0) return c;
  return e.type == type ? 0 : (e.type < type ? -1 : 1);
}

size_t ZoneContent::lowerBound(const uint8_t* owner, uint16_t type) const {
  size_t lo = 0, hi = entries_.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (compareKey(entries_[mid], owner, type) < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

std::optional<ZoneContent::RRsetView> ZoneContent::find(const uint8_t* owner, uint16_t type) const {
  const size_t i = lowerBound(owner, type);
  if (i == entries_.size() || compareKey(entries_[i], owner, type) != 0) return std::nullopt;
  return view(entries_[i]);
}

Result<ZoneContent::Entry> ZoneContent::store(const uint8_t* owner, size_t owner_length,
                                              uint16_t type, uint32_t ttl,
                                              std::span<const uint8_t> packed, uint16_t count,
                                              const Entry* reuse) {
  const bool share = reuse != nullptr && reuse->owner_length == owner_length &&
                     std::memcmp(arena_.data() + reuse->owner, owner, owner_length) == 0;
  const size_t need = (share ? 0 : owner_length) + packed.size();
  if (arena_.size() + need > 0xFFFFFFFFu) {
    return Error{"zone " + origin() + ": more than 4 GiB of record data"};
  }
  Entry e{};
  if (share) {
    e.owner = reuse->owner;
  } else {
    e.owner = static_cast<uint32_t>(arena_.size());
    arena_.insert(arena_.end(), owner, owner + owner_length);
  }
  e.owner_length = static_cast<uint8_t>(owner_length);
  e.rdata = static_cast<uint32_t>(arena_.size());
  arena_.insert(arena_.end(), packed.begin(), packed.end());
  e.rdata_size = static_cast<uint32_t>(packed.size());
  e.ttl = ttl;
  e.type = type;
  e.count = count;
  return e;
}

void ZoneContent::retire(const Entry& e) {
  // The owner may be shared with a neighbour: counted dead only with the RDATA, an estimate that
  // compaction (which recounts) corrects.
  dead_ += e.rdata_size;
  record_count_ -= e.count;
}

void ZoneContent::compactIfSparse() {
  // Below 64 KiB a dead arena costs nothing worth a copy.
  if (dead_ * 2 <= arena_.size() || arena_.size() < 65536) return;
  std::vector<uint8_t> arena;
  arena.reserve(arena_.size() - dead_);
  const Entry* prev = nullptr;
  for (Entry& e : entries_) {
    const uint8_t* owner = arena_.data() + e.owner;
    if (prev != nullptr && prev->owner_length == e.owner_length &&
        std::memcmp(arena.data() + prev->owner, owner, e.owner_length) == 0) {
      e.owner = prev->owner;
    } else {
      const auto at = static_cast<uint32_t>(arena.size());
      arena.insert(arena.end(), owner, owner + e.owner_length);
      e.owner = at;
    }
    const auto at = static_cast<uint32_t>(arena.size());
    arena.insert(arena.end(), arena_.begin() + e.rdata, arena_.begin() + e.rdata + e.rdata_size);
    e.rdata = at;
    prev = &e;
  }
  arena_ = std::move(arena);
  dead_ = 0;
}

Result<void> ZoneContent::replace(const RRsetSpec& rs) {
  if (rs.owner.length == 0 || dns::wireLength(rs.owner.data) != rs.owner.length) {
    return Error{"invalid owner name (not a wire-form name of its stated length)"};
  }
  dns::NameBuf lower = rs.owner;
  dns::lowercase(lower);
  const std::string name = dns::toText(rs.owner.data);
  if (!dns::isSubdomain(lower.data, lower.length, apex_.data, apex_.length)) {
    return Error{name + " is outside zone " + origin()};
  }
  if (rs.type == 0 || isMetaType(rs.type)) {
    return Error{"type " + std::to_string(rs.type) + " cannot appear in a zone"};
  }
  if (rs.ttl > 0x7FFFFFFFu) {
    return Error{"TTL " + std::to_string(rs.ttl) + " of " + name +
                 " is above 2147483647 (RFC 2181 \u00a78)"};
  }
  if (rs.rdata.size() > kMaxRRsetRecords) {
    return Error{"the RRset " + name + " has " + std::to_string(rs.rdata.size()) +
                 " records, more than 65535"};
  }
  std::vector<uint8_t> packed;
  std::vector<std::string_view> views;
  size_t total = 0;
  for (const auto& rd : rs.rdata) {
    if (rd.size() > maxRdataLength(rs.owner.length)) {
      return Error{"RDATA of " + std::to_string(rd.size()) + " octets at " + name +
                   " cannot fit in a DNS message"};
    }
    total += 2 + rd.size();
    views.push_back(asText(rd.data(), rd.size()));
  }
  packed.reserve(total);
  // Duplicates are served once (ZoneBuilder drops them too): keep the first.
  const std::vector<bool> dup = duplicates(views);
  uint16_t count = 0;
  for (size_t k = 0; k < rs.rdata.size(); ++k) {
    const auto& rd = rs.rdata[k];
    if (dup[k]) continue;
    packed.push_back(static_cast<uint8_t>(rd.size() >> 8));
    packed.push_back(static_cast<uint8_t>(rd.size()));
    packed.insert(packed.end(), rd.begin(), rd.end());
    ++count;
  }
  const size_t i = lowerBound(rs.owner.data, rs.type);
  const bool exists = i < entries_.size() && compareKey(entries_[i], rs.owner.data, rs.type) == 0;
  if (count == 0) {
    if (exists) remove(rs.owner.data, rs.type);
    return {};
  }
  // Share the owner octets with a neighbour of the same spelling.
  const Entry* reuse = exists ? &entries_[i] : (i > 0 ? &entries_[i - 1] : nullptr);
  if (!exists && reuse != nullptr && reuse->owner_length != rs.owner.length &&
      i < entries_.size()) {
    reuse = &entries_[i];
  }
  auto stored = store(rs.owner.data, rs.owner.length, rs.type, rs.ttl, packed, count, reuse);
  if (!stored) return stored.error();
  if (exists) {
    retire(entries_[i]);
    entries_[i] = *stored;
  } else {
    entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(i), *stored);
  }
  record_count_ += count;
  compactIfSparse();
  return {};
}

bool ZoneContent::remove(const uint8_t* owner, uint16_t type) {
  const size_t i = lowerBound(owner, type);
  if (i == entries_.size() || compareKey(entries_[i], owner, type) != 0) return false;
  retire(entries_[i]);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  compactIfSparse();
  return true;
}

Result<void> ZoneContent::append(const RRsetView& v) {
  if (!entries_.empty() && compareKey(entries_.back(), v.owner(), v.type()) >= 0) {
    return Error{"append: " + v.ownerText() + " does not sort after the last RRset"};
  }
  auto e = store(v.owner(), v.ownerLength(), v.type(), v.ttl(), v.packedRdata(),
                 static_cast<uint16_t>(v.size()), entries_.empty() ? nullptr : &entries_.back());
  if (!e) return e.error();
  entries_.push_back(*e);
  record_count_ += e->count;
  return {};
}

Result<void> ZoneContent::merge(const ZoneContent& removed, const ZoneContent& added) {
  std::vector<Entry> out;
  out.reserve(entries_.size() + added.entries_.size());
  size_t r = 0, a = 0;
  const size_t dead_before = dead_, records_before = record_count_;
  const size_t arena_before = arena_.size();
  auto put = [&](const Entry& src) -> Result<void> {
    const RRsetView v = added.view(src);
    auto e = store(v.owner(), v.ownerLength(), v.type(), v.ttl(), v.packedRdata(),
                   static_cast<uint16_t>(v.size()), out.empty() ? nullptr : &out.back());
    if (!e) return e.error();
    out.push_back(*e);
    record_count_ += e->count;
    return {};
  };
  auto undo = [&](const Error& err) -> Result<void> {
    arena_.resize(arena_before);
    dead_ = dead_before;
    record_count_ = records_before;
    return err;
  };
  for (const Entry& e : entries_) {
    while (a < added.entries_.size() && added.compareKey(added.entries_[a], *this, e) < 0) {
      if (auto ok = put(added.entries_[a++]); !ok) return undo(ok.error());
    }
    if (a < added.entries_.size() && added.compareKey(added.entries_[a], *this, e) == 0) {
      if (auto ok = put(added.entries_[a++]); !ok) return undo(ok.error());
      retire(e);
      continue;
    }
    while (r < removed.entries_.size() && removed.compareKey(removed.entries_[r], *this, e) < 0)
      ++r;
    if (r < removed.entries_.size() && removed.compareKey(removed.entries_[r], *this, e) == 0) {
      retire(e);
      continue;
    }
    out.push_back(e);
  }
  while (a < added.entries_.size()) {
    if (auto ok = put(added.entries_[a++]); !ok) return undo(ok.error());
  }
  entries_ = std::move(out);
  compactIfSparse();
  return {};
}

std::optional<uint32_t> ZoneContent::serial() const {
  auto soa = find(apex_.data, dns::rrtype::kSOA);
  if (!soa || soa->size() != 1) return std::nullopt;
  const auto rd = *soa->rdata().begin();
  const size_t at = soaSerialOffset(rd);
  if (at == 0) return std::nullopt;
  return dns::readU32(rd.data() + at);
}

Result<void> ZoneContent::setSerial(uint32_t serial) {
  const size_t i = lowerBound(apex_.data, dns::rrtype::kSOA);
  if (i == entries_.size() || compareKey(entries_[i], apex_.data, dns::rrtype::kSOA) != 0 ||
      entries_[i].count != 1) {
    return Error{"zone " + origin() + " has no SOA record at its apex"};
  }
  const Entry& e = entries_[i];
  uint8_t* rd = arena_.data() + e.rdata + 2;
  const size_t at = soaSerialOffset({rd, e.rdata_size - 2u});
  if (at == 0) return Error{"zone " + origin() + ": malformed SOA RDATA"};
  // In place: the RDATA octets belong to this entry alone (owners are shared, RDATA never).
  dns::writeU32(rd + at, serial);
  return {};
}

size_t ZoneContent::memoryBytes() const {
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) + sizeof(*this);
}

bool operator==(const ZoneContent& a, const ZoneContent& b) {
  if (std::memcmp(a.apex_.data, b.apex_.data, a.apex_.length) != 0 ||
      a.apex_.length != b.apex_.length || a.entries_.size() != b.entries_.size()) {
    return false;
  }
  for (size_t i = 0; i < a.entries_.size(); ++i) {
    if (!a.rrset(i).sameAs(b.rrset(i))) return false;
  }
  return true;
}

// Builder

ZoneContent::Builder::Builder(const dns::NameBuf& apex) : apex_(apex) {
  dns::lowercase(apex_);
}

void ZoneContent::Builder::add(const uint8_t* owner, uint16_t type, uint32_t ttl,
                               const uint8_t* rdata, size_t rdlen) {
  const size_t owner_length = dns::wireLength(owner);
  dns::NameBuf lower;
  std::memcpy(lower.data, owner, owner_length);
  lower.length = static_cast<uint8_t>(owner_length);
  dns::lowercase(lower);
  if (!dns::isSubdomain(lower.data, lower.length, apex_.data, apex_.length)) return;
  Pending p{};
  // Records of one owner usually follow each other: share its octets.
  if (!records_.empty() && records_.back().owner_length == owner_length &&
      std::memcmp(data_.data() + records_.back().owner, owner, owner_length) == 0) {
    p.owner = records_.back().owner;
  } else {
    p.owner = static_cast<uint32_t>(data_.size());
    data_.insert(data_.end(), owner, owner + owner_length);
  }
  p.owner_length = static_cast<uint8_t>(owner_length);
  p.rdata = static_cast<uint32_t>(data_.size());
  data_.insert(data_.end(), rdata, rdata + rdlen);
  p.rdlen = static_cast<uint16_t>(rdlen);
  p.type = type;
  p.ttl = ttl;
  p.seq = static_cast<uint32_t>(records_.size());
  records_.push_back(p);
}

ZoneContent ZoneContent::Builder::finish() {
  // Sort keys, one per run of records sharing an owner's octets.
  std::vector<uint8_t> keys;
  std::vector<std::pair<uint32_t, uint32_t>> key_of(records_.size());  // offset, length
  for (size_t i = 0; i < records_.size(); ++i) {
    if (i > 0 && records_[i].owner == records_[i - 1].owner) {
      key_of[i] = key_of[i - 1];
      continue;
    }
    const size_t at = keys.size();
    appendSortKey(data_.data() + records_[i].owner, keys);
    key_of[i] = {static_cast<uint32_t>(at), static_cast<uint32_t>(keys.size() - at)};
  }
  auto key = [&](size_t i) {
    return std::string_view(reinterpret_cast<const char*>(keys.data()) + key_of[i].first,
                            key_of[i].second);
  };
  std::vector<uint32_t> order(records_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const Pending& x = records_[a];
    const Pending& y = records_[b];
    if (x.owner != y.owner) {
      const int c = key(a).compare(key(b));
      if (c != 0) return c < 0;
    }
    if (x.type != y.type) return x.type < y.type;
    return x.seq < y.seq;
  });

  ZoneContent out(apex_);
  out.arena_.reserve(data_.size() + 2 * records_.size());
  std::vector<uint8_t> packed;
  std::vector<std::string_view> seen;  // RDATAs of the RRset so far, for duplicates
  for (size_t i = 0; i < order.size();) {
    const Pending& first = records_[order[i]];
    size_t end = i + 1;
    while (end < order.size() && records_[order[end]].type == first.type &&
           key(order[end]) == key(order[i])) {
      ++end;
    }
    packed.clear();
    seen.clear();
    for (size_t k = i; k < end; ++k) {
      const Pending& r = records_[order[k]];
      seen.push_back(asText(data_.data() + r.rdata, r.rdlen));
    }
    const std::vector<bool> dup = duplicates(seen);
    uint16_t count = 0;
    for (size_t k = i; k < end; ++k) {
      const Pending& r = records_[order[k]];
      const std::string_view rd = seen[k - i];
      if (dup[k - i]) continue;
      if (count == kMaxRRsetRecords) break;  // ZoneBuilder refuses such an RRset anyway
      packed.push_back(static_cast<uint8_t>(r.rdlen >> 8));
      packed.push_back(static_cast<uint8_t>(r.rdlen));
      packed.insert(packed.end(), rd.begin(), rd.end());
      ++count;
    }
    const Entry* prev = out.entries_.empty() ? nullptr : &out.entries_.back();
    auto e = out.store(data_.data() + first.owner, first.owner_length, first.type, first.ttl,
                       packed, count, prev);
    if (e) {
      out.entries_.push_back(*e);
      out.record_count_ += count;
    }
    i = end;
  }
  records_ = {};
  data_ = {};
  return out;
}

// Loading and compiling

namespace {

class ContentObserver final : public RecordObserver {
 public:
  explicit ContentObserver(const dns::NameBuf& apex) : builder(apex) {}
  void record(const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata,
              size_t rdlen) override {
    builder.add(owner, type, ttl, rdata, rdlen);
  }
  ZoneContent::Builder builder;
};

Result<dns::NameBuf> apexOf(const std::string& origin) {
  dns::NameBuf apex;
  if (!dns::fromText(origin.empty() || origin.back() != '.' ? origin + "." : origin, apex)) {
    return Error{"invalid zone name '" + origin + "'"};
  }
  return apex;
}

template <typename Load>
Result<LoadedContent> loadContent(const std::string& origin, Load&& load) {
  auto apex = apexOf(origin);
  if (!apex) return apex.error();
  ContentObserver observer(*apex);
  auto loaded = load(observer);
  if (!loaded) return loaded.error();
  return LoadedContent{observer.builder.finish(), std::move(*loaded)};
}

}  // namespace

Result<LoadedContent> loadZoneContentFile(const std::string& origin, const std::string& path) {
  return loadContent(origin, [&](RecordObserver& o) { return loadZoneFile(origin, path, o); });
}

Result<LoadedContent> loadZoneContentText(const std::string& origin, const std::string& text,
                                          const std::string& label) {
  return loadContent(origin,
                     [&](RecordObserver& o) { return loadZoneText(origin, text, label, o); });
}

Result<std::shared_ptr<const Zone>> buildZone(const ZoneContent& content,
                                              std::vector<std::string>& warnings,
                                              const std::string& label) {
  const std::string source = label.empty() ? "zone " + content.origin() : label;
  ZoneBuilder builder(content.apex(), source);
  for (size_t i = 0; i < content.rrsetCount(); ++i) {
    const auto rs = content.rrset(i);
    for (auto rd : rs.rdata()) {
      // Line 0: messages name the source alone (there is no file line to point at).
      builder.add(rs.owner(), rs.type(), dns::rrclass::kIN, rs.ttl(), rd.data(), rd.size(), source,
                  0);
    }
  }
  return builder.build(warnings);
}

}  // namespace meridian::zones
