#include "server/pipeline.h"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <random>

#include "dns/cookie.h"
#include "dnstap/writer.h"
#include "georoute/policy.h"
#include "zones/lookup.h"

namespace meridian::server {

namespace rr = dns::rrtype;
namespace rc = dns::rcode;

// Steering as the zone lookup's chain hook: the question name, or a CNAME/DNAME target in this or
// another served zone, that is a service steers when the service has endpoints for the type.
class QueryHandler::SteeringHook final : public zones::ChainHook {
 public:
  SteeringHook(QueryHandler& handler, const ServingState& state, const Peer& peer, uint8_t* scope)
      : handler_(handler), state_(state), peer_(peer), scope_(scope) {}

  Outcome answerName(const uint8_t* name, size_t len, const uint8_t* owner) override {
    const uint16_t qtype = handler_.query_.qtype;
    if (qtype != rr::kA && qtype != rr::kAAAA && qtype != rr::kCNAME) return Outcome::kNotMine;
    const georoute::Service* svc = state_.services->find(name, len);
    if (svc == nullptr) return Outcome::kNotMine;
    // The served zone that holds the name, not necessarily the one the chain is walking: a CNAME
    // or DNAME of a parent zone that leads below its delegation into a served child zone reaches
    // the child's service, not the parent's referral.
    const zones::Zone* zone = state_.zones.findZone(name, len);
    // A service answers only from the zone it was compiled against (a newer child zone wins),
    // and not where that zone now delegates or rewrites the name: a reload whose steering failed
    // keeps the previous services beside the new zone data, and the referral is the truth.
    if (zone == nullptr || svc->zone != zone->origin()) return Outcome::kNotMine;
    if (zones::isOccluded(*zone, name, len)) return Outcome::kNotMine;
    return handler_.steer(state_, *svc, *zone, owner, peer_, scope_);
  }

 private:
  QueryHandler& handler_;
  const ServingState& state_;
  const Peer& peer_;
  uint8_t* scope_;
};

zones::ChainHook::Outcome QueryHandler::steer(const ServingState& state,
                                              const georoute::Service& svc, const zones::Zone& zone,
                                              const uint8_t* owner, const Peer& peer,
                                              uint8_t* scope) {
  using Outcome = zones::ChainHook::Outcome;
  const dns::Query& q = query_;
  const georoute::ServiceSet& set = *state.services;
  georoute::Client client;
  bool ecs_used = false;
  if (q.ecs.present && q.ecs.source_prefix > 0) {
    bool trusted = set.ecs_trusted.empty();
    for (const auto& net : set.ecs_trusted)
      trusted = trusted || (peer.known && net.contains(peer.address, peer.ipv6));
    if (trusted) {
      // RFC 7871 §7.1.2: locate the client by the ECS address.
      client.ipv6 = q.ecs.family == 2;
      std::memcpy(client.address, q.ecs.address, 16);
      client.source_prefix = q.ecs.source_prefix;
      client.from_ecs = true;
      ecs_used = true;
    }
  }
  if (!ecs_used) {
    client.ipv6 = peer.ipv6;
    std::memcpy(client.address, peer.address, 16);
    client.source_prefix = peer.ipv6 ? 128 : 32;
    // IPv4-mapped IPv6 peers are IPv4 clients.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (peer.ipv6 && std::memcmp(peer.address, kMapped, 12) == 0) {
      client.ipv6 = false;
      std::memmove(client.address, peer.address + 12, 4);
      client.source_prefix = 32;
    }
  }
  const healthcheck::Verdicts& health = state.health ? *state.health : no_health_;
  const georoute::Decision d = georoute::decide(set, svc, q.qtype, client, health);
  bump(counters_.breakdown.steering[state.metric_slots.steeringSlot(set, svc, d)]);
  // RFC 7871 §7.2.1: SCOPE is the prefix the answer depends on; SOURCE 0 (or an ignored ECS) gets
  // 0. A fallback to the zone data does not depend on the client.
  if (d.kind != georoute::Decision::Kind::kFallback) *scope = ecs_used ? d.scope : 0;
  dns::ResponseWriter& w = writer_;
  switch (d.kind) {
    case georoute::Decision::Kind::kFallback:
      return Outcome::kNotMine;
    case georoute::Decision::Kind::kServFail:
      return Outcome::kServFail;
    case georoute::Decision::Kind::kNoData:
      // NODATA from the service's zone (RFC 2308 §2.2), after any CNAMEs that led here.
      return zones::putNegativeSoa(zone, q, w) ? Outcome::kAnswered : Outcome::kTruncated;
    case georoute::Decision::Kind::kAnswer:
      break;
  }
  const dns::ResponseWriter::Mark start = w.mark();
  for (uint16_t i = 0; i < d.count; ++i) {
    const georoute::Endpoint& ep = *d.chosen[i];
    const bool named = owner == nullptr ? w.writeQnamePointer() : w.writeName(owner);
    if (!named || !w.writeBytes(ep.record.data(), ep.record.size())) {
      w.rollback(start);
      return Outcome::kTruncated;  // never a partial RRset
    }
    w.countRecord(dns::ResponseWriter::Section::kAnswer);
  }
  return Outcome::kAnswered;
}

