// libFuzzer target: arbitrary bytes through the response parser (dns/response.h) and everything a
// resolver or health check does with what parses: owner names, RDATA expansion (as received and
// lowercased), RRset grouping of each section, the EDNS option iterator and typed accessors, the
// question match, and the health checks' checkDnsReply.
//
// Properties checked beyond "no crash, no sanitizer report":
//   * the sections' views tile the message: each RDATA lies inside it, the sections add up to the
//     header counts less OPT and TSIG;
//   * an expanded RDATA fits the documented bound, holds no compression pointer where a name was
//     (a single-name RDATA parses from the expansion alone), its lowercased form differs only in
//     letter case, and one octet less room is refused;
//   * groupRrsets puts every record in exactly one RRset, all of one type, class and owner;
//   * a response matches its own question.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "dns/response.h"
#include "healthcheck/prober.h"

namespace {

namespace dns = meridian::dns;

void check(bool ok) {
  if (!ok) std::abort();
}

std::array<dns::RecordView, dns::kMaxRecords> storage;
std::array<uint16_t, dns::kMaxRecords> order;
std::array<dns::RrsetView, dns::kMaxRecords> sets;
std::array<bool, dns::kMaxRecords> seen;
uint8_t expanded[dns::kMaxMessageSize + dns::kMaxRdataExpansion];
uint8_t lowered[dns::kMaxMessageSize + dns::kMaxRdataExpansion];

void checkRecord(const dns::Response& r, const dns::RecordView& v) {
  check(size_t{v.rdata} + v.rdlength <= r.size);
  check(v.owner < v.rdata);
  dns::NameBuf owner;
  dns::ownerName(r, v, owner);
  check(owner.length >= 1 && owner.length <= dns::kMaxNameLength);
  size_t n = 0;
  size_t m = 0;
  check(dns::expandRdata(r, v, expanded, v.rdlength + dns::kMaxRdataExpansion, &n));
  check(dns::expandRdata(r, v, lowered, sizeof lowered, &m, /*lowercase=*/true));
  check(n == m);
  // Only names are lowercased: other octets stay, letters or not.
  for (size_t i = 0; i < n; ++i) {
    check(lowered[i] == expanded[i] || lowered[i] == dns::asciiLower(expanded[i]));
  }
  if (!dns::rdataHasNames(v.type)) {
    check(n == v.rdlength && std::memcmp(expanded, r.rdata(v), n) == 0);
  } else if (v.type == dns::rrtype::kNS || v.type == dns::rrtype::kCNAME ||
             v.type == dns::rrtype::kPTR || v.type == dns::rrtype::kDNAME) {
    // One name and nothing else: it parses from the expansion alone, with no pointer left.
    dns::NameBuf name;
    size_t end = 0;
    check(dns::parseName(expanded, n, 0, name, &end) == dns::NameStatus::kOk);
    check(end == n && name.length == n);
  }
  // One octet short of what it needs is refused, never overrun.
  if (n > 0) check(!dns::expandRdata(r, v, expanded, n - 1, &m));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dns::Response r;
  const dns::ResponseError e = dns::parseResponse(data, size, storage, r);
  check(!dns::responseErrorText(e).empty());
  std::string error;
  const uint16_t id = size >= 2 ? dns::readU16(data) : 0;
  static const uint8_t kRoot[] = {0};
  const auto reply = meridian::healthcheck::checkDnsReply(
      data, size, id, r.has_question ? r.qname.data : kRoot, r.has_question ? r.qtype : 1, error);
  if (e != dns::ResponseError::kOk) {
    check(r.records.empty() && r.section(dns::Section::kAnswer).empty());
    return 0;
  }
  check(reply != meridian::healthcheck::DnsReplyStatus::kOk || r.isResponse());

  const size_t meta = (r.edns.present ? 1 : 0) + (r.has_tsig ? 1 : 0);
  check(r.records.size() + meta == size_t{r.ancount} + r.nscount + r.arcount);
  check(r.answer_count == r.ancount && r.authority_count == r.nscount);
  for (const dns::RecordView& v : r.records) checkRecord(r, v);
  if (r.has_tsig) check(size_t{r.tsig.rdata} + r.tsig.rdlength == size);

  for (const dns::Section s :
       {dns::Section::kAnswer, dns::Section::kAuthority, dns::Section::kAdditional}) {
    const auto rs = r.section(s);
    size_t n = 0;
    check(dns::groupRrsets(r, s, order, sets, &n));
    check(n <= rs.size() && (n == 0) == rs.empty());
    size_t total = 0;
    std::fill(seen.begin(), seen.begin() + static_cast<ptrdiff_t>(rs.size()), false);
    for (size_t k = 0; k < n; ++k) {
      const dns::RrsetView& set = sets[k];
      check(set.count >= 1 && set.first + set.count <= rs.size());
      if (k > 0) check(order[sets[k - 1].first] < order[set.first]);  // order of appearance
      dns::NameBuf first;
      dns::ownerName(r, rs[order[set.first]], first);
      for (size_t j = set.first; j < set.first + set.count; ++j) {
        const dns::RecordView& v = rs[order[j]];
        check(!seen[order[j]]);
        seen[order[j]] = true;
        check(v.type == set.type && v.rclass == set.rclass && v.ttl >= set.ttl);
        dns::NameBuf owner;
        dns::ownerName(r, v, owner);
        check(dns::equalNames(owner.data, first.data));
        if (j > set.first) check(order[j - 1] < order[j]);
      }
      total += set.count;
    }
    check(total == rs.size());
  }

  if (r.edns.present) {
    size_t length = 0;
    for (const dns::EdnsOption& o : r.edns) length += 4u + o.length;
    check(length == r.edns.options_length);
    dns::ExtendedError ede;
    dns::ClientSubnet ecs;
    dns::CookieView cookie;
    if (dns::extendedError(r.edns, ede) == dns::OptionStatus::kOk) {
      check(ede.text.size() < r.edns.options_length);
    }
    (void)dns::clientSubnet(r.edns, ecs);
    if (dns::cookie(r.edns, cookie) == dns::OptionStatus::kOk) {
      check(cookie.server_length >= 8 && cookie.server_length <= 32);
    }
  }
  if (r.has_question) {
    const dns::QuestionMatch m = dns::matchQuestion(r, r.id, r.qname.data, r.qtype, r.qclass);
    check(m == (r.isResponse() ? dns::QuestionMatch::kMatch : dns::QuestionMatch::kNotResponse));
  }
  return 0;
}
