// meridianctl over the management API (meridianctl_api.h): each command is one or a few requests
// (meridianctl_http.h), the answer printed as a table or text, or as the API's JSON with --json.
// Record data given on the command line or in a zone file is read by the zone-file loader here,
// so a mistake is reported (file:line) before anything is sent, and contents go to the API in the
// form it shows them (api::pdns::recordContent), which it compares and accepts back as they are.
#include "app/meridianctl_api.h"

#include <strings.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "api/pdns_json.h"
#include "dns/name.h"
#include "dns/wire.h"
#include "zones/content.h"
#include "zones/serial.h"
#include "zones/writer.h"

namespace meridian::app {

const char kApiUsage[] =
    "commands over the API (--api URL):\n"
    "  zones [list]                          the zones: name, kind, serial\n"
    "  zones show ZONE [--zone-file]         its RRsets as a table, or as zone-file lines\n"
    "  zones import ZONE FILE [--dry-run]    make ZONE what FILE holds: FILE is read here first\n"
    "                                        (errors as file:line, nothing sent); a zone the "
    "server\n"
    "                                        does not have is created (POST; needs the server's\n"
    "                                        control.state_dir); otherwise one PATCH, applied "
    "whole\n"
    "                                        or not at all, REPLACEs every RRset that differs and\n"
    "                                        DELETEs every RRset FILE does not have; --dry-run\n"
    "                                        lists those changes and sends nothing\n"
    "  records add ZONE NAME TYPE TTL CONTENT...\n"
    "                                        adds one record to the RRset NAME/TYPE (TTL becomes\n"
    "                                        the RRset's); NAME and names in CONTENT as in ZONE's\n"
    "                                        zone file (relative to ZONE, @ for the apex)\n"
    "  records remove ZONE NAME TYPE [CONTENT...]\n"
    "                                        removes that one record, or the whole RRset\n"
    "                                        (records add/remove read the RRset, then REPLACE it\n"
    "                                        with the new list: the API has no atomic add, so a\n"
    "                                        change to the same RRset made between the two\n"
    "                                        requests by someone else is overwritten)\n"
    "  services [list] | services show NAME  steered services, their pools and endpoints' health\n"
    "  regions                               the regions\n"
    "  health                                every health slot: verdict, override, RTT\n"
    "  overrides [list]                      the slots with an override\n"
    "  overrides set WHAT MODE               WHAT: address, label, region:NAME,\n"
    "                                        pool:SERVICE/REGION or service:NAME; MODE: force-up,\n"
    "                                        force-down, drain or none (also: override WHAT MODE)\n"
    "  overrides clear WHAT                  the same with MODE none\n"
    "  explain NAME [TYPE] CLIENT-IP[/PREFIX]\n"
    "  reload                                re-read configuration and zone files (exit 1 when a\n"
    "                                        zone failed to load)\n"
    "  metrics                               the Prometheus text of /metrics\n"
    "  audit [--zone Z] [--key NAME] [--since T] [--until T] [--limit N]\n"
    "                                        the server's audit log (T: RFC 3339 UTC or Unix s)\n"
    "  watch [--count N]                     the event stream, one line per event as it comes\n"
    "                                        (--json: one JSON object per line); reconnects with\n"
    "                                        Last-Event-ID when the connection drops; ends on\n"
    "                                        SIGINT/SIGTERM (exit 0) or after N events\n"
    "  version                               meridianctl's version and the server's\n";

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace pdns = api::pdns;
using namespace ctl;

const std::string kZones = "/api/v1/servers/localhost/zones";

std::string percentEncode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '=') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string text(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "-";
  return json::serialize(v);
}

std::string member(const json::value& v, const char* name) {
  const json::object* o = v.if_object();
  const json::value* m = o != nullptr ? o->if_contains(name) : nullptr;
  return m != nullptr ? text(*m) : "-";
}

const json::array& arrayAt(const json::value& v, const char* name) {
  static const json::array kEmpty;
  const json::object* o = v.if_object();
  const json::value* m = o != nullptr ? o->if_contains(name) : nullptr;
  return m != nullptr && m->is_array() ? m->get_array() : kEmpty;
}

bool boolAt(const json::value& v, const char* name) {
  const json::object* o = v.if_object();
  const json::value* m = o != nullptr ? o->if_contains(name) : nullptr;
  return m != nullptr && m->is_bool() && m->get_bool();
}

// Columns padded to the widest cell, two spaces apart; the first row is the header.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

void print(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  if (!s.empty() && s.back() != '\n') std::fputs("\n", stdout);
}

int usage(const std::string& message) {
  std::fprintf(stderr, "meridianctl: %s\n", message.c_str());
  return kExitUsage;
}

// The answer of one request: exit is kExitOk with `body` parsed (null when empty), or the exit
// status after the message was printed. Statuses in `own` are left to the caller (no message).
struct Answer {
  int exit = kExitOk;
  unsigned status = 0;
  std::string raw;
  json::value body;
};

