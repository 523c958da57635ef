// PowerDNS API JSON: the PATCH and zone-creation bodies parsed as PowerDNS 4.7.3 parses them
// (its error words and status codes, as tests/integration/pdns_api.py recorded them from a real
// pdns_server), record contents read into wire RDATA by the zone-file loader, TXT quoting, and
// the zone object and zones-list entry rendered from a ZoneContent in PowerDNS's shape.
// <optional> before Catch: GCC 12's operator<=> for optional does not compile after catch.hpp.
#include <optional>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../zones/content_testutil.h"
#include "api/pdns_json.h"
#include "dns/wire.h"
#include "zones/content.h"

// How Catch prints an ApiResult in a failed CHECK.
namespace Catch {
template <typename T>
struct StringMaker<meridian::api::pdns::ApiResult<T>> {
  static std::string convert(const meridian::api::pdns::ApiResult<T>& r) {
    return r.has_value() ? std::string("ok")
                         : "error " + std::to_string(r.error().status) + ": " + r.error().message;
  }
};
}  // namespace Catch

using namespace meridian;
using api::pdns::RRsetChange;
using test::contentOf;
using test::name;

namespace {

constexpr int64_t kNow = 1796140800;  // 2026-12-01T00:00:00Z

const dns::NameBuf& apex() {
  static const dns::NameBuf n = name("ext.example.");
  return n;
}

std::string patchBody(const std::string& rrset) {
  return R"({"rrsets": [)" + rrset + "]}";
}

// The error of a PATCH body for ext.example. ("" when it is accepted).
std::string patchError(const std::string& body, unsigned* status = nullptr) {
  auto r = api::pdns::parsePatch(body, apex(), kNow);
  if (r) return "";
  if (status != nullptr) *status = r.error().status;
  return r.error().message;
}

std::string replaceA(const std::string& owner, const std::string& content) {
  return patchBody(R"({"name": ")" + owner + R"(", "type": "A", "ttl": 300,
    "changetype": "REPLACE", "records": [{"content": ")" +
                   content + R"(", "disabled": false}]})");
}

std::string replaceOne(const std::string& type, const std::string& content_json) {
  return patchBody(R"({"name": "r.ext.example.", "type": ")" + type +
                   R"(", "ttl": 300, "changetype": "REPLACE", "records": [{"content": )" +
                   content_json + R"(, "disabled": false}]})");
}

const std::string kZone =
    "$ORIGIN ext.example.\n$TTL 3600\n"
    "@ SOA ns1 hostmaster 2026120105 10800 3600 604800 3600\n"
    "@ NS ns1\n@ NS ns2.other.example.\nns1 A 192.0.2.1\n"
    "lower 300 A 192.0.2.20\nWeb 60 TXT \"a\" \"b c\"\n";

}  // namespace

TEST_CASE("pdns: a PATCH of external-dns and lego parses into REPLACE and DELETE changes",
          "[api][pdns]") {
  auto r = api::pdns::parsePatch(R"({"rrsets": [
      {"name": "web.ext.example.", "type": "A", "ttl": 300, "changetype": "REPLACE",
       "records": [{"content": "192.0.2.10", "disabled": false},
                   {"content": "192.0.2.11", "disabled": false}]},
      {"name": "_acme-challenge.ext.example.", "type": "TXT", "kind": "Master", "ttl": 120,
       "changetype": "replace",
       "records": [{"content": "\"tok-1\"", "disabled": false, "name": "x", "type": "TXT",
                    "ttl": 120}]},
      {"name": "Old.EXT.example.", "type": "cname", "changetype": "Delete"}]})",
                                 apex(), kNow);
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  const RRsetChange& a = (*r)[0];
  CHECK(a.kind == RRsetChange::Kind::kReplace);
  CHECK(a.owner_text == "web.ext.example.");
  CHECK(a.type == dns::rrtype::kA);
  CHECK(a.ttl == 300);
  CHECK(a.has_records);
  CHECK_FALSE(a.has_comments);
  CHECK(a.rdata == std::vector<std::vector<uint8_t>>{{192, 0, 2, 10}, {192, 0, 2, 11}});
  CHECK((*r)[1].rdata == std::vector<std::vector<uint8_t>>{{5, 't', 'o', 'k', '-', '1'}});
  // Names in lower case, as PowerDNS keeps them; type and changetype in any case.
  CHECK((*r)[2].kind == RRsetChange::Kind::kDelete);
  CHECK((*r)[2].owner_text == "old.ext.example.");
  CHECK((*r)[2].type == dns::rrtype::kCNAME);
  // The spec ZoneContent::replace takes.
  const zones::RRsetSpec spec = a.spec();
  CHECK(dns::toText(spec.owner.data) == "web.ext.example.");
  CHECK(spec.rdata.size() == 2);
}

