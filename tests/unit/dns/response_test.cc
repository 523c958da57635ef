// dns/response.h: the response parser on hand-built packets (compression, every refusal), EDNS
// options, RDATA expansion, RRset grouping, question matching, and on responses dnspython wrote.
#include "dns/response.h"

#include <array>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <vector>

using namespace meridian::dns;

namespace {

// Builds a message octet by octet (push_back: GCC 12 reports a false -Warray-bounds on
// vector::insert after a fixed prefix).
struct Packet {
  std::vector<uint8_t> b;
  Packet(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    u16(id).u16(flags).u16(qd).u16(an).u16(ns).u16(ar);
  }
  Packet& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  Packet& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
  Packet& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v >> 16)).u16(static_cast<uint16_t>(v));
  }
  Packet& raw(std::initializer_list<uint8_t> bytes) {
    for (const uint8_t x : bytes) u8(x);
    return *this;
  }
  Packet& text(const std::string& s) {
    for (const char c : s) u8(static_cast<uint8_t>(c));
    return *this;
  }
  // An uncompressed name, "." for the root.
  Packet& name(const std::string& t) {
    NameBuf n;
    REQUIRE(fromText(t, n));
    for (size_t i = 0; i < n.length; ++i) u8(n.data[i]);
    return *this;
  }
  Packet& ptr(uint16_t to) { return u16(static_cast<uint16_t>(0xC000 | to)); }
  Packet& question(const std::string& qname, uint16_t qtype) {
    return name(qname).u16(qtype).u16(rrclass::kIN);
  }
  // TYPE CLASS TTL RDLENGTH (after an owner written by the caller).
  Packet& fixed(uint16_t type, uint16_t rdlength, uint32_t ttl = 300,
                uint16_t rclass = rrclass::kIN) {
    return u16(type).u16(rclass).u32(ttl).u16(rdlength);
  }
  [[nodiscard]] size_t size() const { return b.size(); }
};

std::vector<uint8_t> fromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct Parsed {
  std::array<RecordView, 64> storage;
  Response r;
  ResponseError error = ResponseError::kOk;
  explicit Parsed(const std::vector<uint8_t>& p) {
    error = parseResponse(p.data(), p.size(), storage, r);
  }
};

ResponseError parse(const std::vector<uint8_t>& p) {
  return Parsed(p).error;
}

std::string owner(const Response& r, const RecordView& v) {
  NameBuf n;
  ownerName(r, v, n);
  return toText(n.data);
}

std::vector<uint8_t> expanded(const Response& r, const RecordView& v, bool lower = false) {
  std::vector<uint8_t> out(v.rdlength + kMaxRdataExpansion);
  size_t n = 0;
  REQUIRE(expandRdata(r, v, out.data(), out.size(), &n, lower));
  out.resize(n);
  return out;
}

// groupRrsets with room for the whole section; `sets` is cut to the RRsets found.
struct Grouped {
  std::vector<uint16_t> order;
  std::vector<RrsetView> sets;
};
Grouped grouped(const Response& r, Section s) {
  Grouped g{std::vector<uint16_t>(r.section(s).size()),
            std::vector<RrsetView>(r.section(s).size())};
  size_t n = 0;
  REQUIRE(groupRrsets(r, s, g.order, g.sets, &n));
  g.sets.resize(n);
  return g;
}

// The www.example.com. A response used by most cases: offsets 12 (qname), 16 (example.com.).
Packet wwwResponse(uint16_t an, uint16_t ns, uint16_t ar) {
  Packet p(0x1234, flag::kQR | flag::kAA, 1, an, ns, ar);
  p.question("www.Example.com.", rrtype::kA);
  return p;
}

}  // namespace

