// Helpers for unit tests: build query packets and decode responses into zone-file text (with ldns,
// which the data plane itself never uses).
#pragma once

#include <ldns/ldns.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"

namespace meridian::test {

struct QueryOptions {
  bool edns = false;
  uint16_t payload = 1232;
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::vector<uint8_t> options;  // raw EDNS options
  uint16_t id = 0x1234;
  uint16_t flags = 0;  // e.g. dns::flag::kRD
  uint16_t qclass = dns::rrclass::kIN;
};

inline std::vector<uint8_t> makeQuery(const std::string& qname, uint16_t qtype,
                                      const QueryOptions& o = {}) {
  std::vector<uint8_t> p(12, 0);
  dns::writeU16(p.data(), o.id);
  dns::writeU16(p.data() + 2, o.flags);
  dns::writeU16(p.data() + 4, 1);
  dns::writeU16(p.data() + 10, o.edns ? 1 : 0);
  dns::NameBuf n;
  if (!dns::fromText(qname, n)) throw std::runtime_error("bad name " + qname);
  p.insert(p.end(), n.data, n.data + n.length);
  uint8_t tail[4];
  dns::writeU16(tail, qtype);
  dns::writeU16(tail + 2, o.qclass);
  p.insert(p.end(), tail, tail + 4);
  if (o.edns) {
    uint8_t opt[11] = {0};
    dns::writeU16(opt + 1, dns::rrtype::kOPT);
    dns::writeU16(opt + 3, o.payload);
    dns::writeU32(opt + 5, (static_cast<uint32_t>(o.version) << 16) | (o.dnssec_ok ? 0x8000u : 0u));
    dns::writeU16(opt + 9, static_cast<uint16_t>(o.options.size()));
    p.insert(p.end(), opt, opt + 11);
    p.insert(p.end(), o.options.begin(), o.options.end());
  }
  return p;
}

struct Decoded {
  bool ok = false;
  uint16_t id = 0;
  int rcode = -1;  // extended, with the OPT bits
  bool qr = false, aa = false, tc = false, rd = false;
  std::vector<std::string> question, answer, authority, additional;
  bool has_opt = false;
  uint16_t opt_payload = 0;
  int opt_version = -1;
  bool opt_do = false;
  std::string opt_data;  // raw option bytes
};

inline std::vector<std::string> sectionText(ldns_rr_list* list, bool sort) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    char* s = ldns_rr2str(ldns_rr_list_rr(list, i));
    std::string line(s);
    free(s);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    // ldns separates fields with tabs; tests write single spaces.
    std::replace(line.begin(), line.end(), '\t', ' ');
    out.push_back(line);
  }
  if (sort) std::sort(out.begin(), out.end());
  return out;
}

inline Decoded decode(const uint8_t* data, size_t len) {
  Decoded d;
  ldns_pkt* pkt = nullptr;
  if (len == 0 || ldns_wire2pkt(&pkt, data, len) != LDNS_STATUS_OK) return d;
  d.ok = true;
  d.id = ldns_pkt_id(pkt);
  d.qr = ldns_pkt_qr(pkt);
  d.aa = ldns_pkt_aa(pkt);
  d.tc = ldns_pkt_tc(pkt);
  d.rd = ldns_pkt_rd(pkt);
  d.rcode = ldns_pkt_get_rcode(pkt) | (ldns_pkt_edns_extended_rcode(pkt) << 4);
  d.question = sectionText(ldns_pkt_question(pkt), false);
  d.answer = sectionText(ldns_pkt_answer(pkt), true);
  d.authority = sectionText(ldns_pkt_authority(pkt), true);
  d.additional = sectionText(ldns_pkt_additional(pkt), true);
  if (ldns_rr* tsig = ldns_pkt_tsig(pkt)) {
    ldns_rr_list* l = ldns_rr_list_new();
    ldns_rr_list_push_rr(l, tsig);
    auto t = sectionText(l, false);
    d.additional.insert(d.additional.end(), t.begin(), t.end());
    ldns_rr_list_free(l);
  }
  d.has_opt = ldns_pkt_edns(pkt);
  if (d.has_opt) {
    d.opt_payload = ldns_pkt_edns_udp_size(pkt);
    d.opt_version = ldns_pkt_edns_version(pkt);
    d.opt_do = ldns_pkt_edns_do(pkt);
    if (ldns_rdf* r = ldns_pkt_edns_data(pkt)) {
      d.opt_data.assign(reinterpret_cast<const char*>(ldns_rdf_data(r)), ldns_rdf_size(r));
    }
  }
  ldns_pkt_free(pkt);
  return d;
}

}  // namespace meridian::test

// REQUIRE on a meridian::Result, showing the error message when it fails.
#define REQUIRE_OK(r)                                              \
  do {                                                             \
    INFO(((r).has_value() ? std::string() : (r).error().message)); \
    REQUIRE((r).has_value());                                      \
  } while (0)