TEST_CASE("pdns: the PATCH body errors are PowerDNS's words and status", "[api][pdns]") {
  unsigned status = 0;
  CHECK(patchError("{not json", &status) == "Bad Request");
  CHECK(status == 400);
  CHECK(patchError("", &status) == "Bad Request");
  CHECK(patchError("{}", &status) == "No rrsets given in update request");
  CHECK(status == 422);
  CHECK(patchError(R"({"rrsets": {}})") == "No rrsets given in update request");
  CHECK(patchError("[]") == "No rrsets given in update request");
  CHECK(patchError(patchBody("1")) == "Key 'changetype' not present or not a String");
  CHECK(patchError(patchBody(R"({"type": "A"})")) ==
        "Key 'changetype' not present or not a String");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "type": "A"})")) ==
        "Key 'name' not present or not a String");
  CHECK(patchError(patchBody(R"({"changetype": "DELETE", "name": "x.ext.example."})")) ==
        "Key 'type' not present or not a String");
  CHECK(patchError(patchBody(R"({"changetype": "UPSERT", "name": "x.ext.example.",
      "type": "A"})")) == "Changetype not understood");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "name": "x.ext.example.",
      "type": "A", "records": [{"content": "192.0.2.1", "disabled": false}]})")) ==
        "Key 'ttl' not an Integer or not present");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "name": "x.ext.example.",
      "type": "A", "ttl": 60, "records": [{"disabled": false}]})")) ==
        "Key 'content' not present or not a String");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "name": "x.ext.example.",
      "type": "A", "ttl": 60, "records": [{"content": "192.0.2.1", "disabled": "no"}]})")) ==
        "Key 'disabled' not present or not a Bool");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "name": "x.ext.example.",
      "type": "A", "ttl": 60, "records": {}})")) == "No change for RRset x.ext.example. IN A");
  CHECK(patchError(patchBody(R"({"changetype": "REPLACE", "name": "x.ext.example.",
      "type": "A", "ttl": 60, "records": [], "comments": [{"content": "c"}]})")) ==
        "Key 'account' not present or not a String");
  CHECK(patchError(replaceA("bad.ext.example", "192.0.2.1")) ==
        "DNS Name 'bad.ext.example' is not canonical");
  CHECK(patchError(replaceA("bad.elsewhere.example.", "192.0.2.1")) ==
        "RRset bad.elsewhere.example. IN A: Name is out of zone");
  CHECK(patchError(patchBody(R"({"name": "ty.ext.example.", "type": "FOO", "ttl": 300,
      "changetype": "REPLACE", "records": [{"content": "1", "disabled": false}]})")) ==
        "RRset ty.ext.example. IN FOO: unknown type given");
  CHECK(patchError(patchBody(R"({"name": "x.ext.example.", "type": "SOA", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "a. b. 1 2 3 4 5"}]})")) ==
        "Record x.ext.example. IN SOA is only allowed at apex");
  CHECK(patchError(patchBody(R"({"name": "ext.example.", "type": "SOA", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "a. b. 1 2 3 4 5"},
      {"content": "a. b. 2 2 3 4 5"}]})")) == "RRset ext.example. IN SOA has more than one record");
  CHECK(patchError(patchBody(R"({"name": "dup.ext.example.", "type": "A", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "192.0.2.1"}, {"content": "192.0.2.1"}]})")) ==
        "Duplicate record in RRset dup.ext.example. IN A with content \"192.0.2.1\"");
  CHECK(patchError(R"({"rrsets": [
      {"name": "two.ext.example.", "type": "A", "ttl": 60, "changetype": "REPLACE",
       "records": [{"content": "192.0.2.1"}]},
      {"name": "TWO.ext.example.", "type": "A", "ttl": 60, "changetype": "REPLACE",
       "records": [{"content": "192.0.2.2"}]}]})") ==
        "Duplicate RRset two.ext.example. IN A with changetype: REPLACE");
  // Meridian refuses what PowerDNS stores wrapped (RFC 2181 §8), naming the key.
  CHECK(patchError(patchBody(R"({"name": "neg.ext.example.", "type": "A", "ttl": -5,
      "changetype": "REPLACE", "records": [{"content": "192.0.2.1"}]})")) ==
        "RRset neg.ext.example. IN A: Key 'ttl' out of range (0 to 2147483647)");
}

