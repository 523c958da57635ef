// The iterative resolver (RFC 1034 §5.3.3, RFC 9156): one state machine per question, walking the
// tree from the root hints (or the deepest zone cut it already knows) by referrals, chasing CNAME
// and DNAME across zones, with QNAME minimisation (relaxed), EDNS fallback, TCP on TC=1, server
// selection by smoothed RTT with backoff, lame-server marks, bailiwick checks on every record it
// keeps, and the work limits of the configuration (CNAME chain, referrals, glueless NS names per
// delegation, upstream queries per client question).
//
// All traffic goes through a Transport (below), so unit tests run it against a simulated hierarchy
// with no sockets and no clock. It runs on one thread (the resolver's event loop); nothing here is
// on the authoritative query path, so it may allocate.
//
// What it keeps between questions is infrastructure only: the zone cuts it learned (NS names and
// their addresses, with their TTLs) and per-server RTT and lameness. Answers are the cache's
// (resolver/cache.h); the caller looks there first and stores what resolve() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace meridian::dns {
struct Response;
}

namespace meridian::resolver {

// An authoritative server's address.
struct Endpoint {
  bool ipv6 = false;
  uint8_t address[16] = {};  // IPv4 in the first 4 octets
  uint16_t port = 53;

  [[nodiscard]] std::string key() const;   // a map key
  [[nodiscard]] std::string text() const;  // "192.0.2.1" / "2001:db8::1", port when not 53
  friend bool operator==(const Endpoint& a, const Endpoint& b) { return a.key() == b.key(); }
};

enum class SendStatus {
  kOk,            // data holds what came back (checked by the iterator, not the transport)
  kTimeout,       // nothing within the timeout
  kNetworkError,  // refused, unreachable, reset
};

// Where the iterator's queries go. send() must call `done` exactly once, and never from inside
// send() itself (from the event loop, later), so a resolution never re-enters itself.
class Transport {
 public:
  using Done = std::function<void(SendStatus, const uint8_t* data, size_t size)>;
  virtual ~Transport() = default;
  virtual void send(const Endpoint& to, std::vector<uint8_t> query, bool tcp, uint32_t timeout_ms,
                    Done done) = 0;
  // Milliseconds on a monotonic clock (TTL expiry of zone cuts, RTTs, backoff).
  virtual uint64_t nowMs() = 0;
  // Query IDs (RFC 5452 §9.2: unpredictable). The real transport also randomises source ports.
  virtual uint16_t randomId() = 0;
};

// The work limits; each is a `[recursion]` key with this default (the precedent in comments).
struct Limits {
  // CNAME/DNAME links followed for one question (Unbound's MAX_RESTART_COUNT is 11; BIND 16).
  int max_cname_chain = 11;
  // Referrals followed for one question, over all its names (PowerDNS Recursor's
  // max-recursion-depth is 40; Unbound's MAX_REFERRAL_COUNT 130 counts more steps).
  int max_referrals = 40;
  // Glueless NS names resolved for one delegation (NXNSAttack, CVE-2020-12662: Unbound and BIND
  // cap this; PowerDNS Recursor's max-ns-per-resolve is 13). Also bounds nested lookups.
  int max_ns_names_resolved = 5;
  // Nested resolutions (an NS name whose own NS names need resolving, ...).
  int max_depth = 5;
  // Upstream queries for one client question, sub-resolutions included (PowerDNS Recursor's
  // max-qperq is 60; Unbound's max-sent-count 32).
  int max_upstream_queries = 60;
  // One attempt's timeout; a server that timed out is backed off (its SRTT doubled, up to 12 s).
  uint32_t timeout_ms = 1500;
  bool qname_minimisation = true;  // RFC 9156, relaxed: falls back to the full name on oddities
  uint16_t edns_udp_size = 1232;   // what we advertise upstream (DNS Flag Day 2020)