TEST_CASE("parseResponse: sections as views, compressed owners and RDATA names",
          "[dns][response]") {
  Packet p = wwwResponse(2, 1, 1);
  p.ptr(12).fixed(rrtype::kA, 4, 60).raw({192, 0, 2, 1});
  p.ptr(12).fixed(rrtype::kA, 4, 30).raw({192, 0, 2, 2});
  const uint16_t ns_rdata = static_cast<uint16_t>(p.size() + 2 + 10);
  p.ptr(16).fixed(rrtype::kNS, 6, 3600).raw({3, 'N', 'S', '1'}).ptr(16);  // ns1.example.com.
  p.ptr(ns_rdata).fixed(rrtype::kA, 4, 3600).raw({192, 0, 2, 53});        // owner: the NS target
  Parsed x(p.b);
  REQUIRE(x.error == ResponseError::kOk);
  const Response& r = x.r;
  CHECK(r.id == 0x1234);
  CHECK(r.isResponse());
  CHECK(r.flag(flag::kAA));
  CHECK(r.rcode() == rcode::kNoError);
  REQUIRE(r.has_question);
  CHECK(toText(r.qname.data) == "www.Example.com.");
  CHECK(r.qtype == rrtype::kA);
  REQUIRE(r.section(Section::kAnswer).size() == 2);
  REQUIRE(r.section(Section::kAuthority).size() == 1);
  REQUIRE(r.section(Section::kAdditional).size() == 1);
  CHECK_FALSE(r.edns.present);
  const RecordView& a2 = r.section(Section::kAnswer)[1];
  CHECK(owner(r, a2) == "www.Example.com.");
  CHECK(a2.ttl == 30);
  CHECK(a2.rdlength == 4);
  CHECK(r.rdata(a2)[3] == 2);
  const RecordView& ns = r.section(Section::kAuthority)[0];
  CHECK(owner(r, ns) == "Example.com.");
  CHECK(owner(r, r.section(Section::kAdditional)[0]) == "NS1.Example.com.");

  // The NS target goes into the cache uncompressed (6 octets on the wire, 17 expanded).
  NameBuf want;
  REQUIRE(fromText("NS1.Example.com.", want));
  const auto rd = expanded(r, ns);
  CHECK(rd == std::vector<uint8_t>(want.data, want.data + want.length));
  REQUIRE(fromText("ns1.example.com.", want));
  CHECK(expanded(r, ns, /*lower=*/true) ==
        std::vector<uint8_t>(want.data, want.data + want.length));
  // Too small a buffer is refused, not overrun.
  uint8_t small[8];
  size_t n = 0;
  CHECK_FALSE(expandRdata(r, ns, small, sizeof small, &n));
}

TEST_CASE("parseResponse refuses bad compression pointers and names", "[dns][response]") {
  SECTION("a pointer to itself (loop)") {
    Packet p = wwwResponse(1, 0, 0);
    const uint16_t at = static_cast<uint16_t>(p.size());
    p.ptr(at).fixed(rrtype::kA, 4).raw({1, 2, 3, 4});
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kBadPointer);
    CHECK(x.r.error_offset == at);
    CHECK(x.r.section(Section::kAnswer).empty());
  }
  SECTION("two pointers to each other") {
    Packet p(1, flag::kQR, 0, 1, 0, 0);
    p.ptr(14).ptr(12).fixed(rrtype::kA, 4).raw({1, 2, 3, 4});
    CHECK(parse(p.b) == ResponseError::kBadPointer);
  }
  SECTION("a forward pointer") {
    Packet p = wwwResponse(1, 0, 0);
    const uint16_t at = static_cast<uint16_t>(p.size());
    p.ptr(static_cast<uint16_t>(at + 16)).fixed(rrtype::kA, 4).raw({1, 2, 3, 4}).name("x.");
    CHECK(parse(p.b) == ResponseError::kBadPointer);
  }
  SECTION("a pointer past the end") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(0x3FFF).fixed(rrtype::kA, 4).raw({1, 2, 3, 4});
    CHECK(parse(p.b) == ResponseError::kBadPointer);
  }
  SECTION("a pointer cut in half") {
    Packet p = wwwResponse(1, 0, 0);
    p.u8(0xC0);
    CHECK(parse(p.b) == ResponseError::kTruncatedName);
  }
  SECTION("a label of 64 octets (an extended label type)") {
    Packet p(1, flag::kQR, 1, 0, 0, 0);
    p.u8(64).text(std::string(64, 'a')).u8(0).u16(1).u16(1);
    CHECK(parse(p.b) == ResponseError::kBadLabel);
  }
  SECTION("a name over 255 octets through pointers") {
    // 4 x 63-octet labels = 256 octets with the root: each record adds a label to the previous.
    Packet p(1, flag::kQR, 0, 4, 0, 0);
    uint16_t prev = 0;
    for (int i = 0; i < 4; ++i) {
      const uint16_t at = static_cast<uint16_t>(p.size());
      p.u8(63).text(std::string(63, static_cast<char>('a' + i)));
      if (i == 0) {
        p.u8(0);
      } else {
        p.ptr(prev);
      }
      p.fixed(rrtype::kA, 4).raw({1, 2, 3, 4});
      prev = at;
    }
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kNameTooLong);
    CHECK(x.r.error_offset == prev);  // the fourth record's owner
  }
  SECTION("a name cut off by the end of the message") {
    Packet p(1, flag::kQR, 1, 0, 0, 0);
    p.u8(7).text("exam");
    CHECK(parse(p.b) == ResponseError::kTruncatedName);
  }
}