TEST_CASE("pdns: record contents in presentation format, names with their trailing dot",
          "[api][pdns]") {
  CHECK(patchError(replaceOne("CNAME", R"("web.ext.example.")")).empty());
  CHECK(patchError(replaceOne("MX", R"("10 mx.ext.example.")")).empty());
  CHECK(patchError(replaceOne("AAAA", R"("2001:DB8::1")")).empty());  // case is not a form
  CHECK(patchError(replaceOne("SRV", R"("10 20 5060 sip.ext.example.")")).empty());
  CHECK(patchError(replaceOne("CAA", R"("0 issue \"letsencrypt.org\"")")).empty());
  CHECK(patchError(replaceOne("PTR", R"("host1.ext.example.")")).empty());
  CHECK(patchError(replaceOne("CNAME", R"("web.ext.example")")) ==
        "Record r.ext.example./CNAME 'web.ext.example': Not in expected format (parsed as "
        "'web.ext.example.')");
  CHECK(patchError(replaceOne("MX", R"("10 mail.example")")) ==
        "Record r.ext.example./MX '10 mail.example': Not in expected format (parsed as "
        "'10 mail.example.')");
  CHECK(patchError(replaceOne("A", R"(" 192.0.2.1")")) ==
        "Record r.ext.example./A ' 192.0.2.1': Not in expected format (parsed as '192.0.2.1')");
  CHECK(patchError(replaceOne("A", R"("")")) ==
        "Record r.ext.example./A '': Parsing record content (try 'pdnsutil check-zone'): "
        "missing field at the end of record content ''");
  // The reason after PowerDNS's prefix is the zone-file loader's.
  const std::string bad_a = patchError(replaceOne("A", R"("1.2.3")"));
  CHECK(bad_a.rfind("Record r.ext.example./A '1.2.3': Parsing record content (try 'pdnsutil "
                    "check-zone'): ",
                    0) == 0);
  CHECK(bad_a.size() > 80);
  CHECK_FALSE(patchError(replaceOne("AAAA", R"("not-an-address")")).empty());
  CHECK_FALSE(patchError(replaceOne("PTR", R"("a. b.")")).empty());
  // A line break cannot smuggle a second zone-file line ($INCLUDE) into the loader.
  CHECK_FALSE(patchError(replaceOne("A", R"("192.0.2.1\n$INCLUDE /etc/passwd")")).empty());
  // Classless in-addr.arpa owners and targets (RFC 2317).
  auto rev = api::pdns::parsePatch(
      patchBody(R"({"name": "1.2.0.192.in-addr.arpa.", "type": "CNAME", "ttl": 300,
      "changetype": "REPLACE", "records": [{"content": "1.0/26.2.0.192.in-addr.arpa."}]})"),
      name("2.0.192.in-addr.arpa."), kNow);
  REQUIRE(rev);
  CHECK(api::pdns::recordContent(dns::rrtype::kCNAME, (*rev)[0].rdata[0]) ==
        "1.0/26.2.0.192.in-addr.arpa.");
}

TEST_CASE("pdns: TXT quoting as PowerDNS accepts it", "[api][pdns]") {
  const std::string prefix = "Record r.ext.example./TXT ";
  const std::string parsing = "Parsing record content (try 'pdnsutil check-zone'): ";
  CHECK(patchError(replaceOne("TXT", R"("unquoted text")")) ==
        prefix + "'unquoted text': " + parsing +
            "Data field in DNS should start with quote (\") at position 0 of 'unquoted text'");
  CHECK(patchError(replaceOne("TXT", R"("\"unterminated")")) ==
        prefix + "'\"unterminated': " + parsing +
            "Data field in DNS should end on a quote (\") in '\"unterminated'");
  CHECK(patchError(replaceOne("TXT", R"("\"a\"\"b\"")")) ==
        prefix + "'\"a\"\"b\"': Not in expected format (parsed as '\"a\" \"b\"')");
  CHECK(patchError(replaceOne("TXT", R"("\"a\"  \"b\"")")) ==
        prefix + "'\"a\"  \"b\"': Not in expected format (parsed as '\"a\" \"b\"')");
  CHECK(patchError(replaceOne("TXT", R"("\"a\" \"b\" ")")) ==
        prefix + "'\"a\" \"b\" ': Not in expected format (parsed as '\"a\" \"b\"')");

  auto r = api::pdns::parsePatch(
      patchBody(R"({"name": "t.ext.example.", "type": "TXT", "ttl": 60, "changetype": "REPLACE",
      "records": [{"content": "\"a\" \"b c\""}, {"content": "\"with \\\"quote\\\" and ; semi\""},
                  {"content": "\"caf\u00e9 \\010\""}, {"content": "\"\""}]})"),
      apex(), kNow);
  REQUIRE(r);
  const auto& rd = (*r)[0].rdata;
  REQUIRE(rd.size() == 4);
  CHECK(rd[0] == std::vector<uint8_t>{1, 'a', 3, 'b', ' ', 'c'});
  CHECK(api::pdns::recordContent(dns::rrtype::kTXT, rd[0]) == "\"a\" \"b c\"");
  CHECK(api::pdns::recordContent(dns::rrtype::kTXT, rd[1]) == "\"with \\\"quote\\\" and ; semi\"");
  // UTF-8 shown as it is, control octets as \DDD (PowerDNS's form).
  CHECK(api::pdns::recordContent(dns::rrtype::kTXT, rd[2]) == "\"caf\xC3\xA9 \\010\"");
  CHECK(rd[3] == std::vector<uint8_t>{0});
  CHECK(api::pdns::recordContent(dns::rrtype::kTXT, rd[3]) == "\"\"");

  // Longer than 255 octets: split into strings of 255 on the wire (RFC 1035 §3.3.14).
  auto longer = api::pdns::parsePatch(
      replaceOne("TXT", "\"\\\"" + std::string(300, 'x') + "\\\"\""), apex(), kNow);
  REQUIRE(longer);
  const auto& wire = (*longer)[0].rdata[0];
  REQUIRE(wire.size() == 302);
  CHECK(wire[0] == 255);
  CHECK(wire[256] == 45);
}

TEST_CASE("pdns: comments and disabled records are kept apart from the served data",
          "[api][pdns]") {
  auto r = api::pdns::parsePatch(patchBody(R"({"name": "mail.ext.example.", "type": "MX",
      "ttl": 300, "changetype": "REPLACE",
      "records": [{"content": "10 mx1.ext.example.", "disabled": false},
                  {"content": "20 mx2.ext.example.", "disabled": true}],
      "comments": [{"content": "primary mail", "account": "ops"},
                   {"content": "old", "account": "", "modified_at": 1700000000}]})"),
                                 apex(), kNow);
  REQUIRE(r);
  const RRsetChange& mx = (*r)[0];
  CHECK(mx.rdata.size() == 1);
  CHECK(mx.disabled.size() == 1);
  REQUIRE(mx.comments.size() == 2);
  CHECK(mx.comments[0].content == "primary mail");
  CHECK(mx.comments[0].account == "ops");
  CHECK(mx.comments[0].modified_at == kNow);
  CHECK(mx.comments[1].modified_at == 1700000000);

  // Comments only: the records are left as they are.
  auto only = api::pdns::parsePatch(patchBody(R"({"name": "mail.ext.example.", "type": "MX",
      "changetype": "REPLACE", "comments": [{"content": "c", "account": "a"}]})"),
                                    apex(), kNow);
  REQUIRE(only);
  CHECK_FALSE((*only)[0].has_records);
  CHECK((*only)[0].has_comments);
}

TEST_CASE("pdns: CNAME beside other data is refused as PowerDNS does, change by change",
          "[api][pdns]") {
  const auto content = contentOf("ext.example", kZone);
  auto changes = [](const std::string& body) {
    auto r = api::pdns::parsePatch(body, apex(), kNow);
    REQUIRE(r);
    return *r;
  };
  auto conflict = [&](const std::string& body) {
    auto r = api::pdns::checkConflicts(content, changes(body));
    return r ? std::string() : r.error().message;
  };
  const std::string cname_lower = R"({"name": "lower.ext.example.", "type": "CNAME", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "web.ext.example."}]})";
  CHECK(conflict(patchBody(cname_lower)) ==
        "RRset lower.ext.example. IN CNAME: Conflicts with pre-existing RRset");
  // octoDNS: DELETE sorted before REPLACE turns an A into a CNAME in one request.
  CHECK(conflict(R"({"rrsets": [{"name": "lower.ext.example.", "type": "A",
      "changetype": "DELETE"}, )" +
                 cname_lower + "]}")
            .empty());
  // CNAME then A at a new name: the A is the one that conflicts.
  CHECK(conflict(R"({"rrsets": [{"name": "w.ext.example.", "type": "CNAME", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "x.example."}]},
      {"name": "w.ext.example.", "type": "A", "ttl": 60, "changetype": "REPLACE",
       "records": [{"content": "192.0.2.1"}]}]})") ==
        "RRset w.ext.example. IN A: Conflicts with pre-existing RRset");
  // Owner spelled in another case in the file (Web) still meets the change (web).
  CHECK(conflict(R"({"rrsets": [{"name": "web.ext.example.", "type": "CNAME", "ttl": 60,
      "changetype": "REPLACE", "records": [{"content": "x.example."}]}]})") ==
        "RRset web.ext.example. IN CNAME: Conflicts with pre-existing RRset");
}