Answer call(const ApiTarget& t, http::verb method, const std::string& target,
            const std::string& body = {}, std::initializer_list<unsigned> own = {}) {
  Answer a;
  const HttpReply r = httpRequest(t, method, target, body);
  if (!r.connected) {
    std::fprintf(stderr, "meridianctl: %s: %s\n", t.url.c_str(), r.error.c_str());
    a.exit = kExitUnreachable;
    return a;
  }
  a.status = r.status;
  a.raw = r.body;
  const bool own_status = std::find(own.begin(), own.end(), r.status) != own.end();
  boost::system::error_code ec;
  if (!r.body.empty()) a.body = json::parse(r.body, ec);
  if (r.status / 100 != 2 && !own_status) {
    const json::object* o = !ec ? a.body.if_object() : nullptr;
    const json::value* msg = o != nullptr ? o->if_contains("error") : nullptr;
    std::fprintf(stderr, "meridianctl: %u %s\n", r.status,
                 msg != nullptr ? text(*msg).c_str() : r.body.c_str());
    a.exit = kExitRefused;
  } else if (ec && target != "/metrics") {
    std::fprintf(stderr, "meridianctl: %u, and the answer is not JSON: %.200s\n", r.status,
                 r.body.c_str());
    a.exit = kExitRefused;
  }
  return a;
}

int showJson(const Answer& a) {
  print(a.raw);
  return kExitOk;
}

// ZONE as the API names it: absolute, lowercase ("example.com."), and as a URL path segment.
std::string absoluteZone(const std::string& zone) {
  std::string z = lower(zone);
  if (z.empty() || z.back() != '.') z += '.';
  return z;
}
std::string zonePath(const std::string& zone) {
  return kZones + "/" + percentEncode(pdns::zoneId(absoluteZone(zone)));
}

// ---------------------------------------------------------------------------------------------
// Record data read by the zone-file loader.

struct RRset {
  std::string name;  // absolute, lowercase
  std::string type;  // mnemonic, as the API shows it
  uint32_t ttl = 0;
  std::vector<std::string> contents;  // as the API shows them
  std::vector<bool> disabled;         // from the server only
};

std::vector<std::string> contentsOf(const zones::ZoneContent::RRsetView& rr) {
  std::vector<std::string> out;
  for (const auto rd : rr.rdata()) out.push_back(pdns::recordContent(rr.type(), rd));
  return out;
}

RRset fromView(const zones::ZoneContent::RRsetView& rr) {
  return RRset{lower(rr.ownerText()), zones::typeToText(rr.type()), rr.ttl(), contentsOf(rr), {}};
}

// A placeholder SOA and NS make the one line a loadable zone; their data is not the user's.
constexpr const char* kPlaceholderSoa = "@ 0 IN SOA invalid. invalid. 1 1 1 1 1\n";
constexpr const char* kPlaceholderNs = "invalid.";

// "NAME TTL IN TYPE CONTENT" as a line of ZONE's zone file: the RRset it makes, or the loader's
// message ("record:1: ...").
bool parseRecord(const std::string& zone, const std::string& name, const std::string& ttl,
                 const std::string& type, const std::string& content, RRset& out,
                 std::string& error) {
  for (const std::string* s : {&name, &ttl, &type, &content}) {
    if (s->find_first_of("\n\r") != std::string::npos) {
      error = "a record is one line: no line breaks in '" + *s + "'";
      return false;
    }
  }
  const std::string line = name + " " + ttl + " IN " + type + " " + content + "\n";
  auto loaded = zones::loadZoneContentText(
      absoluteZone(zone), line + kPlaceholderSoa + "@ 0 IN NS " + kPlaceholderNs + "\n", "record");
  if (!loaded) {
    error = loaded.error().message;
    return false;
  }
  const zones::ZoneContent& c = loaded->content;
  for (size_t i = 0; i < c.rrsetCount(); ++i) {
    const auto rr = c.rrset(i);
    const bool apex = dns::equalNames(rr.owner(), c.apex().data);
    if (apex && rr.type() == dns::rrtype::kSOA) continue;
    RRset r = fromView(rr);
    if (apex && rr.type() == dns::rrtype::kNS) {
      std::erase(r.contents, std::string(kPlaceholderNs));
      if (r.contents.empty()) continue;
    }
    out = std::move(r);
    return true;
  }
  error = "'" + name + "' is not inside the zone " + absoluteZone(zone);
  return false;
}

// TXT and SPF contents are compared as they are; others without regard to case (names, hex).
bool sameContent(const std::string& type, const std::string& a, const std::string& b) {
  if (type == "TXT" || type == "SPF") return a == b;
  return a.size() == b.size() && strcasecmp(a.c_str(), b.c_str()) == 0;
}

// The zone's RRsets as the server has them (GET zones/ZONE).
std::vector<RRset> serverRRsets(const json::value& zone) {
  std::vector<RRset> out;
  for (const auto& v : arrayAt(zone, "rrsets")) {
    RRset r;
    r.name = lower(member(v, "name"));
    r.type = member(v, "type");
    if (const auto* ttl = v.as_object().if_contains("ttl"); ttl != nullptr && ttl->is_number())
      r.ttl = ttl->to_number<uint32_t>();
    for (const auto& rec : arrayAt(v, "records")) {
      r.contents.push_back(member(rec, "content"));
      r.disabled.push_back(boolAt(rec, "disabled"));
    }
    out.push_back(std::move(r));
  }
  return out;
}

const RRset* findRRset(const std::vector<RRset>& sets, const std::string& name,
                       const std::string& type) {
  for (const RRset& r : sets) {
    if (r.name == name && r.type == type) return &r;
  }
  return nullptr;
}

