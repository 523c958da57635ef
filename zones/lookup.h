// The authoritative answer (RFC 1034 §4.3.2 with RFC 2308 negative answers, RFC 4592 wildcards,
// RFC 8482 minimal ANY): given a zone snapshot and a parsed query, writes the answer, authority and
// additional sections. Runs on worker threads, per query: no allocation, no locks, no exceptions.
#pragma once

#include <cstdint>

#include "dns/message.h"
#include "zones/zone.h"

namespace meridian::zones {

struct AnswerOptions {
  bool tcp = false;  // ANY is answered in full over TCP, minimally over UDP (RFC 8482 §4.3)
};

struct AnswerResult {
  uint16_t rcode = dns::rcode::kNoError;
  bool authoritative = true;
  bool truncated = false;  // a required RRset did not fit: sections are emptied and TC set
};

// RFC 1034 §3.6.2 leaves CNAME chain length open; 16 hops is well beyond any sane chain.
inline constexpr int kMaxCnameChain = 16;

[[nodiscard]] AnswerResult answer(const Zone& zone, const dns::Query& query, dns::ResponseWriter& w,
                                  const AnswerOptions& options);

// Writes one RRset with `owner` (nullptr = the question name) into section `s`; false (and nothing
// written) when it does not fit.
[[nodiscard]] bool putRRset(const Zone& zone, const RRset& rs, const uint8_t* owner,
                            dns::ResponseWriter& w, dns::ResponseWriter::Section s);

}  // namespace meridian::zones
