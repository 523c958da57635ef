// The editable content of one zone: its RRsets in canonical DNS order (RFC 4034 §6.1: names
// compared label by label from the right, case-insensitively; then type), each with its owner name
// as written (case kept for output, compared case-insensitively), its TTL and its RDATA in wire
// form, in the order they were given (the order the serving zone answers with). Class IN only.
//
// This is the layer that changes: API edits (replace / delete an RRset), a reloaded zone file and,
// later, zone transfers turn into ZoneDiffs (diff.h) between two contents; the immutable serving
// Zone is compiled from a content by buildZone() (ZoneBuilder, the same checks as a zone file).
// Control thread only; a ZoneContent is a value (copyable), never read by DNS workers.
//
// Storage is compact: one arena of octets (owners and length-prefixed RDATA) and one vector of
// 24-octet RRset entries sorted canonically; no allocation per record. Edits append to the arena
// and leave the old octets dead; the arena is compacted when more than half of it is dead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "dns/name.h"
#include "zones/loader.h"
#include "zones/zone.h"

namespace meridian::zones {

// RFC 4034 §6.1 canonical order of two trusted uncompressed wire names: <0, 0, >0. Labels compared
// from the rightmost, as octet strings with ASCII letters lowercased, a label that is a prefix of
// another sorting first; a name sorts before its descendants.
[[nodiscard]] int canonicalCompare(const uint8_t* a, const uint8_t* b);

// An RRset given to ZoneContent::replace() (an API request, a parsed record): owned, not compact.
struct RRsetSpec {
  dns::NameBuf owner;  // uncompressed wire form, as written (case kept)
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::vector<std::vector<uint8_t>> rdata;  // uncompressed RDATA, in serving order
};

class ZoneContent {
 public:
  // One RRset, read in place (valid until the content is next changed).
  class RRsetView {
   public:
    [[nodiscard]] const uint8_t* owner() const { return owner_; }  // wire form, as written
    [[nodiscard]] size_t ownerLength() const { return owner_length_; }
    [[nodiscard]] std::string ownerText() const { return dns::toText(owner_); }
    [[nodiscard]] uint16_t type() const { return type_; }
    [[nodiscard]] uint32_t ttl() const { return ttl_; }
    [[nodiscard]] size_t size() const { return count_; }  // records

    // The RDATAs, in order: for (auto rd : view.rdata()) ... rd is a span of octets.
    class Iterator {
     public:
      std::span<const uint8_t> operator*() const { return {p_ + 2, length()}; }
      Iterator& operator++() {
        p_ += 2 + length();
        return *this;
      }
      bool operator!=(const Iterator& o) const { return p_ != o.p_; }
      bool operator==(const Iterator& o) const { return p_ == o.p_; }

     private:
      friend class RRsetView;
      explicit Iterator(const uint8_t* p) : p_(p) {}
      [[nodiscard]] size_t length() const { return static_cast<size_t>(p_[0] << 8 | p_[1]); }
      const uint8_t* p_;
    };
    struct Range {
      Iterator b, e;
      [[nodiscard]] Iterator begin() const { return b; }
      [[nodiscard]] Iterator end() const { return e; }
    };
    [[nodiscard]] Range rdata() const { return {Iterator(rdata_), Iterator(rdata_ + rdata_size_)}; }
    // The length-prefixed RDATA sequence (2-octet length, octets; repeated), as stored.
    [[nodiscard]] std::span<const uint8_t> packedRdata() const { return {rdata_, rdata_size_}; }
    // A copy that replace() accepts.
    [[nodiscard]] RRsetSpec spec() const;

    // Same owner (exact octets), type, TTL and RDATA sequence.
    [[nodiscard]] bool sameAs(const RRsetView& o) const;

   private:
    friend class ZoneContent;
    const uint8_t* owner_ = nullptr;
    const uint8_t* rdata_ = nullptr;
    size_t rdata_size_ = 0;
    uint32_t ttl_ = 0;
    uint16_t type_ = 0;
    uint16_t count_ = 0;
    uint8_t owner_length_ = 0;
  };

  // An empty content of the zone `apex` (absolute presentation or wire via NameBuf).
  explicit ZoneContent(const dns::NameBuf& apex);
  ZoneContent() : ZoneContent(rootName()) {}

  // The apex, lowercase wire form, and as text ("example.com.").
  [[nodiscard]] const dns::NameBuf& apex() const { return apex_; }
  [[nodiscard]] std::string origin() const { return dns::toText(apex_.data); }

  [[nodiscard]] size_t rrsetCount() const { return entries_.size(); }
  [[nodiscard]] size_t recordCount() const { return record_count_; }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  // The i-th RRset in canonical order (i < rrsetCount()).
  [[nodiscard]] RRsetView rrset(size_t i) const;

  // The RRset owner+type (owner compared case-insensitively), if present.
  [[nodiscard]] std::optional<RRsetView> find(const uint8_t* owner, uint16_t type) const;
  // Index of the first RRset whose owner is >= `owner` canonically (rrsetCount() if none).
  [[nodiscard]] size_t lowerBound(const uint8_t* owner, uint16_t type = 0) const;