json::object rrsetJson(const RRset& r, const char* changetype) {
  json::array records;
  for (size_t i = 0; i < r.contents.size(); ++i) {
    records.push_back(json::object{{"content", r.contents[i]},
                                   {"disabled", i < r.disabled.size() && r.disabled[i]}});
  }
  json::object o{{"name", r.name}, {"type", r.type}, {"ttl", r.ttl}};
  if (changetype != nullptr) o["changetype"] = changetype;
  if (changetype == nullptr || std::string_view(changetype) == "REPLACE")
    o["records"] = std::move(records);
  return o;
}

std::string patchBody(const std::vector<json::object>& changes) {
  json::array rrsets;
  for (const auto& c : changes) rrsets.push_back(c);
  return json::serialize(json::object{{"rrsets", std::move(rrsets)}});
}

std::string serialOf(const json::value& zone) {
  return member(zone, "serial");
}

// The zone's serial now (GET zones/ZONE?rrsets=false), "-" if it cannot be had.
std::string currentSerial(const ApiTarget& t, const std::string& zone) {
  const Answer a = call(t, http::verb::get, zonePath(zone) + "?rrsets=false");
  return a.exit == kExitOk ? serialOf(a.body) : "-";
}

std::string recordLine(const RRset& r, size_t i) {
  return r.name + " " + std::to_string(r.ttl) + " IN " + r.type + " " + r.contents[i];
}

// ---------------------------------------------------------------------------------------------
// zones

int zonesList(const ApiTarget& t, bool as_json) {
  const Answer a = call(t, http::verb::get, kZones);
  if (a.exit != kExitOk) return a.exit;
  if (as_json) return showJson(a);
  std::vector<std::vector<std::string>> rows = {{"NAME", "KIND", "SERIAL"}};
  if (const json::array* zs = a.body.if_array()) {
    for (const auto& z : *zs) rows.push_back({member(z, "name"), member(z, "kind"), serialOf(z)});
  }
  print(table(rows));
  return kExitOk;
}

int zonesShow(const ApiTarget& t, const std::string& zone, bool zone_file, bool as_json) {
  const Answer a = call(t, http::verb::get, zonePath(zone));
  if (a.exit != kExitOk) return a.exit;
  if (as_json) return showJson(a);
  const auto sets = serverRRsets(a.body);
  std::string out;
  if (zone_file) {
    out = "; " + member(a.body, "name") + " serial " + serialOf(a.body) + "\n";
    for (const RRset& r : sets) {
      for (size_t i = 0; i < r.contents.size(); ++i)
        out += (r.disabled[i] ? "; disabled: " : "") + recordLine(r, i) + "\n";
    }
  } else {
    std::vector<std::vector<std::string>> rows = {{"NAME", "TTL", "TYPE", "CONTENT"}};
    for (const RRset& r : sets) {
      for (size_t i = 0; i < r.contents.size(); ++i) {
        rows.push_back({r.name, std::to_string(r.ttl), r.type,
                        r.contents[i] + (r.disabled[i] ? "  (disabled)" : "")});
      }
    }
    out = table(rows);
  }
  print(out);
  return kExitOk;
}

// The SOA's fields without the serial, and the serial, from its content.
std::pair<std::string, uint32_t> soaParts(const std::string& content) {
  std::vector<std::string> f;
  size_t p = 0;
  while (p < content.size()) {
    const size_t e = content.find(' ', p);
    f.push_back(content.substr(p, e == std::string::npos ? std::string::npos : e - p));
    if (e == std::string::npos) break;
    p = e + 1;
  }
  if (f.size() != 7) return {content, 0};
  const uint32_t serial = static_cast<uint32_t>(std::strtoul(f[2].c_str(), nullptr, 10));
  f[2].clear();
  std::string rest;
  for (const auto& s : f) rest += s + " ";
  return {lower(rest), serial};
}

// Equal as far as an import is concerned: the same TTL and records (none disabled); an SOA whose
// only difference is a serial not newer than the server's counts as equal (the server keeps its
// serial moving forward anyway).
bool sameRRset(const RRset& file, const RRset& server) {
  if (file.ttl != server.ttl || file.contents.size() != server.contents.size()) return false;
  for (size_t i = 0; i < file.contents.size(); ++i) {
    if (server.disabled[i]) return false;
    if (file.type == "SOA") {
      const auto [f, fs] = soaParts(file.contents[i]);
      const auto [s, ss] = soaParts(server.contents[i]);
      if (f != s || zones::serialNewer(fs, ss)) return false;
    } else if (!sameContent(file.type, file.contents[i], server.contents[i])) {
      return false;
    }
  }
  return true;
}