std::unique_ptr<RrlTable> QueryHandler::makeRrl(const Published<ServingState>& state) {
  const RrlSettings& s = state.load()->protocol.rrl;
  if (!s.enabled) return nullptr;
  std::random_device rd;
  const uint64_t seed = (static_cast<uint64_t>(rd()) << 32) | rd();
  return std::make_unique<RrlTable>(s.table_size, seed);
}

RrlVerdict QueryHandler::rateLimit(const RrlSettings& s, const zones::AnswerResult& res,
                                   const zones::Zone* zone, uint16_t rcode, const Peer& peer) {
  const uint8_t* addr = peer.address;
  bool v6 = peer.ipv6;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (v6 && std::memcmp(addr, kMapped, 12) == 0) {
    addr += 12;  // an IPv4 client on a dual-stack socket counts in its IPv4 block
    v6 = false;
  }
  if (RrlTable::exempt(s, addr, v6)) return RrlVerdict::kSend;
  const dns::Query& q = query_;
  RrlKey key;
  key.address = addr;
  key.ipv6 = v6;
  key.qtype = q.qtype;
  key.name = q.qname_lower.data;
  key.name_len = q.qname_lower.length;
  const uint16_t answers = writer_.mark().counts[0];
  if (rcode == rc::kNXDomain) {
    key.cls = RrlClass::kNxDomain;
    if (zone != nullptr) {
      key.name = zone->apex();
      key.name_len = zone->apexLength();
    }
  } else if (rcode != rc::kNoError) {
    key.cls = RrlClass::kError;
    key.name = nullptr;
    key.name_len = 0;
  } else if (res.truncated || answers > 0) {
    key.cls = res.wildcard ? RrlClass::kWildcard : RrlClass::kPositive;
  } else if (!res.authoritative && res.matched != nullptr) {
    key.cls = RrlClass::kReferral;
  } else {
    key.cls = RrlClass::kNoData;
  }
  if ((key.cls == RrlClass::kWildcard || key.cls == RrlClass::kReferral) &&
      res.matched != nullptr) {
    key.name = res.matched;
    key.name_len = dns::wireLength(res.matched);
  }
  return rrl_->account(s, key);
}