TEST_CASE("pdns: the zone object and the zones-list entry have PowerDNS 4.7's members",
          "[api][pdns]") {
  const auto content = contentOf("ext.example", kZone);
  api::pdns::ZoneMeta meta;
  meta.kind = "Master";
  api::pdns::ExtrasMap extras;
  extras[{"lower.ext.example.", dns::rrtype::kA}].comments.push_back({"note", "ops", 1700000000});
  extras[{"lower.ext.example.", dns::rrtype::kA}].disabled.push_back({192, 0, 2, 21});
  const auto z = api::pdns::zoneObject(content, meta, &extras);
  const std::string text = boost::json::serialize(z);
  // Members in PowerDNS's (alphabetical) order, no "type" member (4.7 has none).
  CHECK(text.rfind(R"({"account":"","api_rectify":false,"catalog":"","dnssec":false,)"
                   R"("edited_serial":2026120105,"id":"ext.example.","kind":"Master",)"
                   R"("last_check":0,"master_tsig_key_ids":[],"masters":[],)"
                   R"("name":"ext.example.","notified_serial":0,"nsec3narrow":false,)"
                   R"("nsec3param":"","rrsets":[)",
                   0) == 0);
  CHECK(text.find(
            R"("serial":2026120105,"slave_tsig_key_ids":[],"soa_edit":"",)"
            R"("soa_edit_api":"DEFAULT","url":"/api/v1/servers/localhost/zones/ext.example."})") !=
        std::string::npos);
  // rrsets in canonical order, owners in lower case, TXT quoted, comments and disabled records.
  CHECK(text.find(R"({"comments":[{"account":"ops","content":"note","modified_at":1700000000}],)"
                  R"("name":"lower.ext.example.","records":[{"content":"192.0.2.20",)"
                  R"("disabled":false},{"content":"192.0.2.21","disabled":true}],)"
                  R"("ttl":300,"type":"A"})") != std::string::npos);
  CHECK(text.find(R"({"comments":[],"name":"web.ext.example.","records":[{"content":)"
                  R"("\"a\" \"b c\"","disabled":false}],"ttl":60,"type":"TXT"})") !=
        std::string::npos);
  CHECK(text.find(R"("records":[{"content":"ns1.ext.example.","disabled":false},)"
                  R"({"content":"ns2.other.example.","disabled":false}],"ttl":3600,"type":"NS")") !=
        std::string::npos);
  CHECK_FALSE(api::pdns::zoneObject(content, meta, nullptr, false).contains("rrsets"));

  const std::string entry = boost::json::serialize(api::pdns::zoneListEntry(content, meta));
  CHECK(entry == R"({"account":"","catalog":"","dnssec":false,"edited_serial":2026120105,)"
                 R"("id":"ext.example.","kind":"Master","last_check":0,"masters":[],)"
                 R"("name":"ext.example.","notified_serial":0,"serial":2026120105,)"
                 R"("url":"/api/v1/servers/localhost/zones/ext.example."})");
  CHECK(api::pdns::errorBody("Not Found") == R"({"error":"Not Found"})");
}