TEST_CASE("parseResponse refuses counts, records and RDATA the message does not hold",
          "[dns][response]") {
  SECTION("header") {
    CHECK(parse({0x12, 0x34, 0x81, 0x00, 0, 1}) == ResponseError::kTruncatedHeader);
    CHECK(
        parse(
            Packet(1, flag::kQR, 2, 0, 0, 0).name("a.").u16(1).u16(1).name("b.").u16(1).u16(1).b) ==
        ResponseError::kBadQuestionCount);
  }
  SECTION("more records counted than could fit") {
    Packet p = wwwResponse(1000, 0, 0);
    CHECK(parse(p.b) == ResponseError::kCountExceedsPacket);
  }
  SECTION("one record more counted than sent") {
    Packet p = wwwResponse(2, 0, 0);
    p.ptr(12).fixed(rrtype::kA, 4).raw({1, 2, 3, 4});
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kCountExceedsPacket);
    CHECK(x.r.error_offset == p.size());
  }
  SECTION("question cut before QCLASS") {
    Packet p(1, flag::kQR, 1, 0, 0, 0);
    p.name("www.example.com.").u16(1);
    CHECK(parse(p.b) == ResponseError::kTruncatedQuestion);
  }
  SECTION("record cut inside TYPE..RDLENGTH") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).raw({0, 1, 0, 1, 0, 0, 0, 60, 0});
    CHECK(parse(p.b) == ResponseError::kTruncatedRecord);
  }
  SECTION("RDATA cut short") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).fixed(rrtype::kA, 4).raw({192, 0, 2});
    CHECK(parse(p.b) == ResponseError::kTruncatedRdata);
  }
  SECTION("trailing octets") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).fixed(rrtype::kA, 4).raw({192, 0, 2, 1}).u8(0);
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kTrailingData);
    CHECK(x.r.error_offset == p.size() - 1);
    CHECK(responseErrorText(x.error) == "octets after the last record");
  }
  SECTION("more records than the caller's storage") {
    Packet p = wwwResponse(3, 0, 0);
    for (int i = 0; i < 3; ++i) p.ptr(12).fixed(rrtype::kA, 4).raw({192, 0, 2, 1});
    std::array<RecordView, 2> two;
    Response r;
    CHECK(parseResponse(p.b.data(), p.size(), two, r) == ResponseError::kTooManyRecords);
    std::array<RecordView, 3> three;
    CHECK(parseResponse(p.b.data(), p.size(), three, r) == ResponseError::kOk);
  }
  SECTION("the header is read even when the rest is refused") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).fixed(rrtype::kA, 4).raw({192});
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kTruncatedRdata);
    CHECK(x.r.id == 0x1234);
    CHECK(x.r.isResponse());
    CHECK(x.r.ancount == 1);
  }
}