  // PowerDNS REPLACE: all records of owner+type become `rrset`'s (its owner spelling and TTL
  // included); an empty rdata list deletes the RRset. Duplicate RDATAs are kept once (the first).
  // Refused, changing nothing: an owner outside the zone, a meta type (OPT, ANY, AXFR, ...), an
  // RDATA that cannot fit a DNS message, more than 65535 records. The zone-level rules (CNAME
  // beside other data, SOA and NS at the apex, ...) are buildZone()'s.
  [[nodiscard]] Result<void> replace(const RRsetSpec& rrset);
  // Deletes owner+type; false if there was no such RRset.
  bool remove(const uint8_t* owner, uint16_t type);
  // Adds a copy of an RRset of another content that sorts after every RRset of this one (copying
  // a content's RRsets in order); refused otherwise.
  [[nodiscard]] Result<void> append(const RRsetView& rrset);
  // Many edits in one pass over the content: every owner+type of `removed` is deleted (whatever
  // its data), then every RRset of `added` is put in (replacing owner+type). Both must have this
  // apex. No checks of the data beyond replace()'s (apply() in diff.h checks the diff first).
  [[nodiscard]] Result<void> merge(const ZoneContent& removed, const ZoneContent& added);

  // The apex SOA's serial (RFC 1035 §3.3.13), if the content has a well-formed SOA at the apex.
  [[nodiscard]] std::optional<uint32_t> serial() const;
  // Rewrites the apex SOA's serial; an error if there is no (well-formed) SOA.
  [[nodiscard]] Result<void> setSerial(uint32_t serial);

  // Octets held (arena, entries), for the bytes-per-record figure and metrics.
  [[nodiscard]] size_t memoryBytes() const;

  // Same apex and the same RRsets (RRsetView::sameAs), in the same order.
  friend bool operator==(const ZoneContent& a, const ZoneContent& b);

  // Appends records one at a time (the zone-file loader, zone transfers), in any order; finish()
  // sorts them canonically, groups RRsets (the first record's TTL and owner spelling, duplicates
  // dropped, as ZoneBuilder does) and yields the content. Records outside the apex are ignored (the
  // builder that checks the same records warns about them).
  class Builder {
   public:
    explicit Builder(const dns::NameBuf& apex);
    void add(const uint8_t* owner, uint16_t type, uint32_t ttl, const uint8_t* rdata, size_t rdlen);
    [[nodiscard]] ZoneContent finish();

   private:
    struct Pending {
      uint32_t owner;  // offset in data_
      uint32_t rdata;  // offset in data_
      uint32_t ttl;
      uint32_t seq;
      uint16_t rdlen;
      uint16_t type;
      uint8_t owner_length;
    };
    dns::NameBuf apex_;
    std::vector<Pending> records_;
    std::vector<uint8_t> data_;
  };

 private:
  struct Entry {
    uint32_t owner;       // arena_ offset of the owner (wire, as written)
    uint32_t rdata;       // arena_ offset of the packed RDATA (2-octet length, octets; ...)
    uint32_t rdata_size;  // octets of the packed RDATA
    uint32_t ttl;
    uint16_t type;
    uint16_t count;
    uint8_t owner_length;
  };
  static_assert(sizeof(Entry) == 24);

  static const dns::NameBuf& rootName();
  [[nodiscard]] RRsetView view(const Entry& e) const;
  [[nodiscard]] int compareKey(const Entry& e, const uint8_t* owner, uint16_t type) const;
  [[nodiscard]] int compareKey(const Entry& e, const ZoneContent& other, const Entry& o) const {
    return compareKey(e, other.arena_.data() + o.owner, o.type);
  }
  // Copies `owner` and the packed RDATA into the arena; the owner of `reuse` is shared when equal.
  [[nodiscard]] Result<Entry> store(const uint8_t* owner, size_t owner_length, uint16_t type,
                                    uint32_t ttl, std::span<const uint8_t> packed, uint16_t count,
                                    const Entry* reuse);
  void retire(const Entry& e);
  void compactIfSparse();

  dns::NameBuf apex_;  // lowercase
  std::vector<uint8_t> arena_;
  std::vector<Entry> entries_;  // canonical order, unique owner+type
  size_t record_count_ = 0;
  size_t dead_ = 0;  // arena_ octets no entry refers to
};

struct LoadedContent {
  ZoneContent content;
  LoadedZone loaded;  // the serving zone built from the same records, warnings, $INCLUDEd files
};

// A zone file read into a content and, in the same pass, its serving Zone (the loader's usual
// checks and messages, file:line; the plain loadZoneFile() is unchanged and not slower).
[[nodiscard]] Result<LoadedContent> loadZoneContentFile(const std::string& origin,
                                                        const std::string& path);
[[nodiscard]] Result<LoadedContent> loadZoneContentText(const std::string& origin,
                                                        const std::string& text,
                                                        const std::string& label = "<text>");

// The serving Zone compiled from a content through ZoneBuilder: the same checks as a zone file
// (messages read "<label>: ..." instead of "file:line: ..."), the same digest as the file the
// content was read from. `warnings` receives the builder's warnings.
[[nodiscard]] Result<std::shared_ptr<const Zone>> buildZone(const ZoneContent& content,
                                                            std::vector<std::string>& warnings,
                                                            const std::string& label = {});

}  // namespace meridian::zones
