#include "server/pipeline.h"

#include <algorithm>

#include "zones/lookup.h"

namespace meridian::server {

namespace rr = dns::rrtype;
namespace rc = dns::rcode;

size_t QueryHandler::handle(const uint8_t* in, size_t in_len, uint8_t* out, size_t out_cap,
                            Transport transport) {
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
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present) {
    reserve += q.tsig.key_name.length + 10 + q.tsig.algorithm.length + 16;
  }
  w.reset(out, limit, reserve);

  uint16_t rcode = rc::kNoError;
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
      if (zone == nullptr) {
        rcode = rc::kRefused;
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
    ecs.scope_prefix = 0;
    (void)w.writeOpt(proto.max_udp_payload, rcode, q.dnssec_ok, nsid, proto.nsid.size(),
                     q.ecs.present && rcode != rc::kBadVers ? &ecs : nullptr);
  }
  if (st == dns::ParseStatus::kOk && q.tsig.present && !(edns && q.edns_version > 0)) {
    (void)w.writeTsigError(q.tsig, rc::kBadKey);
  }
  counters_.add(counters_.rcodes[std::min<size_t>(rcode, counters_.rcodes.size() - 1)]);
  return w.size();
}

}  // namespace meridian::server