TEST_CASE("parseResponse checks the names inside RDATA of the types that have them",
          "[dns][response]") {
  SECTION("an NS target with a forward pointer") {
    Packet p = wwwResponse(0, 1, 1);
    const uint16_t next = static_cast<uint16_t>(p.size() + 2 + 10 + 2);
    p.ptr(16).fixed(rrtype::kNS, 2).ptr(next);  // to the owner of the record after it
    p.name("ns.example.com.").fixed(rrtype::kA, 4).raw({192, 0, 2, 1});
    Parsed x(p.b);
    CHECK(x.error == ResponseError::kBadPointer);
    CHECK(x.r.error_offset == next - 14u);
  }
  SECTION("a CNAME target running out of its RDATA") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).fixed(rrtype::kCNAME, 3).raw({3, 'f', 'o', 'o', 0});
    p.fixed(rrtype::kA, 0);  // what follows would have made a name of it
    CHECK(parse(p.b) == ResponseError::kBadRdata);
  }
  SECTION("an MX without its exchange, and one with octets after it") {
    Packet p = wwwResponse(1, 0, 0);
    p.ptr(12).fixed(rrtype::kMX, 2).u16(10);
    CHECK(parse(p.b) == ResponseError::kBadRdata);
    Packet q = wwwResponse(1, 0, 0);
    q.ptr(12).fixed(rrtype::kMX, 5).u16(10).ptr(16).u8(0);
    CHECK(parse(q.b) == ResponseError::kBadRdata);
  }
  SECTION("an SOA short of its five numbers") {
    Packet p = wwwResponse(0, 1, 0);
    p.ptr(16).fixed(rrtype::kSOA, 4 + 16).ptr(16).ptr(16).u32(1).u32(2).u32(3).u32(4);
    CHECK(parse(p.b) == ResponseError::kBadRdata);
  }
  SECTION("types without names are opaque, pointer-like octets and all") {
    Packet p = wwwResponse(2, 0, 0);
    p.ptr(12).fixed(65280, 3).raw({0xC0, 0xFF, 0xFF});      // unknown type (RFC 3597)
    p.ptr(12).fixed(rrtype::kTXT, 3).raw({2, 0xC0, 0x0C});  // TXT is never decompressed
    Parsed x(p.b);
    REQUIRE(x.error == ResponseError::kOk);
    const auto an = x.r.section(Section::kAnswer);
    CHECK(an[0].type == 65280);
    CHECK(expanded(x.r, an[0]) == std::vector<uint8_t>{0xC0, 0xFF, 0xFF});
    CHECK(expanded(x.r, an[1]) == std::vector<uint8_t>{2, 0xC0, 0x0C});
    // Lowercasing touches names only: a TXT "AB" stays as it is.
    Packet q = wwwResponse(1, 0, 0);
    q.ptr(12).fixed(rrtype::kTXT, 3).raw({2, 'A', 'B'});
    Parsed y(q.b);
    REQUIRE(y.error == ResponseError::kOk);
    CHECK(expanded(y.r, y.r.section(Section::kAnswer)[0], true) ==
          std::vector<uint8_t>{2, 'A', 'B'});
  }
}

TEST_CASE("expandRdata writes SOA, MX, SRV and NAPTR names uncompressed", "[dns][response]") {
  Packet p = wwwResponse(3, 1, 0);
  p.ptr(12).fixed(rrtype::kMX, 4).u16(10).ptr(12);
  p.ptr(12).fixed(rrtype::kSRV, 8).u16(1).u16(2).u16(53).ptr(16);
  p.ptr(12)
      .fixed(rrtype::kNAPTR, 4 + 2 + 3 + 1 + 2)
      .u16(100)
      .u16(10)
      .raw({1, 'S'})
      .raw({2, 'x', 'y'})
      .u8(0)
      .ptr(16);
  p.ptr(16).fixed(rrtype::kSOA, 3 + 2 + 2 + 20).raw({2, 'n', 's'}).ptr(16).ptr(12);
  p.u32(2024120201).u32(7200).u32(3600).u32(1209600).u32(300);
  Parsed x(p.b);
  REQUIRE(x.error == ResponseError::kOk);
  const auto an = x.r.section(Section::kAnswer);
  NameBuf www, ex, ns;
  REQUIRE(fromText("www.example.com.", www));
  REQUIRE(fromText("example.com.", ex));
  REQUIRE(fromText("ns.example.com.", ns));
  std::vector<uint8_t> mx = {0, 10};
  mx.insert(mx.end(), www.data, www.data + www.length);
  CHECK(expanded(x.r, an[0], true) == mx);
  std::vector<uint8_t> srv = {0, 1, 0, 2, 0, 53};
  srv.insert(srv.end(), ex.data, ex.data + ex.length);
  CHECK(expanded(x.r, an[1], true) == srv);
  std::vector<uint8_t> naptr = {0, 100, 0, 10, 1, 'S', 2, 'x', 'y', 0};
  naptr.insert(naptr.end(), ex.data, ex.data + ex.length);
  CHECK(expanded(x.r, an[2], true) == naptr);
  const auto soa = expanded(x.r, x.r.section(Section::kAuthority)[0], true);
  REQUIRE(soa.size() == ns.length + www.length + 20u);
  CHECK(std::equal(ns.data, ns.data + ns.length, soa.begin()));
  CHECK(std::equal(www.data, www.data + www.length, soa.begin() + ns.length));
  CHECK(readU32(soa.data() + ns.length + www.length) == 2024120201);
  CHECK(readU32(soa.data() + soa.size() - 4) == 300);
}