int zonesImport(const ApiTarget& t, const std::string& zone, const std::string& file, bool dry_run,
                bool as_json) {
  const std::string origin = absoluteZone(zone);
  auto loaded = zones::loadZoneContentFile(origin, file);
  if (!loaded) {
    std::fprintf(stderr, "meridianctl: %s (nothing was sent)\n", loaded.error().message.c_str());
    return kExitUsage;
  }
  std::vector<RRset> local;
  for (size_t i = 0; i < loaded->content.rrsetCount(); ++i)
    local.push_back(fromView(loaded->content.rrset(i)));

  const Answer cur = call(t, http::verb::get, zonePath(zone), {}, {404});
  if (cur.exit != kExitOk) return cur.exit;
  if (cur.status == 404) {
    // A new zone: created with every RRset of the file.
    if (dry_run) {
      std::printf("would create %s with %zu RRsets (%zu records) from %s; nothing sent\n",
                  origin.c_str(), local.size(), loaded->content.recordCount(), file.c_str());
      return kExitOk;
    }
    json::array rrsets;
    for (const RRset& r : local) rrsets.push_back(rrsetJson(r, nullptr));
    const std::string body = json::serialize(
        json::object{{"name", origin}, {"kind", "Native"}, {"rrsets", std::move(rrsets)}});
    const Answer made = call(t, http::verb::post, kZones, body);
    if (made.exit != kExitOk) return made.exit;
    if (as_json) {
      print(json::serialize(
          json::object{{"zone", origin},
                       {"created", true},
                       {"rrsets", local.size()},
                       {"serial", made.body.is_object() ? made.body.as_object().at("serial")
                                                        : json::value(nullptr)}}));
    } else {
      std::printf("created %s from %s: %zu RRsets, %zu records; serial %s\n", origin.c_str(),
                  file.c_str(), local.size(), loaded->content.recordCount(),
                  serialOf(made.body).c_str());
    }
    return kExitOk;
  }

  // An existing zone: DELETE what the file does not have, REPLACE what differs, in one PATCH
  // (the DELETEs first, so that an A giving way to a CNAME at the same name passes the checks).
  const auto server = serverRRsets(cur.body);
  std::vector<json::object> changes;
  json::array replaced, deleted;
  std::string plan;
  for (const RRset& s : server) {
    if (findRRset(local, s.name, s.type) != nullptr) continue;
    changes.push_back(rrsetJson(s, "DELETE"));
    deleted.push_back(json::object{{"name", s.name}, {"type", s.type}});
    plan += "  delete  " + s.name + " " + s.type + "\n";
  }
  size_t unchanged = 0;
  for (const RRset& l : local) {
    const RRset* s = findRRset(server, l.name, l.type);
    if (s != nullptr && sameRRset(l, *s)) {
      ++unchanged;
      continue;
    }
    changes.push_back(rrsetJson(l, "REPLACE"));
    replaced.push_back(json::object{{"name", l.name}, {"type", l.type}});
    plan += "  replace " + l.name + " " + l.type + " (" + std::to_string(l.contents.size()) +
            (l.contents.size() == 1 ? " record)\n" : " records)\n");
  }
  const std::string old_serial = serialOf(cur.body);
  std::string new_serial = old_serial;
  if (!changes.empty() && !dry_run) {
    const Answer p = call(t, http::verb::patch, zonePath(zone), patchBody(changes));
    if (p.exit != kExitOk) return p.exit;
    new_serial = currentSerial(t, zone);
  }
  if (as_json) {
    print(json::serialize(json::object{{"zone", origin},
                                       {"created", false},
                                       {"dry_run", dry_run},
                                       {"replaced", std::move(replaced)},
                                       {"deleted", std::move(deleted)},
                                       {"unchanged", unchanged},
                                       {"old_serial", old_serial},
                                       {"serial", new_serial}}));
    return kExitOk;
  }
  if (changes.empty()) {
    std::printf("%s: %s matches the served zone (%zu RRsets); nothing changed\n", origin.c_str(),
                file.c_str(), unchanged);
    return kExitOk;
  }
  std::printf("%s%s: %zu RRsets replaced, %zu deleted, %zu unchanged", plan.c_str(), origin.c_str(),
              replaced.size(), deleted.size(), unchanged);
  if (dry_run) {
    std::printf(" (dry run: nothing sent)\n");
  } else {
    std::printf("; serial %s -> %s\n", old_serial.c_str(), new_serial.c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// records

std::string joinWords(const std::vector<std::string>& w, size_t from) {
  std::string out;
  for (size_t i = from; i < w.size(); ++i) out += (out.empty() ? "" : " ") + w[i];
  return out;
}

int patchRRset(const ApiTarget& t, const std::string& zone, const json::object& change,
               const std::string& old_serial, const RRset& now, const std::string& done,
               bool as_json) {
  const Answer p = call(t, http::verb::patch, zonePath(zone), patchBody({change}));
  if (p.exit != kExitOk) return p.exit;
  const std::string serial = currentSerial(t, zone);
  if (as_json) {
    json::object o = rrsetJson(now, nullptr);
    o["zone"] = absoluteZone(zone);
    o["serial"] = serial;
    print(json::serialize(o));
  } else {
    std::printf("%s; serial %s -> %s\n", done.c_str(), old_serial.c_str(), serial.c_str());
  }
  return kExitOk;
}

int recordsAdd(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  // records add ZONE NAME TYPE TTL CONTENT...
  if (w.size() < 7) return usage("usage: records add ZONE NAME TYPE TTL CONTENT...");
  const std::string& zone = w[2];
  if (upper(w[4]) == "SOA")
    return usage("records add: the SOA has one record; change it with zones import");
  RRset add;
  std::string error;
  if (!parseRecord(zone, w[3], w[5], w[4], joinWords(w, 6), add, error))
    return usage(error + " (nothing was sent)");
  const Answer cur = call(t, http::verb::get, zonePath(zone));
  if (cur.exit != kExitOk) return cur.exit;
  const auto server = serverRRsets(cur.body);
  RRset now = add;
  now.contents.clear();
  if (const RRset* s = findRRset(server, add.name, add.type)) {
    now.contents = s->contents;
    now.disabled = s->disabled;
  }
  now.disabled.resize(now.contents.size(), false);
  std::vector<std::string> added;
  for (const std::string& c : add.contents) {
    const bool present =
        std::any_of(now.contents.begin(), now.contents.end(),
                    [&](const std::string& x) { return sameContent(add.type, c, x); });
    if (present) continue;
    now.contents.push_back(c);
    now.disabled.push_back(false);
    added.push_back(c);
  }
  const RRset* before = findRRset(server, add.name, add.type);
  if (added.empty() && before != nullptr && before->ttl == add.ttl) {
    if (as_json) {
      print(json::serialize(rrsetJson(now, nullptr)));
    } else {
      std::printf("%s %s %s: already there; nothing changed\n", add.name.c_str(), add.type.c_str(),
                  add.contents.front().c_str());
    }
    return kExitOk;
  }
  std::string done = "added " + add.name + " " + std::to_string(add.ttl) + " " + add.type + " " +
                     add.contents.front() + " (the RRset has " +
                     std::to_string(now.contents.size()) + " record" +
                     (now.contents.size() == 1 ? ")" : "s)");
  if (added.empty()) done = "already there; TTL of " + add.name + " " + add.type + " set";
  return patchRRset(t, zone, rrsetJson(now, "REPLACE"), serialOf(cur.body), now, done, as_json);
}

int recordsRemove(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  // records remove ZONE NAME TYPE [CONTENT...]
  if (w.size() < 5) return usage("usage: records remove ZONE NAME TYPE [CONTENT...]");
  const std::string& zone = w[2];
  RRset which;
  std::string error;
  if (w.size() > 5) {
    if (!parseRecord(zone, w[3], "0", w[4], joinWords(w, 5), which, error))
      return usage(error + " (nothing was sent)");
  } else {
    dns::NameBuf apex, name;
    if (!dns::fromText(absoluteZone(zone), apex) || !dns::fromText(w[3], name, &apex))
      return usage("records remove: '" + w[3] + "' is not a name");
    which.name = lower(dns::toText(name.data));
    which.type = upper(w[4]);
  }
  const Answer cur = call(t, http::verb::get, zonePath(zone));
  if (cur.exit != kExitOk) return cur.exit;
  const auto server = serverRRsets(cur.body);
  const RRset* s = findRRset(server, which.name, which.type);
  if (s == nullptr || s->contents.empty()) {
    std::fprintf(stderr, "meridianctl: %s has no %s %s; nothing changed\n",
                 absoluteZone(zone).c_str(), which.name.c_str(), which.type.c_str());
    return kExitRefused;
  }
  RRset now = *s;
  if (which.contents.empty()) {
    now.contents.clear();
    return patchRRset(t, zone, rrsetJson(*s, "DELETE"), serialOf(cur.body), now,
                      "removed the RRset " + s->name + " " + s->type + " (" +
                          std::to_string(s->contents.size()) + " records)",
                      as_json);
  }
  now.contents.clear();
  now.disabled.clear();
  for (size_t i = 0; i < s->contents.size(); ++i) {
    if (sameContent(s->type, s->contents[i], which.contents.front())) continue;
    now.contents.push_back(s->contents[i]);
    now.disabled.push_back(s->disabled[i]);
  }
  if (now.contents.size() == s->contents.size()) {
    std::fprintf(stderr, "meridianctl: %s %s has no record '%s'; nothing changed\n",
                 s->name.c_str(), s->type.c_str(), which.contents.front().c_str());
    return kExitRefused;
  }
  const std::string done = "removed " + s->name + " " + s->type + " " + which.contents.front() +
                           " (" + std::to_string(now.contents.size()) + " left)";
  return patchRRset(t, zone, rrsetJson(now, now.contents.empty() ? "DELETE" : "REPLACE"),
                    serialOf(cur.body), now, done, as_json);
}

// ---------------------------------------------------------------------------------------------
// services, regions, health, overrides

std::string policyText(const json::value& v) {
  std::string out;
  for (const auto& f : arrayAt(v, "policy")) out += (out.empty() ? "" : " -> ") + text(f);
  return out;
}

int services(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  const bool show = w.size() >= 2 && w[1] == "show";
  if ((show && w.size() != 3) || (!show && w.size() > 2) || (w.size() == 2 && w[1] != "list"))
    return usage("usage: services [list] | services show NAME");
  const Answer a = call(t, http::verb::get, "/api/v1/services");
  if (a.exit != kExitOk) return a.exit;
  const json::array* list = a.body.if_array();
  if (list == nullptr) return showJson(a);
  if (!show) {
    if (as_json) return showJson(a);
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "ZONE", "TTL", "POLICY", "REGIONS", "USABLE"}};
    for (const auto& s : *list) {
      size_t endpoints = 0, usable = 0;
      std::string regions;
      for (const auto& p : arrayAt(s, "pools")) {
        regions += (regions.empty() ? "" : ",") + member(p, "region");
        for (const auto& e : arrayAt(p, "endpoints")) {
          ++endpoints;
          const json::value* h = e.as_object().if_contains("health");
          if (h == nullptr || h->is_null() || boolAt(*h, "usable")) ++usable;
        }
      }
      rows.push_back({member(s, "name"), member(s, "zone"), member(s, "ttl"), policyText(s),
                      regions, std::to_string(usable) + "/" + std::to_string(endpoints)});
    }
    print(table(rows));
    return kExitOk;
  }
  const std::string want = absoluteZone(w[2]);
  for (const auto& s : *list) {
    if (lower(member(s, "name")) != want) continue;
    if (as_json) {
      print(json::serialize(s));
      return kExitOk;
    }
    std::string out = "service " + member(s, "name") + " (zone " + member(s, "zone") + ", TTL " +
                      member(s, "ttl") + ")\npolicy: " + policyText(s) + "\n";
    std::vector<std::vector<std::string>> rows = {
        {"REGION", "ENDPOINT", "ADDRESS", "WEIGHT", "VERDICT", "OVERRIDE", "USABLE"}};
    for (const auto& p : arrayAt(s, "pools")) {
      for (const auto& e : arrayAt(p, "endpoints")) {
        const json::value* h = e.as_object().if_contains("health");
        const bool checked = h != nullptr && !h->is_null();
        const json::value* target = e.as_object().if_contains("target");
        rows.push_back({member(p, "region"), member(e, "label"),
                        target != nullptr ? "CNAME " + text(*target) : member(e, "address"),
                        member(e, "weight"), checked ? member(*h, "verdict") : "-",
                        checked ? member(*h, "override") : "-",
                        !checked || boolAt(*h, "usable") ? "yes" : "no"});
      }
    }
    print(out + table(rows));
    return kExitOk;
  }
  std::fprintf(stderr, "meridianctl: no service %s (meridianctl services lists them)\n",
               want.c_str());
  return kExitRefused;
}

int regions(const ApiTarget& t, bool as_json) {
  const Answer a = call(t, http::verb::get, "/api/v1/regions");
  if (a.exit != kExitOk) return a.exit;
  if (as_json || !a.body.is_array()) return showJson(a);
  std::vector<std::vector<std::string>> rows = {{"NAME", "LATITUDE", "LONGITUDE", "BIAS_KM"}};
  for (const auto& r : a.body.as_array()) {
    rows.push_back(
        {member(r, "name"), member(r, "latitude"), member(r, "longitude"), member(r, "bias_km")});
  }
  print(table(rows));
  return kExitOk;
}

std::string healthTable(const json::value& body) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TARGET", "ADDRESS", "VERDICT", "OVERRIDE", "USABLE", "RTT", "LAST ERROR"}};
  for (const auto& e : arrayAt(body, "endpoints")) {
    const auto& o = e.as_object();
    std::string rtt = "-";
    if (const auto* r = o.if_contains("rtt_ms"); r != nullptr && r->is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3fms", r->to_number<double>());
      rtt = buf;
    }
    rows.push_back({member(e, "id"), member(e, "label"), member(e, "address"),
                    boolAt(e, "checked") ? member(e, "verdict") : "unchecked",
                    member(e, "override"), boolAt(e, "usable") ? "yes" : "no", rtt,
                    member(e, "last_error")});
  }
  return table(rows);
}