size_t QueryHandler::handleQuery(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                                 Transport transport, const Peer& peer) {
  const ServingState& state = state_.get();
  const ProtocolSettings& proto = state.protocol;
  dns::Query& q = query_;
  dns::ResponseWriter& w = writer_;
  counters_.add(counters_.queries);
  bump(counters_.breakdown.transports[transport == Transport::kTcp ? 1 : 0]);

  const dns::ParseStatus st = dns::parseQuery(in, in_len, q);
  if (st == dns::ParseStatus::kDrop) {
    counters_.add(counters_.dropped);
    outcome_ = Outcome::kDropped;
    return 0;
  }
  bump(counters_.breakdown.qtypes[qtypeSlot(q.qtype)]);
  const bool tcp = transport == Transport::kTcp;
  // RFC 6891 §6.2.3/§6.2.5: a requester's payload below 512 is treated as 512; ours caps it.
  size_t limit = dns::kClassicUdpSize;
  if (tcp) {
    limit = dns::kMaxMessageSize;
  } else if (st == dns::ParseStatus::kOk && q.has_edns) {
    limit = std::clamp<size_t>(q.udp_payload, dns::kClassicUdpSize, proto.max_udp_payload);
  }
  limit = std::min(limit, out_cap);

  const bool opt_ok = st == dns::ParseStatus::kOk && q.has_edns;
  // RFC 6891 §7: a FORMERR to a query whose OPT record was read still carries an OPT (without
  // options, which may be what was malformed), or the requester would conclude "no EDNS".
  const bool edns = opt_ok || (st == dns::ParseStatus::kFormErr && q.has_edns);
  const bool send_nsid = opt_ok && q.nsid_requested && !proto.nsid.empty();
  const bool send_ecs = opt_ok && q.ecs.present;
  const bool send_cookie = opt_ok && q.cookie_len != 0;
  // RFC 7873 §5.2.3-§5.2.5: every reply to a client cookie carries a fresh server cookie; without
  // a valid one, a UDP query is refused with BADCOOKIE only where policy requires cookies.
  uint32_t now = 0;
  bool bad_cookie = false;
  if (send_cookie) {
    now = cookie_clock_ ? cookie_clock_() : static_cast<uint32_t>(std::time(nullptr));
    const dns::CookieStatus cs = dns::checkCookie(proto.cookie_secret, q.cookie, q.cookie_len,
                                                  peer.address, peer.ipv6 ? 16 : 4, now);
    counters_.add(cs == dns::CookieStatus::kValid        ? counters_.cookie_valid
                  : cs == dns::CookieStatus::kClientOnly ? counters_.cookie_client_only
                                                         : counters_.cookie_invalid);
    bad_cookie = proto.require_cookie && !tcp && cs != dns::CookieStatus::kValid;
  }
  // Room kept for the records written after the sections: OPT (11 octets + options) and TSIG.
  size_t reserve = 0;
  if (edns) {
    reserve += 11;
    if (send_nsid) reserve += 4 + proto.nsid.size();
    if (send_ecs) reserve += 8 + (q.ecs.source_prefix + 7u) / 8u;
    if (send_cookie) reserve += 4 + 8 + dns::kServerCookieSize;
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present) {
    reserve += q.tsig.key_name.length + 10 + q.tsig.algorithm.length + 16;
  }
  // Recursion (server/recursion.h): only when configured does the client's address matter here.
  const RecursionSettings* rec = proto.recursion.get();
  const bool may_recurse =
      rec != nullptr && rec->enabled && peer.known && rec->allows(peer.address, peer.ipv6);
  uint16_t ede_code = ede::kNone;
  Outcome outcome = Outcome::kAnswered;
  if (edns && rec != nullptr) reserve += ede::kOptionSize;
  w.reset(out, limit, reserve);

  uint16_t rcode = rc::kNoError;
  uint8_t ecs_scope = 0;
  // Header and question first; only the zone answer below adds records after them.
  w.begin(q, st == dns::ParseStatus::kFormErr || st == dns::ParseStatus::kNotImp ? q.has_question
                                                                                 : true);
  const dns::ResponseWriter::Mark sections = w.mark();
  zones::AnswerResult res;
  const zones::Zone* zone = nullptr;
  if (st == dns::ParseStatus::kFormErr) {
    rcode = rc::kFormErr;
  } else if (st == dns::ParseStatus::kNotImp) {
    rcode = rc::kNotImp;  // RFC 1035 §4.1.1; never silence (RFC 8906 §3.1.4)
  } else if (edns && q.edns_version > 0) {
    rcode = rc::kBadVers;  // RFC 6891 §6.1.3: we implement version 0 only
  } else if (q.tsig.present) {
    rcode = rc::kNotAuth;  // RFC 8945 §5.2.1: no key of that name is configured
  } else if (bad_cookie) {
    rcode = rc::kBadCookie;  // RFC 7873 §5.2.3: with the new server cookie written below
  } else {
    if (q.qclass != dns::rrclass::kIN) {
      rcode = rc::kRefused;
    } else if (q.qtype == rr::kOPT || q.qtype == rr::kTSIG || q.qtype == rr::kTKEY ||
               q.qtype == rr::kMAILA || q.qtype == rr::kMAILB) {
      rcode = rc::kNotImp;  // meta and obsolete query types
    } else if (q.qtype == rr::kAXFR || q.qtype == rr::kIXFR) {
      rcode = rc::kRefused;  // no transfer ACL allows this client (transfers come with replication)
    } else {
      zone = state.zones.findZone(q.qname_lower);
      bool unavailable = false;
      if (zone != nullptr && q.qtype == rr::kDS && zone->apexLength() == q.qname_lower.length) {
        // DS lives on the parent side of the cut (RFC 4035 §3.1.4.1) when the parent is ours too.
        if (const zones::Zone* parent = state.zones.findZone(q.qname_lower, true)) zone = parent;
      }
      for (const std::string& apex : state.unavailable_zones) {
        const auto* a = reinterpret_cast<const uint8_t*>(apex.data());
        if ((zone == nullptr || apex.size() > zone->apexLength()) &&
            dns::isSubdomain(q.qname_lower.data, q.qname_lower.length, a, apex.size())) {
          unavailable = true;
        }
      }
      if (unavailable) {
        rcode = rc::kServFail;
      } else if (zone == nullptr) {
        rcode = rc::kRefused;
        if (rec != nullptr && rec->enabled) {
          if (!may_recurse) {
            ede_code = ede::kProhibited;  // RFC 8914 §4.19
          } else if ((q.flags & dns::flag::kRD) == 0) {
            // RFC 1034 §4.3.1: RD=0 is answered from the cache only; until the cache is wired
            // in, both rd0 policies refuse (RFC 8914 §4.21).
            ede_code = ede::kNotAuthoritative;
          } else {
            counters_.add(counters_.pending);
            outcome_ = Outcome::kPending;
            return 0;
          }
        }
      } else {
        bump(counters_.breakdown.zones[zone_slot_.get(state.metric_slots, zone)]);
        SteeringHook steering(*this, state, peer, &ecs_scope);
        res = zones::answer(*zone, q, w, zones::AnswerOptions{tcp},
                            state.services ? &steering : nullptr);
        rcode = res.rcode;
        w.setFlag(dns::flag::kAA, res.authoritative);
        if (res.truncated) {
          w.setFlag(dns::flag::kTC, true);
          counters_.add(counters_.truncated);
          outcome = Outcome::kTruncated;
        }
      }
    }
  }
  // Response rate limiting applies to UDP only: TCP proves the source address, and a slipped
  // (truncated) reply sends a real client there.
  if (!tcp && rrl_ != nullptr && proto.rrl.enabled) {
    switch (rateLimit(proto.rrl, res, zone, rcode, peer)) {
      case RrlVerdict::kSend:
        break;
      case RrlVerdict::kDrop:
        counters_.add(counters_.rrl_dropped);
        outcome_ = Outcome::kDropped;
        return 0;
      case RrlVerdict::kSlip:
        w.rollback(sections);
        w.setFlag(dns::flag::kTC, true);
        counters_.add(counters_.rrl_slipped);
        outcome = Outcome::kTruncated;
        break;
    }
  }
  // RFC 1035 §4.1.1: RA says recursion is available, to the clients it is available to.
  if (may_recurse) w.setFlag(dns::flag::kRA, true);
  w.setRcode(rcode);
  w.finishSections();
  if (edns) {
    const size_t opt_at = w.size();
    const auto* nsid = send_nsid ? reinterpret_cast<const uint8_t*>(proto.nsid.data()) : nullptr;
    // RFC 7871 §7.2.1: an answer that does not depend on the client carries SCOPE 0.
    dns::ClientSubnet ecs = q.ecs;
    ecs.scope_prefix = ecs_scope;
    // RFC 7873 §5.2: answer a client cookie with it and a fresh server cookie (RFC 9018 §4).
    uint8_t cookie[8 + dns::kServerCookieSize];
    if (send_cookie) {
      std::memcpy(cookie, q.cookie, 8);
      dns::makeServerCookie(proto.cookie_secret, q.cookie, peer.address, peer.ipv6 ? 16 : 4, now,
                            cookie + 8);
    }
    if (w.writeOpt(proto.max_udp_payload, rcode, q.dnssec_ok, nsid, proto.nsid.size(),
                   send_ecs && rcode != rc::kBadVers ? &ecs : nullptr,
                   send_cookie ? cookie : nullptr, sizeof cookie) &&
        ede_code != ede::kNone) {
      (void)appendEde(w, opt_at, ede_code);
    }
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present && !(edns && q.edns_version > 0)) {
    (void)w.writeTsigError(q.tsig, rc::kBadKey);
  }
  counters_.add(counters_.rcodes[std::min<size_t>(rcode, counters_.rcodes.size() - 1)]);
  outcome_ = outcome;
  return w.size();
}