TEST_CASE("pdns: zone ids, '/' as =2F (RFC 2317 zones), and type names", "[api][pdns]") {
  CHECK(api::pdns::zoneId("0/26.2.0.192.in-addr.arpa.") == "0=2F26.2.0.192.in-addr.arpa.");
  CHECK(api::pdns::zoneId("ext.example.") == "ext.example.");
  auto n = api::pdns::zoneNameFromId("0=2F26.2.0.192.in-addr.arpa.");
  REQUIRE(n);
  CHECK(dns::toText(n->data) == "0/26.2.0.192.in-addr.arpa.");
  auto no_dot = api::pdns::zoneNameFromId("Acme.Example");
  REQUIRE(no_dot);
  CHECK(dns::toText(no_dot->data) == "acme.example.");
  CHECK_FALSE(api::pdns::zoneNameFromId(""));
  CHECK(api::pdns::typeFromText("A") == dns::rrtype::kA);
  CHECK(api::pdns::typeFromText("aaaa") == dns::rrtype::kAAAA);
  CHECK(api::pdns::typeFromText("Txt") == dns::rrtype::kTXT);
  CHECK(api::pdns::typeFromText("TYPE65280") == 65280);
  CHECK(api::pdns::typeFromText("FOO") == 0);
  CHECK(api::pdns::typeFromText("TYPE0") == 0);
  CHECK(api::pdns::typeFromText("TYPE99999") == 0);
}