TEST_CASE("parseResponse decodes OPT: payload, extended RCODE, version, DO, options",
          "[dns][response]") {
  Packet p = wwwResponse(0, 0, 1);
  const std::string text = "no reachable authority";
  const uint16_t rdlen =
      static_cast<uint16_t>((4 + 7) + (4 + 24) + (4 + 2 + text.size()) + (4 + 2));
  // EXTENDED-RCODE 1 with header RCODE 0: BADVERS (16). Version 1, DO set, one Z bit.
  p.u8(0).u16(rrtype::kOPT).u16(1232).u32(0x01018001).u16(rdlen);
  p.u16(edns_option::kClientSubnet).u16(7).u16(1).u8(24).u8(20).raw({192, 0, 2});
  p.u16(edns_option::kCookie).u16(24);
  for (int i = 0; i < 24; ++i) p.u8(static_cast<uint8_t>(i));
  p.u16(edns_option::kExtendedError).u16(static_cast<uint16_t>(2 + text.size())).u16(22).text(text);
  p.u16(edns_option::kExtendedError).u16(2).u16(18);  // a second one, no text
  Parsed x(p.b);
  REQUIRE(x.error == ResponseError::kOk);
  const Edns& e = x.r.edns;
  REQUIRE(e.present);
  CHECK(x.r.section(Section::kAdditional).empty());  // OPT is not a record of the section
  CHECK(x.r.arcount == 1);
  CHECK(e.udp_size == 1232);
  CHECK(e.extended_rcode == 1);
  CHECK(x.r.rcode() == rcode::kBadVers);
  CHECK(e.version == 1);
  CHECK(e.dnssec_ok);
  CHECK(e.flags == 0x8001);

  std::vector<uint16_t> codes;
  for (const EdnsOption& o : e) codes.push_back(o.code);
  CHECK(codes == std::vector<uint16_t>{8, 10, 15, 15});

  ClientSubnet ecs;
  REQUIRE(clientSubnet(e, ecs) == OptionStatus::kOk);
  CHECK(ecs.family == 1);
  CHECK(ecs.source_prefix == 24);
  CHECK(ecs.scope_prefix == 20);  // allowed in a response (RFC 7871 §7.3)
  CHECK(ecs.address[2] == 2);
  CookieView c;
  REQUIRE(cookie(e, c) == OptionStatus::kOk);
  CHECK(c.client[7] == 7);
  CHECK(c.server_length == 16);
  CHECK(c.server[0] == 8);
  ExtendedError ede;
  REQUIRE(extendedError(e, ede) == OptionStatus::kOk);
  CHECK(ede.info_code == 22);
  CHECK(ede.text == text);
  std::vector<uint16_t> infos;
  for (const EdnsOption& o : e) {
    ExtendedError each;
    if (decodeExtendedError(o, each)) infos.push_back(each.info_code);
  }
  CHECK(infos == std::vector<uint16_t>{22, 18});
}

