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
  // When the question name itself led to a wildcard (RFC 4592) or a referral: the wildcard's
  // owner ("*.…") or the zone cut, lowercase wire, in the zone. Response rate limiting
  // (server/rrl.h) counts such answers by it rather than by the question name.
  const uint8_t* matched = nullptr;
  bool wildcard = false;
};

// RFC 1034 §3.6.2 leaves CNAME chain length open; 16 hops is well beyond any sane chain.
inline constexpr int kMaxCnameChain = 16;

// Names that another module answers instead of the zone data (steered services, server/): asked for
// the question name and for every CNAME or DNAME target the chain reaches, inside this zone or,
// once the chain leaves it, outside, and for the wildcard owner ("*.x") a name is synthesized from.
// Called on the worker thread; must not allocate.
class ChainHook {
 public:
  enum class Outcome : uint8_t {
    kNotMine,    // the zone data answers this name
    kAnswered,   // the hook wrote the rest of the answer; the chain ends here
    kServFail,   // the whole response becomes SERVFAIL
    kTruncated,  // what the hook had to write did not fit
  };
  // `name` is lowercase wire (`len` octets), reached with owner `owner` (nullptr: the question
  // name). The hook finds the served zone holding the name itself: a chain may lead from the zone
  // being answered into a served child or another served zone.
  virtual Outcome answerName(const uint8_t* name, size_t len, const uint8_t* owner) = 0;

 protected:
  ~ChainHook() = default;
};

// True when the zone answers `name` (lowercase wire) with a referral (at or below one of its
// delegations) or a DNAME rewrite (below a DNAME owner), never with data of its own.
[[nodiscard]] bool isOccluded(const Zone& zone, const uint8_t* name, size_t len);

[[nodiscard]] AnswerResult answer(const Zone& zone, const dns::Query& query, dns::ResponseWriter& w,
                                  const AnswerOptions& options, ChainHook* hook = nullptr);

// Writes one RRset with `owner` (nullptr = the question name) into section `s`; false (and nothing
// written) when it does not fit.
[[nodiscard]] bool putRRset(const Zone& zone, const RRset& rs, const uint8_t* owner,
                            dns::ResponseWriter& w, dns::ResponseWriter::Section s);

// Writes the zone's negative-answer SOA (RFC 2308 §3) into the authority section with the apex
// as owner: replayed from the zone's pre-encoded copy when only the question precedes it, else
// through putRRset. Octet for octet the same either way; false when it does not fit.
[[nodiscard]] bool putNegativeSoa(const Zone& zone, const dns::Query& query,
                                  dns::ResponseWriter& w);

}  // namespace meridian::zones
