#include "app/api_pdns.h"

#include <strings.h>

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "api/pdns_json.h"
#include "control/audit.h"
#include "core/log.h"
#include "zones/writer.h"

namespace meridian::app {

namespace {

namespace http = boost::beast::http;
namespace pdns = api::pdns;
using api::Request;
using api::Response;

// What PowerDNS keeps per zone beside the records.
struct ZoneState {
  pdns::ZoneMeta meta;
  pdns::ExtrasMap extras;
  std::map<std::string, std::vector<std::string>> metadata;  // by kind
  uint64_t created = 0;  // creation order through the API (0: a configured zone)
  // meta.soa_edit_api came with POST or PUT; otherwise the zone shows the soa_edit_api of its
  // serial policy (ZoneInfo::serial_policy, the configuration's zone.serial_policy).
  bool soa_edit_api_set = false;
  std::string saved;  // the attributes file's text as last written or read ("" none)
};

struct PdnsState {
  ControlService& service;
  std::map<std::string, ZoneState> zones;  // by origin ("example.com.")
  uint64_t creations = 0;
  // Secondaries (kind Slave) created through the API: known to the API with the content
  // PowerDNS starts them with (its default SOA), but not served: Meridian has no zone transfers
  // yet (the replication issue), so DNS has nothing true to answer for them. Not kept across a
  // restart.
  std::map<std::string, std::shared_ptr<const zones::ZoneContent>> secondaries;
};

// The zone attributes file (docs/api.md "What is kept where"): kind, masters, account,
// soa_edit_api, the creation order, metadata and, per RRset, its comments and disabled records;
// what PowerDNS keeps in its database beside the records, which the zone file has no place for.
// STATE/meta/ZONE.json (the zone's API id), or ZONEFILE.meta.json without control.state_dir
// (beside the journal). Written (temporary file, fsync, rename) before the change is answered;
// read once at start.
std::string attributesPath(PdnsState& st, const std::string& origin) {
  const std::string& dir = st.service.stateDir();
  if (!dir.empty()) return dir + "/meta/" + pdns::zoneId(origin) + "json";
  auto z = st.service.getZone(origin);
  if (!z || z->info.file.empty()) return {};
  return z->info.file + ".meta.json";
}

std::string hexText(const std::vector<uint8_t>& octets) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : octets) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

std::optional<std::vector<uint8_t>> hexOctets(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out;
  for (size_t i = 0; i < text.size(); i += 2) {
    int v = 0;
    for (char c : text.substr(i, 2)) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

std::string attributesText(const ZoneState& zs) {
  namespace json = boost::json;
  json::array masters;
  for (const auto& m : zs.meta.masters) masters.emplace_back(m);
  json::object metadata;
  for (const auto& [kind, values] : zs.metadata) {
    json::array v;
    for (const auto& x : values) v.emplace_back(x);
    metadata[kind] = std::move(v);
  }
  json::array rrsets;
  for (const auto& [key, extra] : zs.extras) {
    json::array comments, disabled;
    for (const auto& c : extra.comments)
      comments.push_back(json::object{
          {"content", c.content}, {"account", c.account}, {"modified_at", c.modified_at}});
    for (const auto& d : extra.disabled) disabled.emplace_back(hexText(d));
    rrsets.push_back(json::object{{"name", key.first},
                                  {"type", key.second},
                                  {"ttl", extra.ttl},
                                  {"comments", std::move(comments)},
                                  {"disabled", std::move(disabled)}});
  }
  return json::serialize(json::object{{"format", 1},
                                      {"kind", zs.meta.kind},
                                      {"masters", std::move(masters)},
                                      {"account", zs.meta.account},
                                      {"soa_edit_api", zs.meta.soa_edit_api},
                                      {"soa_edit_api_set", zs.soa_edit_api_set},
                                      {"notified_serial", zs.meta.notified_serial},
                                      {"created", zs.created},
                                      {"metadata", std::move(metadata)},
                                      {"rrsets", std::move(rrsets)}}) +
         "\n";
}

// The attributes `text` holds, or why not. Boost.JSON's accessors throw on a wrong type.
boost::system::result<ZoneState, std::string> attributesFromText(const std::string& text) {
  namespace json = boost::json;
  try {
    const json::value parsed = json::parse(text);
    const json::object& o = parsed.as_object();
    if (o.at("format").to_number<int64_t>() != 1) return std::string("unknown format");
    ZoneState zs;
    zs.meta.kind = json::value_to<std::string>(o.at("kind"));
    for (const auto& m : o.at("masters").as_array())
      zs.meta.masters.push_back(json::value_to<std::string>(m));
    zs.meta.account = json::value_to<std::string>(o.at("account"));
    zs.meta.soa_edit_api = json::value_to<std::string>(o.at("soa_edit_api"));
    if (const auto* set = o.if_contains("soa_edit_api_set")) zs.soa_edit_api_set = set->as_bool();
    zs.meta.notified_serial = o.at("notified_serial").to_number<uint32_t>();
    zs.created = o.at("created").to_number<uint64_t>();
    for (const auto& [kind, values] : o.at("metadata").as_object()) {
      auto& v = zs.metadata[std::string(kind)];
      for (const auto& x : values.as_array()) v.push_back(json::value_to<std::string>(x));
    }
    for (const auto& r : o.at("rrsets").as_array()) {
      const json::object& ro = r.as_object();
      pdns::RRsetExtras extra;
      extra.ttl = ro.at("ttl").to_number<uint32_t>();
      for (const auto& c : ro.at("comments").as_array()) {
        const json::object& co = c.as_object();
        extra.comments.push_back({json::value_to<std::string>(co.at("content")),
                                  json::value_to<std::string>(co.at("account")),
                                  co.at("modified_at").to_number<int64_t>()});
      }
      for (const auto& d : ro.at("disabled").as_array()) {
        auto octets = hexOctets(d.as_string());
        if (!octets) return std::string("a disabled record is not hex");
        extra.disabled.push_back(std::move(*octets));
      }
      zs.extras[{json::value_to<std::string>(ro.at("name")), ro.at("type").to_number<uint16_t>()}] =
          std::move(extra);
    }
    zs.saved = text;
    return zs;
  } catch (const std::exception& e) {
    return std::string(e.what());
  }
}

// Writes the attributes of `origin` if they changed since last written; an error message when
// the file could not be written (the in-memory state is then left as it was given).
std::optional<std::string> saveAttributes(PdnsState& st, const std::string& origin, ZoneState& zs) {
  std::string text = attributesText(zs);
  if (text == zs.saved || (zs.saved.empty() && text == attributesText(ZoneState{}))) return {};
  const std::string path = attributesPath(st, origin);
  if (path.empty()) return {};
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (auto w = zones::writeFileAtomic(path, text); !w) {
    log::error("zone " + origin + ": " + w.error().message);
    return w.error().message;
  }
  zs.saved = std::move(text);
  return {};
}

// Makes `next` the attributes of `origin`, written first; 500 when they cannot be.
std::optional<Response> storeAttributes(PdnsState& st, const std::string& origin, ZoneState next) {
  // A secondary is not kept across a restart (see PdnsState), nor are its attributes.
  if (st.secondaries.count(origin) == 0)
    if (auto e = saveAttributes(st, origin, next))
      return Response::error(500, "the zone's attributes could not be saved: " + *e);
  st.zones[origin] = std::move(next);
  return std::nullopt;
}

// A soa_edit_api given through the API (POST, PUT, or kept in the attributes file) is shown as
// given and, when it names a policy (pdns::serialPolicy), the zone's serials follow it; one that
// does not (OFF, SOA-EDIT, INCEPTION-INCREMENT) leaves the zone's zone.serial_policy in force.
void followSoaEditApi(PdnsState& st, const std::string& origin) {
  const ZoneState& zs = st.zones[origin];
  if (zs.soa_edit_api_set)
    st.service.setSerialPolicy(origin, pdns::serialPolicy(zs.meta.soa_edit_api));
}

// At start: every served zone's attributes file, if it has one. A file that does not parse is
// reported and the zone served without its attributes (the file is kept for a post-mortem until
// the next change rewrites it).
void loadAttributes(PdnsState& st) {
  for (const ZoneInfo& z : st.service.listZones()) {
    if (!z.served) continue;
    const std::string path = attributesPath(st, z.origin);
    if (path.empty()) continue;
    std::ifstream in(path);
    if (!in) continue;
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto zs = attributesFromText(text);
    if (!zs) {
      log::error("zone " + z.origin + ": the attributes file " + path + " is unreadable (" +
                 zs.error() +
                 "); serving the zone without its kind, account, metadata and comments");
      continue;
    }
    st.creations = std::max(st.creations, zs->created);
    st.zones[z.origin] = std::move(*zs);
    followSoaEditApi(st, z.origin);
  }
}

void removeAttributes(PdnsState& st, const std::string& origin) {
  const std::string path = attributesPath(st, origin);
  std::error_code ec;
  if (!path.empty()) std::filesystem::remove(path, ec);
  st.zones.erase(origin);
}

Response serviceError(const ServiceError& e) {
  // PowerDNS's words for an unknown zone; Meridian's message for the rest.
  if (e.kind == ServiceError::Kind::kNotFound) return Response::error(404, "Not Found");
  return Response::error(httpStatus(e.kind), e.message);
}

// The served zone a {zone} path parameter names, or the 404 PowerDNS answers.
struct Found {
  ZoneDetail detail;
  std::string origin;
};
boost::system::result<Found, Response> findZone(PdnsState& st, const Request& req) {
  if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
  auto name = pdns::zoneNameFromId(req.params.at("zone"));
  if (!name) return Response::error(404, "Not Found");
  const std::string text = dns::toText(name->data);
  if (auto sec = st.secondaries.find(text); sec != st.secondaries.end()) {
    ZoneDetail d;
    d.info.origin = text;
    d.content = sec->second;
    return Found{std::move(d), text};
  }
  auto detail = st.service.getZone(text);
  if (!detail) return serviceError(detail.error());
  std::string origin = detail->info.origin;
  return Found{std::move(*detail), std::move(origin)};
}

// The route's handler, answering 404 for another server id than "localhost".
template <typename F>
api::Handler onZone(std::shared_ptr<PdnsState> st, F f) {
  return [st, f](Request& req) -> Response {
    auto found = findZone(*st, req);
    if (!found) return found.error();
    return f(*st, req, *found);
  };
}

Response listZones(PdnsState& st, Request& req) {
  if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
  const std::string only = req.queryParam("zone");
  std::string wanted;
  if (!only.empty()) {
    if (only.back() != '.') return Response::error(422, "DNS Name '" + only + "' is not canonical");
    auto name = pdns::zoneNameFromId(only);
    if (!name) return Response::json(200, boost::json::array{});
    wanted = dns::toText(name->data);
  }
  boost::json::array out;
  for (const ZoneInfo& z : st.service.listZones()) {
    if (!z.served) continue;
    if (req.key && !req.key->allowsZone(z.origin)) continue;
    auto detail = st.service.getZone(z.origin);
    if (!detail) continue;
    if (!wanted.empty() && detail->content->origin() != wanted) continue;
    out.push_back(pdns::zoneListEntry(*detail->content, st.zones[z.origin].meta));
  }
  for (const auto& [origin, content] : st.secondaries) {
    if ((req.key && !req.key->allowsZone(origin)) || (!wanted.empty() && origin != wanted))
      continue;
    out.push_back(pdns::zoneListEntry(*content, st.zones[origin].meta));
  }
  return Response::json(200, out);
}

Response getZone(PdnsState& st, Request& req, Found& f) {
  const ZoneState& zs = st.zones[f.origin];
  pdns::ZoneMeta meta = zs.meta;
  if (!zs.soa_edit_api_set) meta.soa_edit_api = pdns::soaEditApi(f.detail.info.serial_policy);
  return Response::json(200, pdns::zoneObject(*f.detail.content, meta, &zs.extras,
                                              req.queryParam("rrsets") != "false"));
}

Response patchZone(PdnsState& st, Request& req, Found& f) {
  const int64_t now = std::time(nullptr);
  auto changes = pdns::parsePatch(req.body(), f.detail.content->apex(), now);
  if (!changes) return Response::error(changes.error().status, changes.error().message);
  if (auto r = pdns::checkConflicts(*f.detail.content, *changes); !r)
    return Response::error(r.error().status, r.error().message);
  zones::ChangeRequest request;
  for (const pdns::RRsetChange& c : *changes) {
    // A REPLACE of the comments alone leaves the records as they are.
    if (c.kind == pdns::RRsetChange::Kind::kReplace && !c.has_records) continue;
    zones::RRsetChange change;
    change.changetype = c.kind == pdns::RRsetChange::Kind::kDelete ? zones::ChangeType::kDelete
                                                                   : zones::ChangeType::kReplace;
    change.rrset = c.spec();
    request.changes.push_back(std::move(change));
  }
  Actor who{req.key ? req.key->name() : "", req.remote};
  auto shared = std::make_shared<std::vector<pdns::RRsetChange>>(std::move(*changes));
  Response r;
  r.later = [&st, origin = f.origin, request = std::move(request), who = std::move(who),
             shared](std::function<void(Response)> deliver) {
    st.service.patchZone(origin, request, who,
                         [&st, origin, shared, deliver](ServiceResult<PatchResult> result) {
                           if (!result) return deliver(serviceError(result.error()));
                           ZoneState next = st.zones[origin];
                           pdns::applyExtras(next.extras, *shared);
                           if (auto e = storeAttributes(st, origin, std::move(next)))
                             return deliver(std::move(*e));
                           Response ok;
                           ok.status = 204;
                           deliver(std::move(ok));
                         });
  };
  return r;
}

Response createZone(PdnsState& st, Request& req) {
  if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
  const int64_t now = std::time(nullptr);
  auto create = pdns::parseZoneCreate(req.body(), now);
  if (!create) return Response::error(create.error().status, create.error().message);
  auto content =
      pdns::initialContent(*create, pdns::creationSerial(create->meta.soa_edit_api, now));
  if (!content) return Response::error(content.error().status, content.error().message);
  const std::string origin = content->origin();
  if (st.secondaries.count(origin) || st.service.getZone(origin))
    return Response::error(409, "Conflict");
  if (create->meta.kind == "Slave") {
    auto& zs = st.zones[origin];
    zs = ZoneState{create->meta, {}, {}, ++st.creations};
    zs.soa_edit_api_set = true;
    auto stored = std::make_shared<const zones::ZoneContent>(std::move(*content));
    st.secondaries[origin] = stored;
    return Response::json(201, pdns::zoneObject(*stored, zs.meta, &zs.extras));
  }
  Actor who{req.key ? req.key->name() : "", req.remote};
  auto shared = std::make_shared<pdns::ZoneCreate>(std::move(*create));
  auto initial = std::make_shared<zones::ZoneContent>(std::move(*content));
  Response r;
  r.later = [&st, shared, initial, who](std::function<void(Response)> deliver) {
    st.service.createZone(*initial, who, [&st, shared, deliver](ServiceResult<ZoneDetail> result) {
      if (!result) {
        if (result.error().kind == ServiceError::Kind::kConflict)
          return deliver(Response::error(409, "Conflict"));
        return deliver(serviceError(result.error()));
      }
      const std::string& origin = result->info.origin;
      ZoneState next{shared->meta, {}, {}, ++st.creations, true, {}};
      pdns::applyExtras(next.extras, shared->rrsets);
      if (auto e = storeAttributes(st, origin, std::move(next))) return deliver(std::move(*e));
      followSoaEditApi(st, origin);
      const ZoneState& zs = st.zones[origin];
      deliver(Response::json(201, pdns::zoneObject(*result->content, zs.meta, &zs.extras)));
    });
  };
  return r;
}

Response deleteZone(PdnsState& st, Request& req, Found& f) {
  if (st.secondaries.erase(f.origin)) {
    removeAttributes(st, f.origin);
    Response ok;
    ok.status = 204;
    return ok;
  }
  Actor who{req.key ? req.key->name() : "", req.remote};
  Response r;
  r.later = [&st, origin = f.origin, who](std::function<void(Response)> deliver) {
    st.service.deleteZone(origin, who, [&st, origin, deliver](ServiceResult<void> result) {
      if (!result) return deliver(serviceError(result.error()));
      removeAttributes(st, origin);
      Response ok;
      ok.status = 204;
      deliver(std::move(ok));
    });
  };
  return r;
}

// PUT zones/ZONE: the zone's facts (kind, masters, account, soa_edit_api); rrsets are PATCH's.
Response putZone(PdnsState& st, Request& req, Found& f) {
  boost::system::error_code ec;
  auto v = boost::json::parse(req.body(), ec);
  if (ec || !v.is_object()) return Response::error(400, "Bad Request");
  pdns::ZoneMeta meta = st.zones[f.origin].meta;
  const auto& o = v.as_object();
  if (auto* k = o.if_contains("kind"); k && k->is_string()) {
    std::string kind(k->as_string());
    for (const char* known : {"Native", "Master", "Slave"}) {
      if (strcasecmp(kind.c_str(), known) == 0) meta.kind = known;
    }
  }
  if (auto* m = o.if_contains("masters"); m && m->is_array()) {
    meta.masters.clear();
    for (const auto& x : m->as_array()) {
      if (!x.is_string()) return Response::error(422, "masters must be strings");
      meta.masters.emplace_back(x.as_string());
    }
  }
  if (auto* a = o.if_contains("account"); a && a->is_string()) meta.account = a->as_string();
  std::optional<std::string> soa_edit_api;
  if (auto* s = o.if_contains("soa_edit_api"); s && s->is_string())
    soa_edit_api = std::string(s->as_string());
  ZoneState next = st.zones[f.origin];
  next.meta = std::move(meta);
  if (soa_edit_api) {
    next.meta.soa_edit_api = *soa_edit_api;
    next.soa_edit_api_set = true;
  }
  if (auto e = storeAttributes(st, f.origin, std::move(next))) return std::move(*e);
  if (soa_edit_api) followSoaEditApi(st, f.origin);
  Response ok;
  ok.status = 204;
  return ok;
}

Response metadataList(PdnsState& st, Request&, Found& f) {
  boost::json::array out;
  for (const auto& [kind, values] : st.zones[f.origin].metadata)
    out.push_back(pdns::metadataJson({kind, values}));
  return Response::json(200, out);
}

Response metadataGet(PdnsState& st, Request& req, Found& f) {
  const std::string kind = req.params.at("kind");
  const auto& md = st.zones[f.origin].metadata;
  auto it = md.find(kind);
  return Response::json(
      200, pdns::metadataJson({kind, it == md.end() ? std::vector<std::string>{} : it->second}));
}

Response metadataStore(PdnsState& st, const pdns::ApiResult<pdns::Metadata>& m, const Found& f,
                       unsigned status) {
  if (!m) return Response::error(m.error().status, m.error().message);
  ZoneState next = st.zones[f.origin];
  if (m->values.empty()) {
    next.metadata.erase(m->kind);
  } else {
    next.metadata[m->kind] = m->values;
  }
  if (auto e = storeAttributes(st, f.origin, std::move(next))) return std::move(*e);
  return Response::json(status, pdns::metadataJson(*m));
}

Response statistics(PdnsState& st, Request& req) {
  if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
  const Stats s = st.service.stats();
  const std::pair<std::string, uint64_t> items[] = {
      {"uptime", static_cast<uint64_t>(s.uptime_s)}, {"queries", s.totals.queries},
      {"servfail-answers", s.totals.rcodes[2]},      {"nxdomain-answers", s.totals.rcodes[3]},
      {"tcp-queries", s.totals.tcp_connections},     {"zones", s.zones.size()},
  };
  return Response::json(200, pdns::statisticItems(items));
}

Response searchData(PdnsState& st, Request& req) {
  if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
  size_t max = 100;
  if (const std::string m = req.queryParam("max"); !m.empty()) {
    char* end = nullptr;
    max = static_cast<size_t>(std::strtoull(m.c_str(), &end, 10));
    if (*end != '\0') return Response::error(422, "'max' is not a number");
  }
  std::vector<ZoneDetail> details;
  for (const ZoneInfo& z : st.service.listZones()) {
    if (!z.served || (req.key && !req.key->allowsZone(z.origin))) continue;
    if (auto d = st.service.getZone(z.origin)) details.push_back(std::move(*d));
  }
  // PowerDNS searches its zones in the order they were made (its domain ids).
  std::stable_sort(details.begin(), details.end(), [&](const ZoneDetail& a, const ZoneDetail& b) {
    return st.zones[a.info.origin].created < st.zones[b.info.origin].created;
  });
  std::vector<pdns::SearchZone> zones;
  for (const auto& d : details) zones.push_back({d.content.get(), &st.zones[d.info.origin].extras});
  std::string type = req.queryParam("object_type");
  if (type.empty()) type = "all";
  auto out = pdns::searchData(zones, req.queryParam("q"), max, type);
  if (!out) return Response::error(out.error().status, out.error().message);
  return Response::json(200, *out);
}

Response auditEntries(PdnsState& st, Request& req) {
  control::AuditFilter filter;
  filter.zone = req.queryParam("zone");
  filter.key = req.queryParam("key");
  for (const auto& [param, bound] :
       {std::pair{"since", &filter.since_ms}, std::pair{"until", &filter.until_ms}}) {
    const std::string v = req.queryParam(param);
    if (v.empty()) continue;
    auto t = control::parseTime(v);
    if (!t) return Response::error(422, std::string("'") + param + "' is not a time: " + v);
    *bound = *t;
  }
  if (const std::string limit = req.queryParam("limit"); !limit.empty()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(limit.c_str(), &end, 10);
    if (*end != '\0' || limit[0] == '-')
      return Response::error(422, "'limit' is not a number: " + limit);
    filter.limit = static_cast<size_t>(n);
  }
  // A key limited to some zones sees only their entries.
  if (req.key && !filter.zone.empty() && !req.key->allowsZone(filter.zone))
    return Response::error(403, "Forbidden");
  auto entries = st.service.auditEntries(filter);
  if (!entries) return serviceError(entries.error());
  boost::json::array out;
  for (const control::AuditEntry& e : *entries) {
    if (req.key && !e.zone.empty() && !req.key->allowsZone(e.zone)) continue;
    boost::json::array removed, added;
    for (const auto& l : e.removed) removed.emplace_back(l);
    for (const auto& l : e.added) added.emplace_back(l);
    out.push_back(boost::json::object{{"seq", e.seq},
                                      {"time", control::formatTime(e.time_ms)},
                                      {"key", e.key},
                                      {"source", e.source},
                                      {"operation", e.operation},
                                      {"zone", e.zone},
                                      {"old_serial", e.old_serial},
                                      {"new_serial", e.new_serial},
                                      {"removed", std::move(removed)},
                                      {"added", std::move(added)},
                                      {"detail", e.detail},
                                      {"hash", e.hash}});
  }
  return Response::json(200, out);
}

}  // namespace

void addPdnsRoutes(api::Router& router, ControlService& service) {
  auto st = std::make_shared<PdnsState>(PdnsState{service, {}});
  loadAttributes(*st);
  constexpr const char* kZones = "/api/v1/servers/{server}/zones";
  constexpr const char* kZone = "/api/v1/servers/{server}/zones/{zone}";
  router.add(http::verb::get, kZones, api::Access::kRead,
             [st](Request& req) { return listZones(*st, req); });
  router.add(http::verb::get, kZone, api::Access::kRead, onZone(st, getZone));
  router.add(http::verb::patch, kZone, api::Access::kWrite, onZone(st, patchZone));
  router.add(http::verb::get, "/api", api::Access::kRead,
             [](Request&) { return Response::json(200, pdns::apiVersions()); });
  // PowerDNS's configuration settings: Meridian's are not PowerDNS's, so none (octoDNS only
  // checks that this answers a list).
  router.add(http::verb::get, "/api/v1/servers/{server}/config", api::Access::kRead,
             [](Request& req) {
               if (req.params.at("server") != "localhost") return Response::error(404, "Not Found");
               return Response::json(200, boost::json::array{});
             });
  router.add(http::verb::post, kZones, api::Access::kWrite,
             [st](Request& req) { return createZone(*st, req); });
  router.add(http::verb::delete_, kZone, api::Access::kWrite, onZone(st, deleteZone));
  router.add(http::verb::put, kZone, api::Access::kWrite, onZone(st, putZone));
  const std::string metadata = std::string(kZone) + "/metadata";
  router.add(http::verb::get, metadata, api::Access::kRead, onZone(st, metadataList));
  router.add(http::verb::post, metadata, api::Access::kWrite,
             onZone(st, [](PdnsState& s, Request& req, Found& f) {
               return metadataStore(s, pdns::parseMetadataPost(req.body()), f, 201);
             }));
  router.add(http::verb::get, metadata + "/{kind}", api::Access::kRead, onZone(st, metadataGet));
  router.add(http::verb::put, metadata + "/{kind}", api::Access::kWrite,
             onZone(st, [](PdnsState& s, Request& req, Found& f) {
               return metadataStore(s, pdns::parseMetadataPut(req.body(), req.params.at("kind")), f,
                                    200);
             }));
  router.add(http::verb::delete_, metadata + "/{kind}", api::Access::kWrite,
             onZone(st, [](PdnsState& s, Request& req, Found& f) {
               ZoneState next = s.zones[f.origin];
               next.metadata.erase(req.params.at("kind"));
               if (auto e = storeAttributes(s, f.origin, std::move(next))) return std::move(*e);
               Response ok;
               ok.content_type.clear();
               return ok;
             }));
  router.add(http::verb::get, "/api/v1/servers/{server}/statistics", api::Access::kRead,
             [st](Request& req) { return statistics(*st, req); });
  router.add(http::verb::get, "/api/v1/servers/{server}/search-data", api::Access::kRead,
             [st](Request& req) { return searchData(*st, req); });
  router.add(http::verb::put, std::string(kZone) + "/notify", api::Access::kWrite,
             onZone(st, [](PdnsState&, Request&, Found&) {
               return Response::json(200, pdns::resultBody("Notification queued"));
             }));
  router.add(http::verb::put, std::string(kZone) + "/rectify", api::Access::kWrite,
             onZone(st, [](PdnsState&, Request&, Found&) {
               return Response::json(200, pdns::resultBody("Rectified"));
             }));
  router.add(http::verb::put, std::string(kZone) + "/axfr-retrieve", api::Access::kWrite,
             onZone(st, [](PdnsState& s, Request&, Found& f) {
               // Queued as PowerDNS words it; the transfer comes with replication.
               const pdns::ZoneMeta& meta = s.zones[f.origin].meta;
               if (meta.kind == "Slave" && !meta.masters.empty())
                 return Response::json(200,
                                       pdns::resultBody("Added retrieval request for '" + f.origin +
                                                        "' from master " + meta.masters.front()));
               return Response::error(422, "Domain '" + f.origin +
                                               "' is not a slave domain (or has no master "
                                               "defined)");
             }));
  router.add(http::verb::get, "/api/v1/audit", api::Access::kRead,
             [st](Request& req) { return auditEntries(*st, req); });
}

}  // namespace meridian::app
