#include <catch2/catch.hpp>
#include <cstring>

#include "../testutil.h"
#include "dns/message.h"

using namespace meridian;
using namespace meridian::dns;

TEST_CASE("parseQuery reads question, EDNS, NSID and ECS") {
  test::QueryOptions o;
  o.edns = true;
  o.payload = 4096;
  o.dnssec_ok = true;
  o.options = {0, 3, 0, 0,                           // NSID, empty
               0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2};  // ECS 192.0.2.0/24
  auto p = test::makeQuery("WWW.example.com.", rrtype::kA, o);
  Query q;
  REQUIRE(parseQuery(p.data(), p.size(), q) == ParseStatus::kOk);
  CHECK(q.qtype == rrtype::kA);
  CHECK(toText(q.qname.data) == "WWW.example.com.");
  CHECK(toText(q.qname_lower.data) == "www.example.com.");
  CHECK(q.has_edns);
  CHECK(q.udp_payload == 4096);
  CHECK(q.dnssec_ok);
  CHECK(q.nsid_requested);
  REQUIRE(q.ecs.present);
  CHECK(q.ecs.family == 1);
  CHECK(q.ecs.source_prefix == 24);
  CHECK(q.ecs.address[2] == 2);
}

TEST_CASE("malformed queries are FORMERR, responses are dropped") {
  Query q;
  auto p = test::makeQuery("example.com.", rrtype::kA);
  SECTION("QR=1 is dropped") {
    p[2] |= 0x80;
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kDrop);
  }
  SECTION("short header is dropped") {
    CHECK(parseQuery(p.data(), 11, q) == ParseStatus::kDrop);
  }
  SECTION("QDCOUNT 2") {
    p[5] = 2;
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("QDCOUNT 0") {
    p[5] = 0;
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("truncated question") {
    CHECK(parseQuery(p.data(), p.size() - 2, q) == ParseStatus::kFormErr);
  }
  SECTION("trailing garbage") {
    p.push_back(0);
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("ARCOUNT beyond the data") {
    p[11] = 1;
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("unknown opcode is NOTIMP") {
    p[2] = static_cast<uint8_t>(p[2] | (3 << 3));
    CHECK(parseQuery(p.data(), p.size(), q) == ParseStatus::kNotImp);
  }
}

TEST_CASE("EDNS rules: two OPTs, bad ECS are FORMERR") {
  Query q;
  test::QueryOptions o;
  o.edns = true;
  auto p = test::makeQuery("example.com.", rrtype::kA, o);
  SECTION("two OPT records") {
    auto two = p;
    two.insert(two.end(), p.end() - 11, p.end());
    two[11] = 2;
    CHECK(parseQuery(two.data(), two.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("ECS with non-zero scope") {
    o.options = {0, 8, 0, 7, 0, 1, 24, 8, 192, 0, 2};
    auto e = test::makeQuery("example.com.", rrtype::kA, o);
    CHECK(parseQuery(e.data(), e.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("ECS with bits beyond the prefix") {
    o.options = {0, 8, 0, 7, 0, 1, 23, 0, 192, 0, 3};
    auto e = test::makeQuery("example.com.", rrtype::kA, o);
    CHECK(parseQuery(e.data(), e.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("ECS with the wrong address length") {
    o.options = {0, 8, 0, 8, 0, 1, 16, 0, 192, 0, 2, 0};
    auto e = test::makeQuery("example.com.", rrtype::kA, o);
    CHECK(parseQuery(e.data(), e.size(), q) == ParseStatus::kFormErr);
  }
  SECTION("option running past the OPT RDATA") {
    o.options = {0, 100, 0, 9, 1, 2};
    auto e = test::makeQuery("example.com.", rrtype::kA, o);
    CHECK(parseQuery(e.data(), e.size(), q) == ParseStatus::kFormErr);
  }
}

TEST_CASE("ResponseWriter compresses names and rolls back whole records") {
  uint8_t buf[512];
  ResponseWriter w;
  w.reset(buf, sizeof buf, 0);
  auto p = test::makeQuery("www.example.com.", rrtype::kA);
  Query q;
  REQUIRE(parseQuery(p.data(), p.size(), q) == ParseStatus::kOk);
  w.begin(q, true);
  const size_t after_question = w.size();
  NameBuf n;
  REQUIRE(fromText("mail.EXAMPLE.com.", n));
  REQUIRE(w.writeName(n.data));
  // "mail" literally, then a pointer to "example.com" inside the question (offset 16).
  CHECK(w.size() == after_question + 5 + 2);
  CHECK(buf[after_question + 5] == 0xC0);
  CHECK(buf[after_question + 6] == 16);
  const auto m = w.mark();
  REQUIRE(w.writeName(n.data));
  CHECK(w.size() == m.size + 2);  // the whole name is now a pointer
  w.rollback(m);
  CHECK(w.size() == m.size);

  ResponseWriter small;
  uint8_t tiny[40];
  small.reset(tiny, sizeof tiny, 0);
  small.begin(q, true);
  NameBuf longname;
  REQUIRE(fromText("a-rather-long-label-that-will-not-fit.net.", longname));
  CHECK_FALSE(small.writeName(longname.data));
}