int overrides(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  // overrides [list] | overrides set WHAT MODE | overrides clear WHAT | override WHAT MODE
  std::string what, mode;
  if (w[0] == "override" && w.size() == 3) {
    what = w[1];
    mode = w[2];
  } else if (w[0] == "overrides" && w.size() == 4 && w[1] == "set") {
    what = w[2];
    mode = w[3];
  } else if (w[0] == "overrides" && w.size() == 3 && w[1] == "clear") {
    what = w[2];
    mode = "none";
  } else if (w[0] == "overrides" && (w.size() == 1 || (w.size() == 2 && w[1] == "list"))) {
    const Answer a = call(t, http::verb::get, "/api/v1/overrides");
    if (a.exit != kExitOk) return a.exit;
    if (as_json) return showJson(a);
    std::vector<std::vector<std::string>> rows = {
        {"ID", "TARGET", "ADDRESS", "OVERRIDE", "USABLE"}};
    for (const auto& o : arrayAt(a.body, "overrides")) {
      rows.push_back({member(o, "id"), member(o, "label"), member(o, "address"),
                      member(o, "override"), boolAt(o, "usable") ? "yes" : "no"});
    }
    print(rows.size() == 1 ? "no overrides" : table(rows));
    return kExitOk;
  } else {
    return usage("usage: overrides [list] | overrides set WHAT MODE | overrides clear WHAT");
  }
  const Answer a = call(t, http::verb::put, "/api/v1/overrides",
                        json::serialize(json::object{{"what", what}, {"mode", mode}}));
  if (a.exit != kExitOk) return a.exit;
  if (as_json) return showJson(a);
  int status = kExitOk;
  for (const auto& c : arrayAt(a.body, "changes")) {
    if (boolAt(c, "ok")) {
      std::printf("%s: %s\n", member(c, "label").c_str(), member(a.body, "mode").c_str());
    } else {
      std::printf("%s: error: %s\n", member(c, "label").c_str(), member(c, "error").c_str());
      status = kExitRefused;
    }
  }
  return status;
}