TEST_CASE("pdns: a zone creation as external-dns, octoDNS and terraform send it", "[api][pdns]") {
  auto z = api::pdns::parseZoneCreate(R"({"name": "ext.example.", "kind": "Native",
      "nameservers": ["ns1.ext.example.", "ns2.other.example."]})",
                                      kNow);
  REQUIRE(z);
  CHECK(z->name_text == "ext.example.");
  CHECK(z->meta.kind == "Native");
  CHECK(z->meta.soa_edit_api == "DEFAULT");
  const uint32_t serial = api::pdns::creationSerial(z->meta.soa_edit_api, kNow);
  CHECK(serial == 2026120101);
  auto content = api::pdns::initialContent(*z, serial);
  REQUIRE(content);
  CHECK(content->serial() == 2026120101u);
  const std::string text = boost::json::serialize(api::pdns::zoneObject(*content, z->meta));
  CHECK(text.find(R"("content":"a.misconfigured.dns.server.invalid. hostmaster.ext.example. )"
                  R"(2026120101 10800 3600 604800 3600")") != std::string::npos);
  CHECK(text.find(R"({"content":"ns2.other.example.","disabled":false}],"ttl":3600,"type":"NS")") !=
        std::string::npos);

  // octoDNS: its NS in the rrsets, serial 0 with INCEPTION-INCREMENT, "master" in any case.
  auto octo = api::pdns::parseZoneCreate(R"({"name": "octo.example.", "kind": "master",
      "masters": [], "nameservers": [], "soa_edit_api": "INCEPTION-INCREMENT", "serial": 0,
      "rrsets": [{"name": "octo.example.", "type": "NS", "ttl": 3600, "changetype": "REPLACE",
                  "records": [{"content": "ns1.octo.example.", "disabled": false}]},
                 {"name": "www.octo.example.", "type": "A", "ttl": 300, "changetype": "REPLACE",
                  "records": [{"content": "192.0.2.40", "disabled": false}]}]})",
                                         kNow);
  REQUIRE(octo);
  CHECK(octo->meta.kind == "Master");
  CHECK(api::pdns::creationSerial(octo->meta.soa_edit_api, kNow) == 0);
  auto octo_content = api::pdns::initialContent(*octo, 0);
  REQUIRE(octo_content);
  CHECK(octo_content->rrsetCount() == 3);  // SOA, NS, A

  // PowerDNS 4.7 takes an unknown kind for Native.
  auto weird = api::pdns::parseZoneCreate(
      R"({"name": "kind.example.", "kind": "Weird", "nameservers": []})", kNow);
  REQUIRE(weird);
  CHECK(weird->meta.kind == "Native");

  auto error = [](const std::string& body) {
    auto r = api::pdns::parseZoneCreate(body, kNow);
    return r ? std::string() : r.error().message;
  };
  CHECK(error(R"({"kind": "Native", "nameservers": []})") ==
        "Key 'name' not present or not a String");
  CHECK(error(R"({"name": "nodot.example", "kind": "Native", "nameservers": []})") ==
        "DNS Name 'nodot.example' is not canonical");
  CHECK(error(R"({"name": "n2.example.", "kind": "Native", "nameservers": ["ns1.n2.example"]})") ==
        "Nameserver is not canonical: 'ns1.n2.example'");
  CHECK(error(R"({"name": "n4.example.", "kind": "Native", "nameservers": ["ns1.n4.example."],
      "rrsets": [{"name": "n4.example.", "type": "NS", "ttl": 60,
                  "records": [{"content": "ns2.n4.example."}]}]})") ==
        "Nameservers list MUST NOT be mixed with zone-level NS in rrsets");
  CHECK(error(R"({"name": "n5.example.", "kind": "Native", "nameservers": [],
      "rrsets": [{"name": "a.n5.example.", "type": "A", "ttl": 60,
                  "records": [{"content": "1.2.3"}]}]})")
            .rfind("Record a.n5.example./A '1.2.3': Parsing record content", 0) == 0);
  CHECK(error("{not json") == "Bad Request");
}

// Every PATCH and zone-creation body of the replay whose outcome depends on the body alone, with
// the status and error PowerDNS 4.7.3 gave (or the replay's Meridian expectation where Meridian
// differs on purpose): tests/unit/api/pdns_cases.json, written by `pdns_api.py --write-cases`
// from the same steps the pdns_api test checks against a real pdns_server.
TEST_CASE("pdns: the replay's bodies get PowerDNS's status and error", "[api][pdns]") {
  std::ifstream in(std::string(MERIDIAN_SOURCE_DIR) + "/tests/unit/api/pdns_cases.json");
  REQUIRE(in);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const boost::json::array cases = boost::json::parse(text).as_array();
  CHECK(cases.size() >= 60);
  for (const boost::json::value& v : cases) {
    const boost::json::object& c = v.as_object();
    const std::string what(c.at("what").as_string());
    const std::string body(c.at("body").as_string());
    unsigned status = 0;
    std::string error;
    if (c.at("method").as_string() == "PATCH") {
      const auto apex = api::pdns::zoneNameFromId(std::string(c.at("zone").as_string()));
      REQUIRE(apex);
      auto r = api::pdns::parsePatch(body, *apex, kNow);
      status = r ? 204 : r.error().status;
      if (!r) error = r.error().message;
    } else {
      auto r = api::pdns::parseZoneCreate(body, kNow);
      if (r) {
        auto content = api::pdns::initialContent(*r, 1);
        status = content ? 201 : content.error().status;
        if (!content) error = content.error().message;
      } else {
        status = r.error().status;
        error = r.error().message;
      }
    }
    INFO(what << ": " << body << " -> " << status << " " << error);
    CHECK(status == c.at("status").to_number<unsigned>());
    if (const auto* want = c.at("error").if_string()) {
      const std::string w(*want);
      if (w.rfind("$prefix:", 0) == 0) {
        CHECK(error.rfind(w.substr(8), 0) == 0);
      } else if (w != "$str") {
        CHECK(error == w);
      }
    }
  }
}

