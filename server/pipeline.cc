#include "server/pipeline.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "dns/cookie.h"
#include "zones/lookup.h"

namespace meridian::server {

namespace rr = dns::rrtype;
namespace rc = dns::rcode;

bool QueryHandler::steer(const ServingState& state, const georoute::Service& svc,
                         const zones::Zone& zone, const Peer& peer, uint16_t* rcode,
                         uint8_t* scope) {
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
  const healthcheck::StateTable& health = health_ ? health_->get() : no_health_;
  const georoute::Decision d = georoute::decide(set, svc, q.qtype, client, health);
  // RFC 7871 §7.2.1: SCOPE is the prefix the answer depends on; SOURCE 0 (or an ignored ECS) gets
  // 0.
  *scope = ecs_used ? d.scope : 0;
  dns::ResponseWriter& w = writer_;
  w.setFlag(dns::flag::kAA, true);
  switch (d.kind) {
    case georoute::Decision::Kind::kFallback:
      return false;
    case georoute::Decision::Kind::kServFail:
      *rcode = rc::kServFail;
      return true;
    case georoute::Decision::Kind::kNoData:
      if (!zones::putRRset(zone, zone.negativeSoa(), zone.apex(), w,
                           dns::ResponseWriter::Section::kAuthority)) {
        w.setFlag(dns::flag::kTC, true);
        counters_.add(counters_.truncated);
      }
      return true;
    case georoute::Decision::Kind::kAnswer:
      break;
  }
  const dns::ResponseWriter::Mark start = w.mark();
  for (uint16_t i = 0; i < d.count; ++i) {
    const georoute::Endpoint& ep = *d.chosen[i];
    if (!w.writeQnamePointer() || !w.writeBytes(ep.record.data(), ep.record.size())) {
      w.rollback(start);
      w.setFlag(dns::flag::kTC, true);  // never a partial RRset
      counters_.add(counters_.truncated);
      return true;
    }
    w.countRecord(dns::ResponseWriter::Section::kAnswer);
  }
  return true;
}

size_t QueryHandler::handle(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                            Transport transport, const Peer& peer) {
  const ServingState& state = state_.get();
  const ProtocolSettings& proto = state.protocol;
  dns::Query& q = query_;
  dns::ResponseWriter& w = writer_;
  counters_.add(counters_.queries);

  const dns::ParseStatus st = dns::parseQuery(in, in_len, q);
  if (st == dns::ParseStatus::kDrop) {
    counters_.add(counters_.dropped);
    return 0;
  }
  const bool tcp = transport == Transport::kTcp;
  // RFC 6891 §6.2.3/§6.2.5: a requester's payload below 512 is treated as 512; ours caps it.
  size_t limit = dns::kClassicUdpSize;
  if (tcp) {
    limit = dns::kMaxMessageSize;
  } else if (st == dns::ParseStatus::kOk && q.has_edns) {
    limit = std::clamp<size_t>(q.udp_payload, dns::kClassicUdpSize, proto.max_udp_payload);
  }
  limit = std::min(limit, out_cap);

  const bool edns = st == dns::ParseStatus::kOk && q.has_edns;
  const bool send_nsid = edns && q.nsid_requested && !proto.nsid.empty();
  // Room kept for the records written after the sections: OPT (11 octets + options) and TSIG.
  size_t reserve = 0;
  if (edns) {
    reserve += 11;
    if (send_nsid) reserve += 4 + proto.nsid.size();
    if (q.ecs.present) reserve += 8 + (q.ecs.source_prefix + 7u) / 8u;
    if (q.cookie_len != 0) reserve += 4 + 8 + dns::kServerCookieSize;
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present) {
    reserve += q.tsig.key_name.length + 10 + q.tsig.algorithm.length + 16;
  }
  w.reset(out, limit, reserve);

  uint16_t rcode = rc::kNoError;
  uint8_t ecs_scope = 0;
  if (st == dns::ParseStatus::kFormErr) {
    w.begin(q, q.has_question);
    rcode = rc::kFormErr;
  } else if (st == dns::ParseStatus::kNotImp) {
    w.begin(q, q.has_question);
    rcode = rc::kNotImp;  // RFC 1035 §4.1.1; never silence (RFC 8906 §3.1.4)
  } else if (edns && q.edns_version > 0) {
    w.begin(q, true);
    rcode = rc::kBadVers;  // RFC 6891 §6.1.3: we implement version 0 only
  } else if (q.tsig.present) {
    w.begin(q, true);
    rcode = rc::kNotAuth;  // RFC 8945 §5.2.1: no key of that name is configured
  } else {
    w.begin(q, true);
    if (q.qclass != dns::rrclass::kIN) {
      rcode = rc::kRefused;
    } else if (q.qtype == rr::kOPT || q.qtype == rr::kTSIG || q.qtype == rr::kTKEY ||
               q.qtype == rr::kMAILA || q.qtype == rr::kMAILB) {
      rcode = rc::kNotImp;  // meta and obsolete query types
    } else if (q.qtype == rr::kAXFR || q.qtype == rr::kIXFR) {
      rcode = rc::kRefused;  // no transfer ACL allows this client (transfers come with replication)
    } else {
      const zones::Zone* zone = state.zones.findZone(q.qname_lower);
      if (zone != nullptr && q.qtype == rr::kDS && zone->apexLength() == q.qname_lower.length) {
        // DS lives on the parent side of the cut (RFC 4035 §3.1.4.1) when the parent is ours too.
        if (const zones::Zone* parent = state.zones.findZone(q.qname_lower, true)) zone = parent;
      }
      const georoute::Service* svc = nullptr;
      if (zone != nullptr && state.services &&
          (q.qtype == rr::kA || q.qtype == rr::kAAAA || q.qtype == rr::kCNAME)) {
        svc = state.services->find(q.qname_lower);
        if (svc != nullptr && svc->zone != zone->origin()) svc = nullptr;
      }
      if (zone == nullptr) {
        rcode = rc::kRefused;
      } else if (svc != nullptr && steer(state, *svc, *zone, peer, &rcode, &ecs_scope)) {
        // answered by steering
      } else {
        const zones::AnswerResult res = zones::answer(*zone, q, w, zones::AnswerOptions{tcp});
        rcode = res.rcode;
        w.setFlag(dns::flag::kAA, res.authoritative);
        if (res.truncated) {
          w.setFlag(dns::flag::kTC, true);
          counters_.add(counters_.truncated);
        }
      }
    }
  }
  w.setRcode(rcode);
  w.finishSections();
  if (edns) {
    const auto* nsid = send_nsid ? reinterpret_cast<const uint8_t*>(proto.nsid.data()) : nullptr;
    // RFC 7871 §7.2.1: an answer that does not depend on the client carries SCOPE 0.
    dns::ClientSubnet ecs = q.ecs;
    ecs.scope_prefix = ecs_scope;
    // RFC 7873 §5.2: answer a client cookie with it and a fresh server cookie (RFC 9018 §4).
    uint8_t cookie[8 + dns::kServerCookieSize];
    const bool send_cookie = q.cookie_len != 0;
    if (send_cookie) {
      std::memcpy(cookie, q.cookie, 8);
      dns::makeServerCookie(proto.cookie_secret, q.cookie, peer.address, peer.ipv6 ? 16 : 4,
                            static_cast<uint32_t>(std::time(nullptr)), cookie + 8);
    }
    (void)w.writeOpt(proto.max_udp_payload, rcode, q.dnssec_ok, nsid, proto.nsid.size(),
                     q.ecs.present && rcode != rc::kBadVers ? &ecs : nullptr,
                     send_cookie ? cookie : nullptr, sizeof cookie);
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present && !(edns && q.edns_version > 0)) {
    (void)w.writeTsigError(q.tsig, rc::kBadKey);
  }
  counters_.add(counters_.rcodes[std::min<size_t>(rcode, counters_.rcodes.size() - 1)]);
  return w.size();
}

}  // namespace meridian::server