// ---------------------------------------------------------------------------------------------
// explain, reload

std::string explainText(const json::value& e) {
  std::string out;
  for (const auto& h : arrayAt(e, "cnames")) {
    out += member(h, "from") + " is a CNAME to " + member(h, "to") + " (zone " + member(h, "zone") +
           ", TTL " + member(h, "ttl") + ")\n";
  }
  if (!boolAt(e, "steered"))
    return out + member(e, "name") + " is not a steered service; the zone data answers it\n";
  out += "service " + member(e, "service") + " " + member(e, "type") + ", client " +
         member(e, "client") + (boolAt(e, "from_ecs") ? " (as ECS)" : "") + "\n";
  out += "policy: " + policyText(e) + "\n";
  for (const auto& line : arrayAt(e, "steps")) out += "  " + text(line) + "\n";
  std::string answer;
  for (const auto& a : arrayAt(e, "answer")) answer += (answer.empty() ? "" : ", ") + text(a);
  out += "decision " + member(e, "decision") + ": " + (answer.empty() ? "-" : answer) + "\n";
  return out;
}

bool reloadFailed(const json::value& r) {
  return member(r, "failed") != "0";
}

std::string reloadText(const json::value& r) {
  std::string out = std::string(reloadFailed(r) ? "error " : "ok ") + member(r, "loaded") +
                    " zone(s) loaded, " + member(r, "unchanged") + " unchanged, " +
                    member(r, "failed") + " failed\n";
  for (const auto& w : arrayAt(r, "warnings")) out += "  warning: " + text(w) + "\n";
  const json::value* errors = r.is_object() ? r.as_object().if_contains("errors") : nullptr;
  if (errors != nullptr && errors->is_object()) {
    for (const auto& [name, err] : errors->get_object())
      out += "  " + std::string(name) + ": " + text(err) + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// audit, watch, version

control::AuditEntry entryFromJson(const json::value& v) {
  control::AuditEntry e;
  const auto number = [&](const char* name) -> uint64_t {
    const json::object* o = v.if_object();
    const json::value* m = o != nullptr ? o->if_contains(name) : nullptr;
    return m != nullptr && m->is_number() ? m->to_number<uint64_t>() : 0;
  };
  const auto str = [&](const char* name) {
    const std::string s = member(v, name);
    return s == "-" ? std::string() : s;
  };
  e.seq = number("seq");
  e.time_ms = control::parseTime(str("time")).value_or(0);
  e.key = str("key");
  e.source = str("source");
  e.operation = str("operation");
  e.zone = str("zone");
  e.old_serial = static_cast<uint32_t>(number("old_serial"));
  e.new_serial = static_cast<uint32_t>(number("new_serial"));
  for (const auto& l : arrayAt(v, "removed")) e.removed.push_back(text(l));
  for (const auto& l : arrayAt(v, "added")) e.added.push_back(text(l));
  e.detail = str("detail");
  e.hash = str("hash");
  return e;
}

int audit(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  std::string query;
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string& a = w[i];
    const bool has_value = i + 1 < w.size();
    if (a == "--json") {
      as_json = true;
      continue;
    }
    if (!has_value ||
        (a != "--zone" && a != "--key" && a != "--since" && a != "--until" && a != "--limit")) {
      return usage("audit: unexpected argument '" + a + "' (meridianctl --help)");
    }
    const std::string& v = w[++i];
    if ((a == "--since" || a == "--until") && !control::parseTime(v))
      return usage(a + ": not a time: '" + v + "'");
    if (a == "--limit" && (v.empty() || v.find_first_not_of("0123456789") != std::string::npos))
      return usage("--limit: not a number: '" + v + "'");
    query.append(query.empty() ? "?" : "&").append(a, 2).append(1, '=').append(percentEncode(v));
  }
  const Answer a = call(t, http::verb::get, "/api/v1/audit" + query);
  if (a.exit != kExitOk) return a.exit;
  if (as_json) return showJson(a);
  if (const json::array* list = a.body.if_array()) {
    for (const auto& v : *list) std::fputs(auditText(entryFromJson(v)).c_str(), stdout);
  }
  return kExitOk;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One line for an event: time received, id, type, what changed.
std::string eventLine(const SseEvent& ev) {
  boost::system::error_code ec;
  const json::value d = json::parse(ev.data, ec);
  std::string what;
  if (ec) {
    what = ev.data;
  } else if (ev.type == "zone") {
    what = member(d, "name") + " serial " + member(d, "serial");
  } else if (ev.type == "reload") {
    what = "loaded " + member(d, "loaded") + ", unchanged " + member(d, "unchanged") + ", failed " +
           member(d, "failed");
  } else if (ev.type == "health" || ev.type == "override") {
    what = member(d, "label") + " verdict " + member(d, "verdict") + ", override " +
           member(d, "override") + ", usable " + (boolAt(d, "usable") ? "yes" : "no");
  } else if (ev.type == "reset") {
    what = member(d, "message");
  } else {
    what = ev.data;
  }
  return control::formatTime(nowMs()) + " " + (ev.id.empty() ? "-" : ev.id) + " " + ev.type + " " +
         what + "\n";
}

int watch(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  uint64_t count = 0;
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i] == "--json") {
      as_json = true;
    } else if (w[i] == "--count" && i + 1 < w.size() && !w[i + 1].empty() && w[i + 1].size() < 19 &&
               w[i + 1].find_first_not_of("0123456789") == std::string::npos) {
      count = std::stoull(w[++i]);
    } else {
      return usage("usage: watch [--count N]");
    }
  }
  uint64_t seen = 0;
  HttpReply failure;
  const int status = followEvents(
      t,
      [&](const SseEvent& ev) {
        std::string line;
        if (as_json) {
          boost::system::error_code ec;
          json::value data = json::parse(ev.data, ec);
          if (ec) data = json::string(ev.data);
          line = json::serialize(json::object{{"id", ev.id}, {"event", ev.type}, {"data", data}}) +
                 "\n";
        } else {
          line = eventLine(ev);
        }
        std::fputs(line.c_str(), stdout);
        std::fflush(stdout);
        return count == 0 || ++seen < count;
      },
      [](const std::string& note) {
        std::fprintf(stderr, "meridianctl: watch: %s\n", note.c_str());
      },
      failure);
  if (status == kExitUnreachable) {
    std::fprintf(stderr, "meridianctl: %s: %s\n", t.url.c_str(), failure.error.c_str());
  } else if (status == kExitRefused) {
    boost::system::error_code ec;
    const json::value v = json::parse(failure.body, ec);
    const std::string msg = !ec ? member(v, "error") : failure.body;
    std::fprintf(stderr, "meridianctl: %u %s\n", failure.status, msg.c_str());
  }
  return status;
}

