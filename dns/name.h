// Domain names in wire form (RFC 1035 §3.1): parsing from untrusted packets (with compression
// pointers, RFC 1035 §4.1.4), lowercase canonical copies, and presentation-format text.
//
// A parsed name lives in a caller-owned fixed buffer (NameBuf), so parsing never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "dns/wire.h"

namespace meridian::dns {

// An uncompressed wire-format name with its label offsets; fixed size, no allocation.
struct NameBuf {
  uint8_t data[kMaxNameLength];
  uint8_t length = 0;       // total octets including the root label
  uint8_t label_count = 0;  // labels excluding the root
  uint8_t label_offset[kMaxLabels];

  [[nodiscard]] const uint8_t* suffix(size_t label) const { return data + label_offset[label]; }
  [[nodiscard]] size_t suffixLength(size_t label) const { return length - label_offset[label]; }
};

enum class NameStatus { kOk, kTruncated, kBadLabel, kTooLong, kPointerLoop };

// Parses the name at packet[pos]; on success *end is the offset just past the name as it appears at
// pos (after the first pointer, if any). Pointers must point strictly backwards, which rules out
// loops.
[[nodiscard]] NameStatus parseName(const uint8_t* packet, size_t size, size_t pos, NameBuf& out,
                                   size_t* end);

// Skips a (possibly compressed) name without copying it; same checks as parseName.
[[nodiscard]] NameStatus skipName(const uint8_t* packet, size_t size, size_t pos, size_t* end);

// Lowercases ASCII letters in place (labels' length octets are < 64 so they are never touched).
void lowercase(NameBuf& name);

// dst[0, n) = src[0, n) with ASCII letters lowercased, eight octets at a time (the query path
// lowercases every question name). dst and src may be the same buffer.
void lowerCopy(uint8_t* dst, const uint8_t* src, size_t n);

// Length of an uncompressed wire name starting at p (trusted data), including the root label.
[[nodiscard]] size_t wireLength(const uint8_t* p);

// Presentation format with a trailing dot; escapes as RFC 1035 §5.1 / RFC 4343.
[[nodiscard]] std::string toText(const uint8_t* wire);

// Parses presentation format (absolute, or relative to origin when origin is non-empty and the name
// has no trailing dot). Returns false on a syntax error.
[[nodiscard]] bool fromText(std::string_view text, NameBuf& out, const NameBuf* origin = nullptr);

// Case-insensitive equality of two trusted uncompressed wire names.
[[nodiscard]] bool equalNames(const uint8_t* a, const uint8_t* b);

// Is `name` equal to or below `apex`? Both trusted, uncompressed, lowercase.
[[nodiscard]] bool isSubdomain(const uint8_t* name, size_t name_len, const uint8_t* apex,
                               size_t apex_len);

// Is `name` equal to or below `zone`, letter case ignored? The bailiwick test on names as parsed
// from a response (parseName keeps the sender's case); label boundaries come from the NameBufs.
[[nodiscard]] bool isAtOrBelow(const NameBuf& name, const NameBuf& zone);

// Order of names in sorted tables (zones, zone sets, services): any total order works for exact
// matching; comparing lengths first makes most comparisons a single integer compare. Equivalent to
// ordering by (length, octets).
[[nodiscard]] inline int compareNames(const uint8_t* a, size_t alen, const uint8_t* b,
                                      size_t blen) {
  if (alen != blen) return alen < blen ? -1 : 1;
  return std::memcmp(a, b, alen);
}

}  // namespace meridian::dns