TEST_CASE("pdns: zone metadata kinds and bodies as PowerDNS takes them", "[api][pdns]") {
  auto put = [](const std::string& kind, const std::string& body) {
    auto r = api::pdns::parseMetadataPut(body, kind);
    return r ? std::string() : r.error().message;
  };
  CHECK(put("ALLOW-AXFR-FROM", R"({"metadata": ["AUTO-NS"]})").empty());
  CHECK(put("X-OWNER", R"({"metadata": ["a", "b"]})").empty());
  CHECK(put("SOA-EDIT", R"({"metadata": ["EPOCH"]})").empty());
  CHECK(put("ALSO-NOTIFY", R"({"metadata": []})").empty());
  for (const char* managed :
       {"SOA-EDIT-API", "NSEC3PARAM", "NSEC3NARROW", "PRESIGNED", "API-RECTIFY", "TSIG-ALLOW-AXFR",
        "AXFR-MASTER-TSIG", "LUA-AXFR-SCRIPT", "FOO", "also-notify", "X-"}) {
    CHECK(put(managed, R"({"metadata": ["1"]})") ==
          "Unsupported metadata kind '" + std::string(managed) + "'");
  }
  CHECK(put("ALSO-NOTIFY", R"({"metadata": "192.0.2.1"})") ==
        "metadata is not specified or not an array");
  CHECK(put("ALSO-NOTIFY", "{}") == "metadata is not specified or not an array");
  CHECK(put("ALSO-NOTIFY", R"({"metadata": [1]})") == "metadata must be strings");
  CHECK(put("ALSO-NOTIFY", "{not json") == "Bad Request");

  auto posted = api::pdns::parseMetadataPost(R"({"kind": "X-NOTE", "metadata": ["n"]})");
  REQUIRE(posted);
  CHECK(boost::json::serialize(api::pdns::metadataJson(*posted)) ==
        R"({"kind":"X-NOTE","metadata":["n"],"type":"Metadata"})");
  auto no_kind = api::pdns::parseMetadataPost(R"({"metadata": ["n"]})");
  REQUIRE_FALSE(no_kind);
  CHECK(no_kind.error().message == "kind is not specified or not a string");
  CHECK(no_kind.error().status == 422);
}

TEST_CASE("pdns: comments and disabled records follow REPLACE and DELETE", "[api][pdns]") {
  auto changes = [](const std::string& rrsets) {
    auto r = api::pdns::parsePatch(R"({"rrsets": [)" + rrsets + "]}", apex(), kNow);
    REQUIRE(r);
    return *r;
  };
  const auto content = contentOf("ext.example", kZone);
  api::pdns::ExtrasMap extras;
  api::pdns::applyExtras(extras, changes(R"({"name": "mail.ext.example.", "type": "MX",
      "ttl": 300, "changetype": "REPLACE",
      "records": [{"content": "10 mx1.ext.example.", "disabled": true}],
      "comments": [{"content": "primary mail", "account": "ops"}]})"));
  const std::pair<std::string, uint16_t> key{"mail.ext.example.", dns::rrtype::kMX};
  REQUIRE(extras.count(key) == 1);
  CHECK(extras[key].disabled.size() == 1);
  CHECK(extras[key].comments.size() == 1);
  // Every record disabled: no served RRset, shown with its TTL, its comment and disabled: true.
  CHECK(boost::json::serialize(api::pdns::zoneObject(content, {}, &extras))
            .find(R"({"comments":[{"account":"ops","content":"primary mail","modified_at":)" +
                  std::to_string(kNow) +
                  R"(}],"name":"mail.ext.example.","records":[{"content":"10 mx1.ext.example.",)"
                  R"("disabled":true}],"ttl":300,"type":"MX"})") != std::string::npos);
  // Comments only: the disabled records stay.
  api::pdns::applyExtras(extras, changes(R"({"name": "mail.ext.example.", "type": "MX",
      "changetype": "REPLACE", "comments": [{"content": "changed", "account": "ops"}]})"));
  CHECK(extras[key].disabled.size() == 1);
  CHECK(extras[key].comments.at(0).content == "changed");
  // Records only, none disabled: the comments stay.
  api::pdns::applyExtras(extras, changes(R"({"name": "mail.ext.example.", "type": "MX",
      "ttl": 300, "changetype": "REPLACE", "records": [{"content": "10 mx1.ext.example."}]})"));
  CHECK(extras[key].disabled.empty());
  CHECK(extras[key].comments.size() == 1);
  // DELETE drops both.
  api::pdns::applyExtras(extras, changes(R"({"name": "mail.ext.example.", "type": "MX",
      "changetype": "DELETE"})"));
  CHECK(extras.empty());
}