int version(const ApiTarget& t, bool as_json) {
  const Answer a = call(t, http::verb::get, "/api/v1/servers/localhost");
  if (a.exit != kExitOk) return a.exit;
  if (as_json) return showJson(a);
  std::printf("meridianctl %s\nserver meridian %s (PowerDNS API %s) at %s\n", MERIDIAN_VERSION,
              member(a.body, "meridian_version").c_str(), member(a.body, "version").c_str(),
              t.url.c_str());
  return kExitOk;
}

}  // namespace

std::string auditText(const control::AuditEntry& e) {
  std::string out = std::to_string(e.seq) + " " + control::formatTime(e.time_ms) + " key=" + e.key +
                    " source=" + (e.source.empty() ? "-" : e.source) + " " + e.operation;
  if (!e.zone.empty()) {
    out += " " + e.zone + " serial " + std::to_string(e.old_serial) + " -> " +
           std::to_string(e.new_serial);
  }
  if (!e.detail.empty()) out += " (" + e.detail + ")";
  out += "\n";
  for (const auto& l : e.removed) out += "  - " + l + "\n";
  for (const auto& l : e.added) out += "  + " + l + "\n";
  return out;
}

namespace {

int runCommand(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  if (w.empty()) return usage("no command (meridianctl --help)");
  const std::string& cmd = w[0];
  const std::string sub = w.size() > 1 ? w[1] : "";
  if (cmd == "zones") {
    if (w.size() == 1 || (w.size() == 2 && sub == "list")) return zonesList(t, as_json);
    if (sub == "show" && (w.size() == 3 || (w.size() == 4 && w[3] == "--zone-file")))
      return zonesShow(t, w[2], w.size() == 4, as_json);
    if (sub == "import" && (w.size() == 4 || (w.size() == 5 && w[4] == "--dry-run")))
      return zonesImport(t, w[2], w[3], w.size() == 5, as_json);
    return usage(
        "usage: zones [list] | zones show ZONE [--zone-file] | zones import ZONE FILE "
        "[--dry-run]");
  }
  if (cmd == "records") {
    if (sub == "add") return recordsAdd(t, w, as_json);
    if (sub == "remove") return recordsRemove(t, w, as_json);
    return usage(
        "usage: records add ZONE NAME TYPE TTL CONTENT... | records remove ZONE NAME "
        "TYPE [CONTENT...]");
  }
  if (cmd == "services") return services(t, w, as_json);
  if (cmd == "regions" && w.size() == 1) return regions(t, as_json);
  if (cmd == "overrides" || cmd == "override") return overrides(t, w, as_json);
  if (cmd == "audit") return audit(t, w, as_json);
  if (cmd == "watch") return watch(t, w, as_json);
  if (cmd == "version" && w.size() == 1) return version(t, as_json);
  if (cmd == "health" && w.size() == 1) {
    const Answer a = call(t, http::verb::get, "/api/v1/health");
    if (a.exit != kExitOk) return a.exit;
    if (as_json) return showJson(a);
    print(healthTable(a.body));
    return kExitOk;
  }
  if (cmd == "metrics" && w.size() == 1) {
    const Answer a = call(t, http::verb::get, "/metrics");
    if (a.exit != kExitOk) return a.exit;
    return showJson(a);
  }
  if (cmd == "reload" && w.size() == 1) {
    const Answer a = call(t, http::verb::post, "/api/v1/reload");
    if (a.exit != kExitOk) return a.exit;
    as_json ? (void)showJson(a) : print(reloadText(a.body));
    return reloadFailed(a.body) ? kExitRefused : kExitOk;
  }
  if (cmd == "explain" && (w.size() == 3 || w.size() == 4)) {
    const Answer a =
        call(t, http::verb::get,
             "/api/v1/explain?name=" + percentEncode(w[1]) + "&client=" + percentEncode(w.back()) +
                 (w.size() == 4 ? "&type=" + percentEncode(w[2]) : ""));
    if (a.exit != kExitOk) return a.exit;
    if (as_json) return showJson(a);
    print(explainText(a.body));
    return kExitOk;
  }
  if (cmd == "status" || cmd == "stop")
    return usage(cmd + " is a control-socket command (--socket PATH), not an API one");
  return usage("unknown command or wrong arguments for the API: '" + joinWords(w, 0) +
               "' (meridianctl --help)");
}

}  // namespace

int apiCommand(const ApiTarget& t, const std::vector<std::string>& w, bool as_json) {
  try {
    return runCommand(t, w, as_json);
  } catch (const std::exception& e) {
    // An answer of an unexpected shape (a member missing or of another type).
    std::fprintf(stderr, "meridianctl: %s: unexpected answer: %s\n", t.url.c_str(), e.what());
    return kExitRefused;
  }
}

}  // namespace meridian::app