namespace {

dnstap::Time wallClock() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return {static_cast<uint64_t>(ts.tv_sec), static_cast<uint32_t>(ts.tv_nsec)};
}

}  // namespace

// Only reached with dnstap on (handle()).
size_t QueryHandler::handleTapped(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                                  Transport transport, const Peer& peer) {
  dnstap::Sink& tap = *tap_;
  if (!tap.sample()) return handleQuery(in, in_len, out, out_cap, transport, peer);
  dnstap::Event ev;
  ev.query_time = wallClock();
  const size_t len = handleQuery(in, in_len, out, out_cap, transport, peer);

  ev.protocol = transport == Transport::kTcp ? dnstap::Protocol::kTcp : dnstap::Protocol::kUdp;
  ev.query_endpoint.known = peer.known;
  ev.query_endpoint.ipv6 = peer.ipv6;
  std::memcpy(ev.query_endpoint.address, peer.address, sizeof peer.address);
  ev.query_endpoint.port = peer.port;
  ev.response_endpoint = tap.local();
  const dnstap::Settings& s = tap.settings();
  auto count = [&](bool queued) {
    counters_.add(queued ? counters_.dnstap_sent : counters_.dnstap_dropped);
  };
  if (s.log_queries) {
    ev.type = dnstap::MessageType::kAuthQuery;
    ev.query_message = in;
    ev.query_len = in_len;
    count(tap.submit(ev));
  }
  if (s.log_responses && len > 0) {
    // Knot's and NSD's AUTH_RESPONSE: the response and both times, without the query.
    ev.type = dnstap::MessageType::kAuthResponse;
    ev.query_message = nullptr;
    ev.query_len = 0;
    ev.response_time = wallClock();
    ev.response_message = out;
    ev.response_len = len;
    count(tap.submit(ev));
  }
  return len;
}

}  // namespace meridian::server