TEST_CASE("pdns: search-data over names, contents and comments", "[api][pdns]") {
  const auto ext = contentOf("ext.example", kZone);
  const auto acme = contentOf("acme.example",
                              "$ORIGIN acme.example.\n"
                              "@ 3600 SOA ns1 hostmaster 1 10800 3600 604800 3600\n"
                              "@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n");
  api::pdns::ExtrasMap extras;
  extras[{"lower.ext.example.", dns::rrtype::kA}].comments.push_back({"changed comment", "ops", 1});
  const std::vector<api::pdns::SearchZone> zones{{&ext, &extras}, {&acme, nullptr}};
  auto search = [&](std::string_view q, size_t max = 10, std::string_view type = "all") {
    auto r = api::pdns::searchData(zones, q, max, type);
    REQUIRE(r);
    return boost::json::serialize(*r);
  };
  CHECK(search("lo?er*") ==
        R"([{"content":"192.0.2.20","disabled":false,"name":"lower.ext.example.",)"
        R"("object_type":"record","ttl":300,"type":"A","zone":"ext.example.",)"
        R"("zone_id":"ext.example."},{"content":"changed comment","name":"lower.ext.example.",)"
        R"("object_type":"comment","type":"A","zone":"ext.example.","zone_id":"ext.example."}])");
  CHECK(search("192.0.2.20", 10, "record") == search("LOWER*", 10, "record"));
  CHECK(search("acme.example", 10, "zone") ==
        R"([{"name":"acme.example.","object_type":"zone","zone_id":"acme.example."}])");
  CHECK(search("acme.example.") == "[]");  // names are matched without their trailing dot
  // max counts zones, records and comments each.
  const auto many = boost::json::parse(search("*example*", 1)).as_array();
  CHECK(many.size() == 3);
  auto blank = api::pdns::searchData(zones, "", 10);
  REQUIRE_FALSE(blank);
  CHECK(blank.error().message == "Query q can't be blank");
}

TEST_CASE("pdns: the server object, API versions, statistics and results", "[api][pdns]") {
  CHECK(boost::json::serialize(api::pdns::apiVersions()) == R"([{"url":"/api/v1","version":1}])");
  CHECK(boost::json::serialize(api::pdns::serverObject("4.7.0-meridian0.3.0")) ==
        R"({"autoprimaries_url":"/api/v1/servers/localhost/autoprimaries{/autoprimary}",)"
        R"("config_url":"/api/v1/servers/localhost/config{/config_setting}",)"
        R"("daemon_type":"authoritative","id":"localhost","type":"Server",)"
        R"("url":"/api/v1/servers/localhost","version":"4.7.0-meridian0.3.0",)"
        R"("zones_url":"/api/v1/servers/localhost/zones{/zone}"})");
  const std::vector<std::pair<std::string, uint64_t>> counters{{"uptime", 12}, {"udp-queries", 3}};
  CHECK(boost::json::serialize(api::pdns::statisticItems(counters)) ==
        R"([{"name":"uptime","type":"StatisticItem","value":"12"},)"
        R"({"name":"udp-queries","type":"StatisticItem","value":"3"}])");
  CHECK(boost::json::serialize(api::pdns::resultBody("Rectified")) == R"({"result":"Rectified"})");
}

TEST_CASE("pdns: serials by soa_edit_api, as PowerDNS 4.7 sets them", "[api][pdns]") {
  CHECK(api::pdns::creationSerial("DEFAULT", kNow) == 2026120101);
  CHECK(api::pdns::creationSerial("INCREASE", kNow) == 1);
  CHECK(api::pdns::creationSerial("SOA-EDIT-INCREASE", kNow) == 1);
  CHECK(api::pdns::creationSerial("EPOCH", kNow) == static_cast<uint32_t>(kNow));
  CHECK(api::pdns::creationSerial("INCEPTION-INCREMENT", kNow) == 0);
  CHECK(api::pdns::creationSerial("OFF", kNow) == 0);
  CHECK(api::pdns::serialPolicy("default") == zones::SerialPolicy::kDate);
  CHECK(api::pdns::serialPolicy("INCREASE") == zones::SerialPolicy::kIncrement);
  CHECK(api::pdns::serialPolicy("EPOCH") == zones::SerialPolicy::kUnixtime);
  CHECK_FALSE(api::pdns::serialPolicy("INCEPTION-INCREMENT"));
  CHECK_FALSE(api::pdns::serialPolicy("SOA-EDIT"));
  // What a zone shows for its serial_policy: the soa_edit_api that means it.
  for (const auto p : {zones::SerialPolicy::kIncrement, zones::SerialPolicy::kDate,
                       zones::SerialPolicy::kUnixtime}) {
    CHECK(api::pdns::serialPolicy(api::pdns::soaEditApi(p)) == p);
  }
  CHECK(std::string(api::pdns::soaEditApi(zones::SerialPolicy::kDate)) == "DEFAULT");
  CHECK(std::string(api::pdns::soaEditApi(zones::SerialPolicy::kIncrement)) == "INCREASE");
}
