// Helpers for the resolver cache tests: RRsets built from text, answers decoded back into
// (owner, type, TTL, RDATA) records.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "dns/name.h"
#include "dns/wire.h"
#include "resolver/cache.h"

namespace meridian::test {

inline dns::NameBuf wireName(const std::string& text) {
  dns::NameBuf n;
  if (!dns::fromText(text, n)) throw std::runtime_error("bad name " + text);
  return n;
}

// Owns the octets an RRsetIn points at.
struct TestRRset {
  TestRRset(const std::string& owner, uint16_t type, uint32_t ttl,
            std::vector<std::vector<uint8_t>> rdatas, std::vector<std::vector<uint8_t>> rrsigs = {})
      : name(wireName(owner)), data(std::move(rdatas)), sigs(std::move(rrsigs)) {
    for (const auto& d : data) refs.push_back({d.data(), static_cast<uint16_t>(d.size())});
    for (const auto& d : sigs) sig_refs.push_back({d.data(), static_cast<uint16_t>(d.size())});
    in.owner = name.data;
    in.owner_length = name.length;
    in.type = type;
    in.rrclass = dns::rrclass::kIN;
    in.ttl = ttl;
    in.rdatas = refs;
    in.rrsigs = sig_refs;
  }
  TestRRset(const TestRRset&) = delete;

  dns::NameBuf name;
  std::vector<std::vector<uint8_t>> data, sigs;
  std::vector<resolver::Rdata> refs, sig_refs;
  resolver::RRsetIn in;
};

inline std::vector<uint8_t> ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {a, b, c, d};
}

// SOA RDATA: MNAME and RNAME as the root name (one octet each), then the five counters.
inline std::vector<uint8_t> soaRdata(uint32_t serial, uint32_t minimum) {
  std::vector<uint8_t> r(22, 0);
  dns::writeU32(r.data() + 2, serial);
  dns::writeU32(r.data() + 18, minimum);
  return r;
}

struct DecodedRR {
  std::string owner;
  uint16_t type;
  uint32_t ttl;
  std::vector<uint8_t> rdata;
};

// Decodes what lookup() wrote; throws when the octets are not `count` well-formed RRs.
inline std::vector<DecodedRR> decodeRRs(const uint8_t* p, size_t length, size_t count) {
  std::vector<DecodedRR> rrs;
  size_t pos = 0;
  for (size_t i = 0; i < count; ++i) {
    dns::NameBuf n;
    size_t end = 0;
    if (dns::parseName(p, length, pos, n, &end) != dns::NameStatus::kOk || end + 10 > length) {
      throw std::runtime_error("bad RR");
    }
    DecodedRR rr;
    rr.owner = dns::toText(n.data);
    rr.type = dns::readU16(p + end);
    rr.ttl = dns::readU32(p + end + 4);
    const uint16_t rdlength = dns::readU16(p + end + 8);
    if (end + 10 + rdlength > length) throw std::runtime_error("bad RDLENGTH");
    rr.rdata.assign(p + end + 10, p + end + 10 + rdlength);
    rrs.push_back(std::move(rr));
    pos = end + 10 + rdlength;
  }
  if (pos != length) throw std::runtime_error("trailing octets");
  return rrs;
}

}  // namespace meridian::test