TEST_CASE("EDNS option accessors: absent and malformed", "[dns][response]") {
  auto withOptions = [](std::initializer_list<uint8_t> options) {
    Packet p = wwwResponse(0, 0, 1);
    p.u8(0).u16(rrtype::kOPT).u16(512).u32(0).u16(static_cast<uint16_t>(options.size()));
    p.raw(options);
    return p.b;
  };
  // All three accessors on one message: the same status from each.
  auto statuses = [](const std::vector<uint8_t>& p, OptionStatus want) {
    Parsed x(p);
    REQUIRE(x.error == ResponseError::kOk);
    ExtendedError ede;
    ClientSubnet ecs;
    CookieView c;
    CHECK(extendedError(x.r.edns, ede) == want);
    CHECK(clientSubnet(x.r.edns, ecs) == want);
    CHECK(cookie(x.r.edns, c) == want);
  };
  statuses(withOptions({}), OptionStatus::kAbsent);
  const Parsed empty(withOptions({}));
  CHECK(empty.r.edns.begin() == empty.r.edns.end());
  // EDE of one octet, ECS with family 3, a client-only cookie (a response needs both).
  statuses(
      withOptions({0, 15, 0, 1, 0, 0, 8, 0, 4, 0, 3, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8}),
      OptionStatus::kMalformed);
  // An option longer than the OPT RDATA, and a lone half option header.
  CHECK(parse(withOptions({0, 15, 0, 9, 0, 0})) == ResponseError::kBadOptOptions);
  CHECK(parse(withOptions({0, 15})) == ResponseError::kBadOptOptions);
}

TEST_CASE("parseResponse enforces the OPT and TSIG placement rules", "[dns][response]") {
  auto opt = [](Packet& p) { p.u8(0).u16(rrtype::kOPT).u16(1232).u32(0).u16(0); };
  SECTION("two OPTs") {
    Packet p = wwwResponse(0, 0, 2);
    opt(p);
    opt(p);
    CHECK(parse(p.b) == ResponseError::kDuplicateOpt);
  }
  SECTION("OPT in the answer section") {
    Packet p = wwwResponse(1, 0, 0);
    opt(p);
    CHECK(parse(p.b) == ResponseError::kOptNotInAdditional);
  }
  SECTION("OPT owned by another name") {
    Packet p = wwwResponse(0, 0, 1);
    p.ptr(16).u16(rrtype::kOPT).u16(1232).u32(0).u16(0);
    CHECK(parse(p.b) == ResponseError::kOptOwnerNotRoot);
  }
  SECTION("TSIG before another record, and TSIG last") {
    auto tsig = [](Packet& p) {
      p.name("key.").fixed(rrtype::kTSIG, 3, 0, rrclass::kANY).raw({1, 2, 3});
    };
    Packet p = wwwResponse(0, 0, 2);
    tsig(p);
    opt(p);
    CHECK(parse(p.b) == ResponseError::kTsigNotLast);
    Packet q = wwwResponse(0, 0, 2);
    opt(q);
    tsig(q);
    Parsed x(q.b);
    REQUIRE(x.error == ResponseError::kOk);
    CHECK(x.r.edns.present);
    REQUIRE(x.r.has_tsig);
    CHECK(owner(x.r, x.r.tsig) == "key.");
    CHECK(x.r.tsig.rdlength == 3);
    CHECK(x.r.section(Section::kAdditional).empty());
  }
}