  friend bool operator==(const Limits&, const Limits&) = default;
};

// A record as the iterator returns it: owner and RDATA uncompressed (names inside the RDATA
// expanded), letter case as the server sent it.
struct Record {
  std::string owner;  // wire form
  uint16_t type = 0;
  uint16_t rclass = 0;
  uint32_t ttl = 0;
  std::string rdata;
};

// RFC 8914 codes the resolver gives.
namespace ede {
inline constexpr uint16_t kNone = 0xFFFF, kNetworkError = 23, kNoReachableAuthority = 22,
                          kProhibited = 18, kStaleAnswer = 3, kOther = 0;
}

struct Outcome {
  uint16_t rcode = 0;             // NOERROR, NXDOMAIN or SERVFAIL
  std::vector<Record> answer;     // the CNAME/DNAME chain, then the RRset asked for
  std::vector<Record> authority;  // the SOA of a negative answer (RFC 2308)
  uint16_t ede = ede::kNone;
  std::string ede_text;
  int upstream_queries = 0;  // queries sent for this question (sub-resolutions included)
};

class Iterator {
 public:
  using Callback = std::function<void(const Outcome&)>;

  // root_hints: the root's name servers' addresses (from root.hints; the NS names do not matter
  // until priming replaces them).
  Iterator(Transport& transport, Limits limits, std::vector<Endpoint> root_hints);
  ~Iterator();
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;

  // Resolves (qname, qtype, qclass); cb is called once, later, from the transport's completions.
  // qname: uncompressed wire form, any letter case. Identical questions in flight share one
  // resolution (and its upstream queries).
  void resolve(const std::string& qname, uint16_t qtype, uint16_t qclass, Callback cb);

  // Introspection for tests and metrics.
  [[nodiscard]] size_t inFlight() const;
  [[nodiscard]] size_t knownZoneCuts() const { return cuts_.size(); }
  [[nodiscard]] uint32_t srttMs(const Endpoint& e) const;

 private:
  struct NsName {
    std::string name;  // lowercase wire
    std::vector<Endpoint> addresses;
    bool resolving = false;
    bool failed = false;
  };
  struct ZoneCut {
    std::string zone;  // lowercase wire
    std::vector<NsName> ns;
    uint64_t expires_ms = 0;  // never for the root hints
    int resolved_ns_names = 0;
  };
  struct Server {
    uint32_t srtt_ms = 0;  // 0: never measured
    uint64_t backoff_until_ms = 0;
    bool no_edns = false;                  // answered FORMERR/NOTIMP to EDNS: ask it without
    std::map<std::string, bool> lame_for;  // zone -> lame (until the cut expires)
  };
  struct Task;

  void step(const std::shared_ptr<Task>& t);
  void sendTo(const std::shared_ptr<Task>& t, const ZoneCut& cut, const Endpoint& to, bool tcp);
  void onReply(const std::shared_ptr<Task>& t, const std::string& zone, const Endpoint& from,
               bool tcp, uint16_t id, uint64_t sent_ms, SendStatus status, const uint8_t* data,
               size_t size, const std::string& asked, uint16_t asked_type);
  void process(const std::shared_ptr<Task>& t, const std::string& zone, const Endpoint& from,
               const dns::Response& msg, const std::string& asked, uint16_t asked_type);
  static std::vector<Record> soaOf(const dns::Response& msg, const std::string& zone);
  void finish(const std::shared_ptr<Task>& t, Outcome r);
  void fail(const std::shared_ptr<Task>& t, uint16_t ede_code, std::string why);
  ZoneCut& deepestCut(const std::string& name);
  void resolveNsName(const std::shared_ptr<Task>& t, ZoneCut& cut, size_t ns_index);
  bool pickServer(const std::shared_ptr<Task>& t, const ZoneCut& cut, Endpoint& out);

  Transport& transport_;
  Limits limits_;
  std::map<std::string, ZoneCut> cuts_;    // by lowercase wire zone name
  std::map<std::string, Server> servers_;  // by Endpoint::key()
  // Questions in flight: key -> waiting callbacks (the first resolves, the others share it).
  std::map<std::string, std::vector<Callback>> waiting_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  // Tasks waiting for another task's lookup of a zone cut's NS name, by zone.
  std::map<std::string, std::vector<std::shared_ptr<Task>>> pending_cut_waiters_;
};

// Wire-name helpers on std::string (lowercase wire names unless said otherwise).
[[nodiscard]] std::string lowerName(const std::string& wire);
[[nodiscard]] size_t labelCount(const std::string& wire);
// The last `labels` labels of name (0: the root).
[[nodiscard]] std::string suffixLabels(const std::string& name, size_t labels);
// Is name equal to or below zone? Both lowercase wire.
[[nodiscard]] bool inBailiwick(const std::string& name, const std::string& zone);

}  // namespace meridian::resolver
