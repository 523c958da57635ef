// libFuzzer target: the OPT, ECS, COOKIE and TSIG parse paths of dns/message.cc and the server
// cookie check of dns/cookie.cc in isolation. The input is everything after a fixed header and
// question ("example.com. IN A"): its first octet is the ARCOUNT, the rest the additional section,
// so the mutations land in OPT options and TSIG RDATA instead of in the header.
//
// Properties checked beyond "no crash, no sanitizer report":
//   * a query that parses is answered with an OPT and/or a TSIG error by ResponseWriter, and that
//     reply, with QR cleared, parses again with the same EDNS fields, ECS, cookie and TSIG names:
//     what we write is what we read;
//   * checkCookie agrees with the option's length (8 octets: client only; a valid cookie only
//     from a 24-octet option) and a server cookie made for the client validates.
// fuzz_query and fuzz_steered reach the same parser through the pipeline; here nothing else is in
// the way, so the coverage goes to the option code.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "dns/cookie.h"
#include "dns/message.h"

namespace {

namespace dns = meridian::dns;

const uint8_t kQuestion[] = {7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
const uint8_t kSecret[16] = {0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f,
                             0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37, 0xbf, 0xcf};
const uint8_t kAddress[4] = {198, 51, 100, 100};
constexpr uint32_t kNow = 1559731985;  // RFC 9018 A.1

void check(bool ok) {
  if (!ok) std::abort();
}

bool sameName(const dns::NameBuf& a, const dns::NameBuf& b) {
  return a.length == b.length && std::memcmp(a.data, b.data, a.length) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 4096) return 0;
  static uint8_t packet[12 + sizeof kQuestion + 4096];
  static dns::Query q;
  const size_t len = 12 + sizeof kQuestion + size - 1;
  std::memset(packet, 0, 12);
  packet[0] = 0x12;
  packet[5] = 1;         // QDCOUNT
  packet[11] = data[0];  // ARCOUNT
  std::memcpy(packet + 12, kQuestion, sizeof kQuestion);
  std::memcpy(packet + 12 + sizeof kQuestion, data + 1, size - 1);
  if (dns::parseQuery(packet, len, q) != dns::ParseStatus::kOk) return 0;

  const dns::CookieStatus cs =
      dns::checkCookie(kSecret, q.cookie, q.cookie_len, kAddress, sizeof kAddress, kNow);
  check((cs == dns::CookieStatus::kNone) == (q.cookie_len == 0));
  check((cs == dns::CookieStatus::kClientOnly) == (q.cookie_len == 8));
  if (cs == dns::CookieStatus::kValid) check(q.cookie_len == 8 + dns::kServerCookieSize);
  uint8_t cookie[8 + dns::kServerCookieSize];
  if (q.cookie_len != 0) {
    std::memcpy(cookie, q.cookie, 8);
    dns::makeServerCookie(kSecret, q.cookie, kAddress, sizeof kAddress, kNow, cookie + 8);
    check(dns::checkCookie(kSecret, cookie, sizeof cookie, kAddress, sizeof kAddress, kNow) ==
          dns::CookieStatus::kValid);
  }
  if (!q.has_edns && !q.tsig.present) return 0;

  // The reply's OPT (and TSIG error) as the pipeline writes them, then read back.
  static uint8_t reply[4096];
  static dns::Query back;
  dns::ResponseWriter w;
  w.reset(reply, sizeof reply, 0);
  w.begin(q, true);
  w.finishSections();
  const uint8_t nsid[] = {'f', 'u', 'z', 'z'};
  if (q.has_edns) {
    check(w.writeOpt(1232, 0, q.dnssec_ok, q.nsid_requested ? nsid : nullptr, sizeof nsid,
                     q.ecs.present ? &q.ecs : nullptr, q.cookie_len != 0 ? cookie : nullptr,
                     sizeof cookie));
  }
  if (q.tsig.present) check(w.writeTsigError(q.tsig, dns::rcode::kBadKey));
  reply[2] &= 0x7F;  // QR off: the parser answers queries only
  check(dns::parseQuery(reply, w.size(), back) == dns::ParseStatus::kOk);
  check(back.has_edns == q.has_edns);
  if (q.has_edns) check(back.edns_version == 0 && back.udp_payload == 1232);
  check(back.dnssec_ok == q.dnssec_ok && back.nsid_requested == q.nsid_requested);
  check(back.ecs.present == q.ecs.present);
  if (q.ecs.present) {
    check(back.ecs.family == q.ecs.family && back.ecs.source_prefix == q.ecs.source_prefix);
    check(std::memcmp(back.ecs.address, q.ecs.address, sizeof q.ecs.address) == 0);
  }
  check(back.cookie_len == (q.cookie_len != 0 ? sizeof cookie : 0));
  if (q.cookie_len != 0) check(std::memcmp(back.cookie, cookie, sizeof cookie) == 0);
  check(back.tsig.present == q.tsig.present);
  if (q.tsig.present) {
    check(sameName(back.tsig.key_name, q.tsig.key_name));
    check(sameName(back.tsig.algorithm, q.tsig.algorithm));
    check(back.tsig.original_id == q.tsig.original_id && back.tsig.fudge == q.tsig.fudge);
  }
  return 0;
}