TEST_CASE("groupRrsets: same owner (any case), type and class, in order of appearance",
          "[dns][response]") {
  Packet p = wwwResponse(6, 0, 0);
  p.ptr(12).fixed(rrtype::kCNAME, 2, 300).ptr(16);          // 0 www CNAME (odd, but a set)
  p.ptr(16).fixed(rrtype::kA, 4, 300).raw({192, 0, 2, 1});  // 1 example.com A
  p.ptr(16).fixed(rrtype::kRRSIG, 3, 300).raw({0, 1, 2});   // 2 example.com RRSIG: kept
  p.raw({7, 'E', 'X', 'A', 'M', 'P', 'L', 'E'}).ptr(24);    // 3 EXAMPLE.com A, uncompressed
  p.fixed(rrtype::kA, 4, 60).raw({192, 0, 2, 2});
  p.ptr(16).fixed(rrtype::kA, 4, 300, rrclass::kCH).raw({1, 1, 1, 1});  // 4 other class
  p.ptr(16).fixed(rrtype::kA, 4, 120).raw({192, 0, 2, 3});              // 5 example.com A again
  Parsed x(p.b);
  REQUIRE(x.error == ResponseError::kOk);
  const auto [order, sets] = grouped(x.r, Section::kAnswer);
  REQUIRE(sets.size() == 4);
  CHECK(sets[0].type == rrtype::kCNAME);
  CHECK(sets[1].type == rrtype::kA);
  CHECK(sets[1].rclass == rrclass::kIN);
  REQUIRE(sets[1].count == 3);
  CHECK(order[sets[1].first] == 1);
  CHECK(order[sets[1].first + 1] == 3);
  CHECK(order[sets[1].first + 2] == 5);
  CHECK(sets[1].ttl == 60);
  CHECK(sets[2].type == rrtype::kRRSIG);
  CHECK(sets[3].rclass == rrclass::kCH);
  std::array<uint16_t, 5> short_order;
  std::array<RrsetView, 6> room;
  size_t n = 0;
  CHECK_FALSE(groupRrsets(x.r, Section::kAnswer, short_order, room, &n));
  CHECK(grouped(x.r, Section::kAuthority).sets.empty());
}

TEST_CASE("matchQuestion: ID, QR, and the question case-insensitively", "[dns][response]") {
  NameBuf q;
  REQUIRE(fromText("WWW.example.COM.", q));
  Packet p = wwwResponse(0, 0, 0);
  Parsed x(p.b);
  REQUIRE(x.error == ResponseError::kOk);
  CHECK(matchQuestion(x.r, 0x1234, q.data, rrtype::kA, rrclass::kIN) == QuestionMatch::kMatch);
  CHECK(matchQuestion(x.r, 0x1235, q.data, rrtype::kA, rrclass::kIN) == QuestionMatch::kOtherId);
  CHECK(matchQuestion(x.r, 0x1234, q.data, rrtype::kAAAA, rrclass::kIN) ==
        QuestionMatch::kOtherQuestion);
  CHECK(matchQuestion(x.r, 0x1234, q.data, rrtype::kA, rrclass::kCH) ==
        QuestionMatch::kOtherQuestion);
  NameBuf other;
  REQUIRE(fromText("www.example.org.", other));
  CHECK(matchQuestion(x.r, 0x1234, other.data, rrtype::kA, rrclass::kIN) ==
        QuestionMatch::kOtherQuestion);
  p.b[2] &= 0x7F;
  CHECK(matchQuestion(Parsed(p.b).r, 0x1234, q.data, rrtype::kA, rrclass::kIN) ==
        QuestionMatch::kNotResponse);
  CHECK(matchQuestion(Parsed(Packet(0x1234, flag::kQR | rcode::kFormErr, 0, 0, 0, 0).b).r, 0x1234,
                      q.data, rrtype::kA, rrclass::kIN) == QuestionMatch::kNoQuestion);
}

TEST_CASE("isAtOrBelow: the bailiwick test on names as received", "[dns][name]") {
  auto below = [](const char* name, const char* zone) {
    NameBuf n, z;
    REQUIRE(fromText(name, n));
    REQUIRE(fromText(zone, z));
    return isAtOrBelow(n, z);
  };
  CHECK(below("www.Example.com.", "example.COM."));
  CHECK(below("example.com.", "example.com."));
  CHECK(below("a.b.c.", "."));
  CHECK(below(".", "."));
  CHECK_FALSE(below("com.", "example.com."));
  CHECK_FALSE(below("badexample.com.", "example.com."));  // label boundaries, not a string suffix
  CHECK_FALSE(below("example.net.", "example.com."));
  CHECK_FALSE(below(".", "com."));
}

