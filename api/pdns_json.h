// The PowerDNS Authoritative API v1 JSON, as PowerDNS 4.7 shapes it, on Meridian's zone model:
// the zone object and the zones-list entry rendered from a ZoneContent (zones/content.h) with the
// API's per-zone facts (kind, masters, soa_edit_api, comments); the bodies clients send (a PATCH of
// rrsets, a zone creation) parsed into RRset changes with every record's "content" read by the
// zone-file loader (zones/loader.h, one record at a time) into wire RDATA; and PowerDNS's error
// words and status codes for each mistake (recorded from pdns_server 4.7.3 by
// tests/integration/pdns_api.py, listed in docs/api.md "PowerDNS-compatible endpoints").
//
// Called by the API's request handlers on the control thread; exceptions of Boost.JSON are caught
// here and turned into 400/422 answers, nothing throws out of these functions.
#pragma once

#include <boost/json.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dns/name.h"
#include "zones/content.h"
#include "zones/serial.h"

namespace meridian::api::pdns {

// A refused request: the HTTP status and the text of PowerDNS's {"error": "..."} body.
struct ApiError {
  unsigned status = 422;
  std::string message;
};

[[noreturn]] void throw_exception_from_error(const ApiError& e, const boost::source_location&);

template <typename T>
using ApiResult = boost::system::result<T, ApiError>;

// {"error": message}, serialized: the body of every refusal.
[[nodiscard]] std::string errorBody(std::string_view message);

// PowerDNS's zone id: the name with every octet outside [A-Za-z0-9.-_] as "=XX" (upper-case hex),
// so "0/26.2.0.192.in-addr.arpa." has the id "0=2F26.2.0.192.in-addr.arpa.".
[[nodiscard]] std::string zoneId(std::string_view name);
// The zone name an id (a URL path segment, already percent-decoded) stands for: "=XX" decoded, a
// missing trailing dot added (PowerDNS finds "example.org" as "example.org."), lowercase. nullopt
// when it is no domain name.
[[nodiscard]] std::optional<dns::NameBuf> zoneNameFromId(std::string_view id);

// An RR type from its mnemonic (any case) or RFC 3597 "TYPEnnn"; 0 when unknown. The mnemonics are
// zones::typeToText()'s.
[[nodiscard]] uint16_t typeFromText(std::string_view text);

// GET /api: the API versions ([{"url": "/api/v1", "version": 1}]; lego reads it).
[[nodiscard]] boost::json::array apiVersions();
// GET /api/v1/servers/localhost (and, in a list, /api/v1/servers). Clients parse "version" as
// PowerDNS's: octoDNS takes the first three dot-separated numbers (each cut at '-') and turns
// features off below 4.5; terraform keeps it. So Meridian answers a PowerDNS version it is
// compatible with, its own after a '-' ("4.7.0-meridian0.3.0").
[[nodiscard]] boost::json::object serverObject(std::string_view version);
// GET .../statistics: [{"name", "type": "StatisticItem", "value": "<decimal>"}] in the order given.
[[nodiscard]] boost::json::array statisticItems(
    std::span<const std::pair<std::string, uint64_t>> counters);
// {"result": text}: rectify ("Rectified"), notify ("Notification queued").
[[nodiscard]] boost::json::object resultBody(std::string_view text);

// A record's "content" as PowerDNS shows it: zones::rdataToText(), except TXT and SPF, whose
// strings are quoted with '"' and '\' escaped, octets below 0x20 and 0x7F as \DDD and UTF-8 kept
// as it is (PowerDNS does not escape octets above 0x7E).
[[nodiscard]] std::string recordContent(uint16_t type, std::span<const uint8_t> rdata);

struct Comment {
  std::string content;
  std::string account;
  int64_t modified_at = 0;  // seconds since the epoch; set to "now" when the client sent none
};

// What the API keeps beside an RRset that the serving zone has no place for.
struct RRsetExtras {
  std::vector<Comment> comments;
  std::vector<std::vector<uint8_t>> disabled;  // RDATA of records kept but not served
  uint32_t ttl = 0;  // the TTL shown when every record is disabled (no served RRset)
};
// Keyed by (owner, lowercase presentation with the trailing dot; type).
using ExtrasMap = std::map<std::pair<std::string, uint16_t>, RRsetExtras>;

// The facts of a zone PowerDNS keeps in its domains table and metadata.
struct ZoneMeta {
  std::string kind = "Native";  // Native, Master or Slave
  std::vector<std::string> masters;
  std::string account;
  std::string soa_edit_api = "DEFAULT";
  uint32_t notified_serial = 0;
};

// GET zones/ZONE: the zone object with rrsets (with_rrsets false: "?rrsets=false", without).
[[nodiscard]] boost::json::object zoneObject(const zones::ZoneContent& content,
                                             const ZoneMeta& meta,
                                             const ExtrasMap* extras = nullptr,
                                             bool with_rrsets = true);
// One element of GET zones: the same facts, no rrsets and no soa_edit_api.
[[nodiscard]] boost::json::object zoneListEntry(const zones::ZoneContent& content,
                                                const ZoneMeta& meta);

// One RRset of a PATCH (or of a zone creation's "rrsets").
struct RRsetChange {
  enum class Kind { kReplace, kDelete };
  Kind kind = Kind::kReplace;
  dns::NameBuf owner;  // lowercase wire form (PowerDNS keeps names in lower case)
  std::string owner_text;
  uint16_t type = 0;
  uint32_t ttl = 0;
  // REPLACE: whether "records" / "comments" were given; an absent one is left as it is.
  bool has_records = false;
  bool has_comments = false;
  std::vector<std::vector<uint8_t>> rdata;     // enabled records, in the order given
  std::vector<std::vector<uint8_t>> disabled;  // records with "disabled": true
  std::vector<Comment> comments;