// Real responses written by dnspython 2.3 (Debian 12's python3-dnspython), with
// tests/unit/dns/response_fixtures.py: its compression, including a CNAME owner compressed to a
// question name that differs from it in case.
TEST_CASE("parseResponse reads responses dnspython wrote", "[dns][response]") {
  SECTION("a referral with glue") {
    const auto p = fromHex(
        "51518100000100000002000203777777076578616d706c6503636f6d0000010001c010000200010002a30000"
        "1401620c69616e612d73657276657273036e657400c010000200010002a30000040161c02fc04d0001000100"
        "02a3000004c72b8735c04d001c00010002a300001020010500008f00000000000000000053");
    Parsed x(p);
    REQUIRE(x.error == ResponseError::kOk);
    CHECK(x.r.section(Section::kAnswer).empty());
    const auto ns = x.r.section(Section::kAuthority);
    REQUIRE(ns.size() == 2);
    NameBuf target, zone;
    size_t end = 0;
    const auto rd = expanded(x.r, ns[1]);
    REQUIRE(parseName(rd.data(), rd.size(), 0, target, &end) == NameStatus::kOk);
    CHECK(end == rd.size());
    CHECK(toText(target.data) == "a.iana-servers.net.");
    CHECK(grouped(x.r, Section::kAdditional).sets.size() == 2);  // the glue's A and AAAA
    // The glue is below the NS targets, not below the delegated zone: out of its bailiwick.
    NameBuf glue;
    ownerName(x.r, x.r.section(Section::kAdditional)[0], glue);
    REQUIRE(fromText("example.com.", zone));
    CHECK_FALSE(isAtOrBelow(glue, zone));
    CHECK(isAtOrBelow(glue, target) == true);
  }
  SECTION("NXDOMAIN with the SOA") {
    const auto p = fromHex(
        "515185030001000000010000046e6f7065076578616d706c6503636f6d0000010001c0110006000100000e10"
        "002c026e73056963616e6e036f726700036e6f6303646e73c03178a5080400001c2000000e10001275000000"
        "0e10");
    Parsed x(p);
    REQUIRE(x.error == ResponseError::kOk);
    CHECK(x.r.rcode() == rcode::kNXDomain);
    const RecordView& soa = x.r.section(Section::kAuthority)[0];
    const auto rd = expanded(x.r, soa);
    NameBuf mname, rname;
    size_t end = 0;
    REQUIRE(parseName(rd.data(), rd.size(), 0, mname, &end) == NameStatus::kOk);
    REQUIRE(parseName(rd.data(), rd.size(), end, rname, &end) == NameStatus::kOk);
    CHECK(toText(rname.data) == "noc.dns.icann.org.");
    CHECK(rd.size() - end == 20);
    CHECK(readU32(rd.data() + end) == 2024081412);
  }
  SECTION("CNAME, MX with its RRSIG, EDE stale answer") {
    const auto p = fromHex(
        "515181000001000400000001044d61696c074578616d706c6503434f4d00000f0001c00c000500010000012c"
        "0005026d78c011c02e000f00010000012c0008000a036d7831c011c02e000f00010000012c00080014036d78"
        "32c011c02e002e00010000012c002c000f0d030000012c67748580674ba7003039076578616d706c6503636f"
        "6d00746573747369676e617475726500002904d0000000000012000f000e0003736572766564207374616c65");
    Parsed x(p);
    REQUIRE(x.error == ResponseError::kOk);
    const auto an = x.r.section(Section::kAnswer);
    REQUIRE(an.size() == 4);
    CHECK(owner(x.r, an[0]) == "Mail.Example.COM.");  // compressed to the question's spelling
    CHECK(an[3].type == rrtype::kRRSIG);
    CHECK(an[3].rdlength == 44);
    const auto sets = grouped(x.r, Section::kAnswer).sets;
    REQUIRE(sets.size() == 3);
    CHECK(sets[1].type == rrtype::kMX);
    CHECK(sets[1].count == 2);
    CHECK(sets[2].type == rrtype::kRRSIG);
    ExtendedError ede;
    REQUIRE(extendedError(x.r.edns, ede) == OptionStatus::kOk);
    CHECK(ede.info_code == 3);
    CHECK(ede.text == "served stale");
    NameBuf q;
    REQUIRE(fromText("mail.example.com.", q));
    CHECK(matchQuestion(x.r, 0x5151, q.data, rrtype::kMX, rrclass::kIN) == QuestionMatch::kMatch);
  }
}