  // The RRset a REPLACE puts in the content (ZoneContent::replace; no records deletes it).
  [[nodiscard]] zones::RRsetSpec spec() const;
};

// PATCH zones/ZONE: {"rrsets": [...]} for the zone `apex` (lowercase wire). Checks what PowerDNS
// checks before touching the zone, with its words: keys and their types, changetype (any case),
// canonical names, names inside the zone, known types, each record's content, SOA only at the
// apex and alone, duplicate records, the same name+type twice. `now` stamps comments without a
// modified_at. A body that is not JSON is 400 "Bad Request"; the rest is 422.
[[nodiscard]] ApiResult<std::vector<RRsetChange>> parsePatch(std::string_view body,
                                                             const dns::NameBuf& apex, int64_t now);

// What the changes do to the comments and disabled records, as PowerDNS does it: DELETE drops
// both; REPLACE with "records" replaces the disabled records, with "comments" the comments (an
// absent member leaves its part as it was). Entries left empty are removed.
void applyExtras(ExtrasMap& extras, const std::vector<RRsetChange>& changes);

// PowerDNS's check of a change against the zone's data: a CNAME beside other data at a name,
// either way round, after all the changes ("RRset N IN T: Conflicts with pre-existing RRset").
[[nodiscard]] ApiResult<void> checkConflicts(const zones::ZoneContent& content,
                                             const std::vector<RRsetChange>& changes);

// POST zones.
struct ZoneCreate {
  dns::NameBuf name;  // lowercase wire
  std::string name_text;
  ZoneMeta meta;
  std::vector<std::string> nameservers;  // canonical, as given
  std::vector<RRsetChange> rrsets;       // REPLACEs (a changetype, if given, is ignored)
};
[[nodiscard]] ApiResult<ZoneCreate> parseZoneCreate(std::string_view body, int64_t now);

// The content a created zone starts with, as PowerDNS builds it: the SOA PowerDNS's
// default-soa-content gives ("a.misconfigured.dns.server.invalid. hostmaster.ZONE SERIAL 10800
// 3600 604800 3600", TTL 3600) unless the rrsets have one, NS records from "nameservers" (TTL
// 3600), then the rrsets.
[[nodiscard]] ApiResult<zones::ZoneContent> initialContent(const ZoneCreate& create,
                                                           uint32_t serial);

// GET search-data?q=&max=&object_type=: `q` (case-insensitive, '*' any run of characters, '?'
// one) against zone names and record owners without their trailing dot, record contents and
// comment texts; at most `max` zones, `max` records and `max` comments (PowerDNS counts each kind
// apart), zones first. object_type "all" (the default), "zone", "record" or "comment". An empty
// q is 422 "Query q can't be blank".
struct SearchZone {
  const zones::ZoneContent* content;
  const ExtrasMap* extras = nullptr;
};
[[nodiscard]] ApiResult<boost::json::array> searchData(std::span<const SearchZone> zones,
                                                       std::string_view q, size_t max,
                                                       std::string_view object_type = "all");

// Zone metadata: PUT zones/ZONE/metadata/KIND {"metadata": [...]}, POST zones/ZONE/metadata
// {"kind", "metadata"}. An empty list removes the kind (GET of a kind not set shows []).
struct Metadata {
  std::string kind;
  std::vector<std::string> values;
};
// The kinds PowerDNS 4.7 lets the API write (exact case): its documented per-zone settings and
// any "X-" kind; not those the API manages itself (SOA-EDIT-API, NSEC3PARAM, NSEC3NARROW,
// PRESIGNED, API-RECTIFY, TSIG-ALLOW-AXFR, AXFR-MASTER-TSIG, LUA-AXFR-SCRIPT) nor unknown ones.
[[nodiscard]] bool metadataKindAccepted(std::string_view kind);
[[nodiscard]] ApiResult<Metadata> parseMetadataPut(std::string_view body, std::string_view kind);
[[nodiscard]] ApiResult<Metadata> parseMetadataPost(std::string_view body);
// {"kind", "metadata", "type": "Metadata"}: the answer to PUT (200), POST (201) and GET.
[[nodiscard]] boost::json::object metadataJson(const Metadata& metadata);

// The serial PowerDNS 4.7 gives a zone created with this soa_edit_api (when the body has no SOA):
// DEFAULT YYYYMMDD01 of the UTC day of `now`, INCREASE and SOA-EDIT-INCREASE 1, EPOCH `now`; 0
// for the others (INCEPTION-INCREMENT, OFF, SOA-EDIT).
[[nodiscard]] uint32_t creationSerial(std::string_view soa_edit_api, int64_t now);

// How PowerDNS 4.7 moves the serial on each API change, by soa_edit_api (the zone's SOA-EDIT
// metadata unset): DEFAULT date (YYYYMMDDnn, +1 within the day), INCREASE and SOA-EDIT-INCREASE
// increment, EPOCH the time. nullopt: PowerDNS leaves the serial as it is (INCEPTION-INCREMENT,
// OFF, SOA-EDIT, unknown values); the caller chooses what Meridian does then.
[[nodiscard]] std::optional<zones::SerialPolicy> serialPolicy(std::string_view soa_edit_api);
// The soa_edit_api that means `policy` (serialPolicy's inverse): DEFAULT for date, INCREASE for
// increment, EPOCH for unixtime. What a zone shows when no soa_edit_api was set through the API.
[[nodiscard]] const char* soaEditApi(zones::SerialPolicy policy);

}  // namespace meridian::api::pdns
