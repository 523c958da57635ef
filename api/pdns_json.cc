// PowerDNS API v1 JSON ↔ ZoneContent. The record contents are read by the zone-file loader, one
// record per loadZoneText() call ("OWNER TTL IN TYPE CONTENT" on one line, origin the root, so a
// name without its trailing dot is read as absolute and then refused as PowerDNS refuses it: "Not
// in expected format"). Every message below is PowerDNS 4.7.3's, as tests/integration/pdns_api.py
// recorded it; where the loader's reason for a bad content differs from PowerDNS's own parser's,
// the prefix ("Record N/T 'C': Parsing record content ...") is PowerDNS's and the reason is ours.
#include "api/pdns_json.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <stdexcept>

#include "dns/wire.h"
#include "zones/loader.h"
#include "zones/writer.h"

namespace meridian::api::pdns {

namespace json = boost::json;

void throw_exception_from_error(const ApiError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

namespace {

// Orders RDATAs by length, then octets. Not std::less of the vectors: GCC 12 at -O3 misreads the
// bound of the memcmp inside vector's <=> (-Wstringop-overread).
struct OctetsLess {
  bool operator()(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) const {
    if (a.size() != b.size()) return a.size() < b.size();
    return !a.empty() && std::memcmp(a.data(), b.data(), a.size()) < 0;
  }
};

constexpr uint16_t kSpf = 99;             // RFC 7208 §3.1: TXT's format
constexpr uint32_t kMaxTtl = 2147483647;  // RFC 2181 §8
constexpr uint32_t kDefaultTtl = 3600;    // PowerDNS's default-ttl, SOA and NS of a new zone

ApiError unprocessable(std::string message) {
  return ApiError{422, std::move(message)};
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// PowerDNS's "canonical" name: absolute (trailing dot) and a valid name; lowercased.
std::optional<dns::NameBuf> canonicalName(std::string_view text) {
  dns::NameBuf name;
  if (text.empty() || text.back() != '.' || !dns::fromText(text, name)) return std::nullopt;
  dns::lowercase(name);
  return name;
}

std::string notCanonical(std::string_view text) {
  return "DNS Name '" + std::string(text) + "' is not canonical";
}

// A string member: the value, or nullptr when missing or not a string.
const json::string* stringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::string_view view(const json::string& s) {
  return {s.data(), s.size()};
}

ApiError keyError(std::string_view key, std::string_view what) {
  return unprocessable("Key '" + std::string(key) + "' " + std::string(what));
}

// The TXT/SPF presentation PowerDNS accepts: quoted strings separated by one space. Returns the
// strings joined by one space (what PowerDNS calls the content "parsed as"), or an error.
ApiResult<std::string> checkTxtQuoting(const std::string& prefix, std::string_view c) {
  const std::string parsing = prefix + "Parsing record content (try 'pdnsutil check-zone'): ";
  std::string normal;
  size_t i = 0;
  while (true) {
    if (i >= c.size() || c[i] != '"') {
      return unprocessable(parsing + "Data field in DNS should start with quote (\") at position " +
                           std::to_string(i) + " of '" + std::string(c) + "'");
    }
    size_t j = i + 1;
    while (j < c.size() && c[j] != '"') j += c[j] == '\\' ? 2 : 1;
    if (j >= c.size()) {
      return unprocessable(parsing + "Data field in DNS should end on a quote (\") in '" +
                           std::string(c) + "'");
    }
    if (!normal.empty()) normal.push_back(' ');
    normal.append(c.substr(i, j + 1 - i));
    i = j + 1;
    while (i < c.size() && (c[i] == ' ' || c[i] == '\t')) ++i;
    if (i == c.size()) return normal;
  }
}

// Sees the one record of a single-line text.
class OneRecord final : public zones::RecordObserver {
 public:
  void record(const uint8_t*, uint16_t, uint32_t, const uint8_t* rdata, size_t rdlen) override {
    seen_ = true;
    rdata_.assign(rdata, rdata + rdlen);
  }
  bool seen_ = false;
  std::vector<uint8_t> rdata_;
};

// Types whose presentation zones::rdataToText() writes itself, so that a content which is not in
// that form (a relative name, a leading space, trailing words) is told apart from one that is.
// TXT and SPF are checked by checkTxtQuoting() (PowerDNS keeps their text as written).
bool checkedForm(uint16_t type) {
  return zones::nativeText(type) && type != dns::rrtype::kTXT && type != kSpf;
}

// One record's content → wire RDATA, through the zone-file loader.
ApiResult<std::vector<uint8_t>> parseContent(const std::string& owner_text, uint16_t type,
                                             std::string_view content) {
  const std::string type_text = zones::typeToText(type);
  const std::string prefix =
      "Record " + owner_text + "/" + type_text + " '" + std::string(content) + "': ";
  const std::string parsing = prefix + "Parsing record content (try 'pdnsutil check-zone'): ";
  const bool txt = type == dns::rrtype::kTXT || type == kSpf;
  if (content.find_first_of("\r\n") != std::string_view::npos) {
    return unprocessable(parsing + "a line break in the record content");
  }
  if (content.empty()) {
    return unprocessable(parsing + "missing field at the end of record content ''");
  }
  if (txt) {
    auto normal = checkTxtQuoting(prefix, content);
    if (!normal) return normal.error();
    if (*normal != content) {
      return unprocessable(prefix + "Not in expected format (parsed as '" + *normal + "')");
    }
  }
  const std::string line = owner_text + " 0 IN " + type_text + " " + std::string(content) + "\n";
  OneRecord seen;
  auto loaded = zones::loadZoneText(".", line, "content", seen);
  if (!seen.seen_) {
    // The first line is the record's error ("content:1: ..."), the zone-level checks follow.
    std::string why = loaded ? std::string("not a record") : loaded.error().message;
    why = why.substr(0, why.find('\n'));
    if (why.rfind("content:1: ", 0) == 0) why.erase(0, 11);
    return unprocessable(parsing + why);
  }
  if (checkedForm(type)) {
    const std::string shown = zones::rdataToText(type, seen.rdata_);
    if (!equalsNoCase(shown, content)) {
      return unprocessable(prefix + "Not in expected format (parsed as '" + shown + "')");
    }
  }
  return std::move(seen.rdata_);
}

std::string lowerOwnerText(const uint8_t* owner) {
  uint8_t lower[dns::kMaxNameLength];
  dns::lowerCopy(lower, owner, dns::wireLength(owner));
  return dns::toText(lower);
}

ApiResult<std::vector<Comment>> parseComments(const json::array& list, int64_t now) {
  std::vector<Comment> out;
  for (const json::value& v : list) {
    const json::object* o = v.if_object();
    const json::string* content = o != nullptr ? stringAt(*o, "content") : nullptr;
    if (content == nullptr) return keyError("content", "not present or not a String");
    const json::string* account = stringAt(*o, "account");
    if (account == nullptr) return keyError("account", "not present or not a String");
    Comment c{std::string(view(*content)), std::string(view(*account)), now};
    if (const json::value* m = o->if_contains("modified_at"); m != nullptr && m->is_int64()) {
      c.modified_at = m->as_int64();
    }
    out.push_back(std::move(c));
  }
  return out;
}

// One element of "rrsets". require_changetype: false for a zone creation's rrsets.
ApiResult<RRsetChange> parseRRset(const json::value& v, const dns::NameBuf& apex, int64_t now,
                                  bool require_changetype) {
  RRsetChange ch;
  const json::object* o = v.if_object();
  if (require_changetype) {
    const json::string* changetype = o != nullptr ? stringAt(*o, "changetype") : nullptr;
    if (changetype == nullptr) return keyError("changetype", "not present or not a String");
    const std::string ct = upper(view(*changetype));
    if (ct == "REPLACE") {
      ch.kind = RRsetChange::Kind::kReplace;
    } else if (ct == "DELETE") {
      ch.kind = RRsetChange::Kind::kDelete;
    } else {
      return unprocessable("Changetype not understood");
    }
  }
  const json::string* name = o != nullptr ? stringAt(*o, "name") : nullptr;
  if (name == nullptr) return keyError("name", "not present or not a String");
  const json::string* type = stringAt(*o, "type");
  if (type == nullptr) return keyError("type", "not present or not a String");
  auto owner = canonicalName(view(*name));
  if (!owner) return unprocessable(notCanonical(view(*name)));
  ch.owner = *owner;
  ch.owner_text = dns::toText(ch.owner.data);
  ch.type = typeFromText(view(*type));
  const std::string rrset_text = "RRset " + ch.owner_text + " IN " + std::string(view(*type));
  if (ch.type == 0) return unprocessable(rrset_text + ": unknown type given");
  if (!dns::isSubdomain(ch.owner.data, ch.owner.length, apex.data, apex.length)) {
    return unprocessable(rrset_text + ": Name is out of zone");
  }
  if (ch.kind == RRsetChange::Kind::kDelete) return ch;

  const json::value* records = o->if_contains("records");
  const json::value* comments = o->if_contains("comments");
  ch.has_records = records != nullptr && records->is_array();
  ch.has_comments = comments != nullptr && comments->is_array();
  if (!ch.has_records && !ch.has_comments) {
    return unprocessable("No change for " + rrset_text);
  }
  if (ch.has_comments) {
    auto parsed = parseComments(comments->get_array(), now);
    if (!parsed) return parsed.error();
    ch.comments = std::move(*parsed);
  }
  if (!ch.has_records) return ch;
  const json::array& list = records->get_array();
  if (!list.empty()) {
    const json::value* ttl = o->if_contains("ttl");
    if (ttl == nullptr || !(ttl->is_int64() || ttl->is_uint64())) {
      return keyError("ttl", "not an Integer or not present");
    }
    // PowerDNS stores a negative or too large TTL as it wraps; Meridian refuses it (RFC 2181 §8).
    if (ttl->is_uint64() || ttl->as_int64() < 0 || ttl->as_int64() > kMaxTtl) {
      return unprocessable(rrset_text + ": Key 'ttl' out of range (0 to 2147483647)");
    }
    ch.ttl = static_cast<uint32_t>(ttl->as_int64());
  }
  if (ch.type == dns::rrtype::kSOA && !dns::equalNames(ch.owner.data, apex.data)) {
    return unprocessable("Record " + ch.owner_text + " IN SOA is only allowed at apex");
  }
  std::set<std::vector<uint8_t>, OctetsLess> seen;
  for (const json::value& r : list) {
    const json::object* ro = r.if_object();
    const json::string* content = ro != nullptr ? stringAt(*ro, "content") : nullptr;
    if (content == nullptr) return keyError("content", "not present or not a String");
    bool disabled = false;
    if (const json::value* d = ro->if_contains("disabled"); d != nullptr) {
      if (!d->is_bool()) return keyError("disabled", "not present or not a Bool");
      disabled = d->as_bool();
    }
    auto rdata = parseContent(ch.owner_text, ch.type, view(*content));
    if (!rdata) return rdata.error();
    if (!seen.insert(*rdata).second) {
      return unprocessable("Duplicate record in RRset " + ch.owner_text + " IN " +
                           zones::typeToText(ch.type) + " with content \"" +
                           std::string(view(*content)) + "\"");
    }
    (disabled ? ch.disabled : ch.rdata).push_back(std::move(*rdata));
  }
  if (ch.type == dns::rrtype::kSOA && list.size() > 1) {
    return unprocessable("RRset " + ch.owner_text + " IN SOA has more than one record");
  }
  return ch;
}

ApiResult<json::value> parseBody(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return ApiError{400, "Bad Request"};
  return v;
}

// The rrsets of a PATCH or a creation, with PowerDNS's duplicate check.
ApiResult<std::vector<RRsetChange>> parseRRsets(const json::array& list, const dns::NameBuf& apex,
                                                int64_t now, bool require_changetype) {
  std::vector<RRsetChange> out;
  std::set<std::pair<std::string, uint16_t>> seen;
  for (const json::value& v : list) {
    auto ch = parseRRset(v, apex, now, require_changetype);
    if (!ch) return ch.error();
    if (!seen.emplace(ch->owner_text, ch->type).second) {
      return unprocessable(
          "Duplicate RRset " + ch->owner_text + " IN " + zones::typeToText(ch->type) +
          " with changetype: " + (ch->kind == RRsetChange::Kind::kDelete ? "DELETE" : "REPLACE"));
    }
    out.push_back(std::move(*ch));
  }
  return out;
}

void putName(std::vector<uint8_t>& out, const dns::NameBuf& name) {
  out.insert(out.end(), name.data, name.data + name.length);
}

void putU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

json::array commentsJson(const std::vector<Comment>& comments) {
  json::array out;
  for (const Comment& c : comments) {
    out.push_back(json::object{
        {"account", c.account}, {"content", c.content}, {"modified_at", c.modified_at}});
  }
  return out;
}

json::object recordJson(std::string content, bool disabled) {
  return json::object{{"content", std::move(content)}, {"disabled", disabled}};
}

json::array mastersJson(const ZoneMeta& meta);

// The members the zone object and the list entry share.
void putCommon(json::object& o, const zones::ZoneContent& content, const ZoneMeta& meta) {
  const std::string name = content.origin();
  const uint32_t serial = content.serial().value_or(0);
  o["account"] = meta.account;
  o["catalog"] = "";
  o["dnssec"] = false;
  o["edited_serial"] = serial;
  o["id"] = zoneId(name);
  o["kind"] = meta.kind;
  o["last_check"] = 0;
  o["masters"] = mastersJson(meta);
  o["name"] = name;
  o["notified_serial"] = meta.notified_serial;
  o["serial"] = serial;
  o["url"] = "/api/v1/servers/localhost/zones/" + zoneId(name);
}

// PowerDNS writes the members of its objects in alphabetical order.
json::object sortedKeys(const json::object& o) {
  std::vector<std::pair<std::string_view, const json::value*>> members;
  for (const auto& kv : o) members.emplace_back(kv.key(), &kv.value());
  std::sort(members.begin(), members.end());
  json::object out;
  for (const auto& [k, v] : members) out[k] = *v;
  return out;
}

json::array mastersJson(const ZoneMeta& meta) {
  json::array out;
  for (const std::string& m : meta.masters) out.push_back(json::string(m));
  return out;
}

}  // namespace

std::string errorBody(std::string_view message) {
  return json::serialize(json::object{{"error", message}});
}

json::array apiVersions() {
  return json::array{json::object{{"url", "/api/v1"}, {"version", 1}}};
}

json::object serverObject(std::string_view version) {
  const std::string url = "/api/v1/servers/localhost";
  return json::object{{"autoprimaries_url", url + "/autoprimaries{/autoprimary}"},
                      {"config_url", url + "/config{/config_setting}"},
                      {"daemon_type", "authoritative"},
                      {"id", "localhost"},
                      {"type", "Server"},
                      {"url", url},
                      {"version", version},
                      {"zones_url", url + "/zones{/zone}"}};
}

json::array statisticItems(std::span<const std::pair<std::string, uint64_t>> counters) {
  json::array out;
  for (const auto& [name, value] : counters) {
    out.push_back(
        json::object{{"name", name}, {"type", "StatisticItem"}, {"value", std::to_string(value)}});
  }
  return out;
}

json::object resultBody(std::string_view text) {
  return json::object{{"result", text}};
}

std::string zoneId(std::string_view name) {
  std::string out;
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_') {
      out.push_back(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "=%02X", c);
      out += buf;
    }
  }
  return out;
}

std::optional<dns::NameBuf> zoneNameFromId(std::string_view id) {
  std::string text;
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] == '=' && i + 2 < id.size() && std::isxdigit(static_cast<unsigned char>(id[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(id[i + 2]))) {
      text.push_back(static_cast<char>(std::stoi(std::string(id.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      text.push_back(id[i]);
    }
  }
  if (text.empty()) return std::nullopt;
  if (text.back() != '.') text.push_back('.');
  dns::NameBuf name;
  if (!dns::fromText(text, name)) return std::nullopt;
  dns::lowercase(name);
  return name;
}

uint16_t typeFromText(std::string_view text) {
  // Built once from typeToText() (control thread only; a function-local static is thread-safe).
  static const std::map<std::string, uint16_t> kByName = [] {
    std::map<std::string, uint16_t> m;
    for (uint32_t t = 1; t <= 65535; ++t) {
      std::string name = zones::typeToText(static_cast<uint16_t>(t));
      if (name.rfind("TYPE", 0) != 0) m.emplace(std::move(name), static_cast<uint16_t>(t));
    }
    return m;
  }();
  const std::string u = upper(text);
  if (auto it = kByName.find(u); it != kByName.end()) return it->second;
  if (u.size() > 4 && u.rfind("TYPE", 0) == 0 && u.size() <= 9 &&
      u.find_first_not_of("0123456789", 4) == std::string::npos) {
    const unsigned long v = std::stoul(u.substr(4));
    if (v >= 1 && v <= 65535) return static_cast<uint16_t>(v);
  }
  return 0;
}

std::string recordContent(uint16_t type, std::span<const uint8_t> rdata) {
  std::string text = zones::rdataToText(type, rdata);
  if (type != dns::rrtype::kTXT && type != kSpf) return text;
  // The writer's quoted strings with the \DDD of octets above 0x7F put back as octets: PowerDNS
  // shows UTF-8 as it is.
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    const bool ddd = i + 3 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
                     std::isdigit(static_cast<unsigned char>(text[i + 2])) &&
                     std::isdigit(static_cast<unsigned char>(text[i + 3]));
    const int value = ddd ? std::stoi(text.substr(i + 1, 3)) : 0;
    if (value >= 0x80 && value <= 0xFF) {
      out.push_back(static_cast<char>(value));
      i += 3;
    } else {
      out.append(text, i, 2);  // an escape kept as it is: \" \\ \DDD
      ++i;
    }
  }
  return out;
}

zones::RRsetSpec RRsetChange::spec() const {
  zones::RRsetSpec s;
  s.owner = owner;
  s.type = type;
  s.ttl = ttl;
  s.rdata = rdata;
  return s;
}

json::object zoneObject(const zones::ZoneContent& content, const ZoneMeta& meta,
                        const ExtrasMap* extras, bool with_rrsets) {
  json::object o;
  putCommon(o, content, meta);
  o["api_rectify"] = false;
  o["master_tsig_key_ids"] = json::array{};
  o["nsec3narrow"] = false;
  o["nsec3param"] = "";
  if (with_rrsets) {
    json::array rrsets;
    std::set<std::pair<std::string, uint16_t>> shown;
    for (size_t i = 0; i < content.rrsetCount(); ++i) {
      const auto rr = content.rrset(i);
      const std::string owner = lowerOwnerText(rr.owner());
      json::array records;
      for (auto rd : rr.rdata()) records.push_back(recordJson(recordContent(rr.type(), rd), false));
      json::array comments;
      if (extras != nullptr) {
        if (auto it = extras->find({owner, rr.type()}); it != extras->end()) {
          for (const auto& rd : it->second.disabled) {
            records.push_back(recordJson(recordContent(rr.type(), rd), true));
          }
          comments = commentsJson(it->second.comments);
        }
      }
      shown.emplace(owner, rr.type());
      rrsets.push_back(json::object{{"comments", std::move(comments)},
                                    {"name", owner},
                                    {"records", std::move(records)},
                                    {"ttl", rr.ttl()},
                                    {"type", zones::typeToText(rr.type())}});
    }
    // RRsets with only disabled records or only comments (PowerDNS shows them with TTL 0).
    if (extras != nullptr) {
      for (const auto& [key, extra] : *extras) {
        if (shown.count(key) != 0) continue;
        json::array records;
        for (const auto& rd : extra.disabled) {
          records.push_back(recordJson(recordContent(key.second, rd), true));
        }
        rrsets.push_back(json::object{{"comments", commentsJson(extra.comments)},
                                      {"name", key.first},
                                      {"records", std::move(records)},
                                      {"ttl", extra.disabled.empty() ? 0 : extra.ttl},
                                      {"type", zones::typeToText(key.second)}});
      }
    }
    o["rrsets"] = std::move(rrsets);
  }
  o["slave_tsig_key_ids"] = json::array{};
  o["soa_edit"] = "";
  o["soa_edit_api"] = meta.soa_edit_api;
  return sortedKeys(o);
}

json::object zoneListEntry(const zones::ZoneContent& content, const ZoneMeta& meta) {
  json::object o;
  putCommon(o, content, meta);
  return sortedKeys(o);
}

ApiResult<std::vector<RRsetChange>> parsePatch(std::string_view body, const dns::NameBuf& apex,
                                               int64_t now) {
  auto doc = parseBody(body);
  if (!doc) return doc.error();
  const json::array* rrsets = nullptr;
  if (const json::object* o = doc->if_object()) {
    if (const json::value* r = o->if_contains("rrsets")) rrsets = r->if_array();
  }
  if (rrsets == nullptr) return unprocessable("No rrsets given in update request");
  return parseRRsets(*rrsets, apex, now, true);
}

void applyExtras(ExtrasMap& extras, const std::vector<RRsetChange>& changes) {
  for (const RRsetChange& ch : changes) {
    const std::pair<std::string, uint16_t> key{ch.owner_text, ch.type};
    if (ch.kind == RRsetChange::Kind::kDelete) {
      extras.erase(key);
      continue;
    }
    RRsetExtras& e = extras[key];
    if (ch.has_records) {
      e.disabled = ch.disabled;
      e.ttl = ch.ttl;
    }
    if (ch.has_comments) e.comments = ch.comments;
    if (e.disabled.empty() && e.comments.empty()) extras.erase(key);
  }
}

ApiResult<void> checkConflicts(const zones::ZoneContent& content,
                               const std::vector<RRsetChange>& changes) {
  // The types at each changed owner, as the changes are applied one by one (PowerDNS checks each
  // change against the data so far: "A then CNAME" in one request blames the CNAME's rrset,
  // "CNAME then A" the A's).
  std::map<std::string, std::set<uint16_t>> types;
  for (const RRsetChange& ch : changes) {
    auto [it, fresh] = types.try_emplace(ch.owner_text);
    if (fresh) {
      for (size_t i = content.lowerBound(ch.owner.data); i < content.rrsetCount(); ++i) {
        const auto rr = content.rrset(i);
        if (!dns::equalNames(rr.owner(), ch.owner.data)) break;
        it->second.insert(rr.type());
      }
    }
    std::set<uint16_t>& at = it->second;
    if (ch.kind == RRsetChange::Kind::kDelete || (ch.has_records && ch.rdata.empty())) {
      at.erase(ch.type);
      continue;
    }
    if (!ch.has_records) continue;
    const bool cname = ch.type == dns::rrtype::kCNAME;
    const bool conflict = cname ? std::any_of(at.begin(), at.end(),
                                              [](uint16_t t) { return t != dns::rrtype::kCNAME; })
                                : at.count(dns::rrtype::kCNAME) != 0;
    if (conflict) {
      return unprocessable("RRset " + ch.owner_text + " IN " + zones::typeToText(ch.type) +
                           ": Conflicts with pre-existing RRset");
    }
    at.insert(ch.type);
  }
  return {};
}

ApiResult<ZoneCreate> parseZoneCreate(std::string_view body, int64_t now) {
  auto doc = parseBody(body);
  if (!doc) return doc.error();
  const json::object* o = doc->if_object();
  const json::string* name = o != nullptr ? stringAt(*o, "name") : nullptr;
  if (name == nullptr) return keyError("name", "not present or not a String");
  auto apex = canonicalName(view(*name));
  if (!apex) return unprocessable(notCanonical(view(*name)));
  ZoneCreate z;
  z.name = *apex;
  z.name_text = dns::toText(apex->data);
  // PowerDNS 4.7 takes a kind it does not know for Native.
  if (const json::string* kind = stringAt(*o, "kind")) {
    for (const char* k : {"Master", "Slave"}) {
      if (equalsNoCase(view(*kind), k)) z.meta.kind = k;
    }
  }
  if (const json::string* soa_edit_api = stringAt(*o, "soa_edit_api")) {
    z.meta.soa_edit_api = std::string(view(*soa_edit_api));
  }
  if (const json::string* account = stringAt(*o, "account")) {
    z.meta.account = std::string(view(*account));
  }
  if (const json::value* m = o->if_contains("masters"); m != nullptr && m->is_array()) {
    for (const json::value& v : m->get_array()) {
      if (const json::string* s = v.if_string()) z.meta.masters.emplace_back(view(*s));
    }
  }
  if (const json::value* ns = o->if_contains("nameservers"); ns != nullptr && ns->is_array()) {
    for (const json::value& v : ns->get_array()) {
      const json::string* s = v.if_string();
      if (s == nullptr || !canonicalName(view(*s))) {
        return unprocessable("Nameserver is not canonical: '" +
                             (s != nullptr ? std::string(view(*s)) : json::serialize(v)) + "'");
      }
      z.nameservers.emplace_back(view(*s));
    }
  }
  if (const json::value* r = o->if_contains("rrsets"); r != nullptr && r->is_array()) {
    auto rrsets = parseRRsets(r->get_array(), z.name, now, false);
    if (!rrsets) return rrsets.error();
    z.rrsets = std::move(*rrsets);
  }
  if (!z.nameservers.empty()) {
    for (const RRsetChange& ch : z.rrsets) {
      if (ch.type == dns::rrtype::kNS && dns::equalNames(ch.owner.data, z.name.data)) {
        return unprocessable("Nameservers list MUST NOT be mixed with zone-level NS in rrsets");
      }
    }
  }
  return z;
}

ApiResult<zones::ZoneContent> initialContent(const ZoneCreate& create, uint32_t serial) {
  zones::ZoneContent content(create.name);
  zones::RRsetSpec soa;
  soa.owner = create.name;
  soa.type = dns::rrtype::kSOA;
  soa.ttl = kDefaultTtl;
  dns::NameBuf mname;
  dns::NameBuf rname;
  (void)dns::fromText("a.misconfigured.dns.server.invalid.", mname);
  (void)dns::fromText("hostmaster." + create.name_text, rname);
  std::vector<uint8_t> rd;
  putName(rd, mname);
  putName(rd, rname);
  for (const uint32_t v : {serial, 10800U, 3600U, 604800U, 3600U}) putU32(rd, v);
  soa.rdata.push_back(std::move(rd));
  std::vector<zones::RRsetSpec> specs{soa};
  if (!create.nameservers.empty()) {
    zones::RRsetSpec ns;
    ns.owner = create.name;
    ns.type = dns::rrtype::kNS;
    ns.ttl = kDefaultTtl;
    for (const std::string& text : create.nameservers) {
      dns::NameBuf n;
      (void)dns::fromText(text, n);  // checked by parseZoneCreate
      ns.rdata.emplace_back(n.data, n.data + n.length);
    }
    specs.push_back(std::move(ns));
  }
  for (const RRsetChange& ch : create.rrsets) specs.push_back(ch.spec());
  for (const zones::RRsetSpec& s : specs) {
    if (auto r = content.replace(s); !r) return unprocessable(r.error().message);
  }
  return content;
}

namespace {

// Case-insensitive glob: '*' any run of characters, '?' one character.
bool globMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || std::tolower(static_cast<unsigned char>(pattern[p])) ==
                                  std::tolower(static_cast<unsigned char>(text[t])))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string_view withoutDot(std::string_view name) {
  return name.size() > 1 && name.back() == '.' ? name.substr(0, name.size() - 1) : name;
}

}  // namespace

ApiResult<json::array> searchData(std::span<const SearchZone> zones, std::string_view q, size_t max,
                                  std::string_view object_type) {
  if (q.empty()) return unprocessable("Query q can't be blank");
  const bool all = object_type.empty() || object_type == "all";
  json::array found_zones;
  json::array records;
  json::array comments;
  auto record = [&](const std::string& zone, const std::string& owner, uint16_t type, uint32_t ttl,
                    std::span<const uint8_t> rd, bool disabled) {
    if (records.size() >= max) return;
    std::string content = recordContent(type, rd);
    if (!globMatch(q, withoutDot(owner)) && !globMatch(q, content)) return;
    records.push_back(json::object{{"content", std::move(content)},
                                   {"disabled", disabled},
                                   {"name", owner},
                                   {"object_type", "record"},
                                   {"ttl", ttl},
                                   {"type", zones::typeToText(type)},
                                   {"zone", zone},
                                   {"zone_id", zoneId(zone)}});
  };
  for (const SearchZone& z : zones) {
    const std::string zone = z.content->origin();
    if ((all || object_type == "zone") && found_zones.size() < max &&
        globMatch(q, withoutDot(zone))) {
      found_zones.push_back(
          json::object{{"name", zone}, {"object_type", "zone"}, {"zone_id", zoneId(zone)}});
    }
    if (all || object_type == "record") {
      for (size_t i = 0; i < z.content->rrsetCount(); ++i) {
        const auto rr = z.content->rrset(i);
        const std::string owner = lowerOwnerText(rr.owner());
        for (auto rd : rr.rdata()) record(zone, owner, rr.type(), rr.ttl(), rd, false);
        if (z.extras == nullptr) continue;
        if (auto it = z.extras->find({owner, rr.type()}); it != z.extras->end()) {
          for (const auto& rd : it->second.disabled) {
            record(zone, owner, rr.type(), rr.ttl(), rd, true);
          }
        }
      }
    }
    if ((all || object_type == "comment") && z.extras != nullptr) {
      for (const auto& [key, extra] : *z.extras) {
        for (const Comment& c : extra.comments) {
          if (comments.size() >= max) break;
          if (!globMatch(q, withoutDot(key.first)) && !globMatch(q, c.content)) continue;
          comments.push_back(json::object{{"content", c.content},
                                          {"name", key.first},
                                          {"object_type", "comment"},
                                          {"type", zones::typeToText(key.second)},
                                          {"zone", zone},
                                          {"zone_id", zoneId(zone)}});
        }
      }
    }
  }
  json::array out = std::move(found_zones);
  for (auto& v : records) out.push_back(std::move(v));
  for (auto& v : comments) out.push_back(std::move(v));
  return out;
}

bool metadataKindAccepted(std::string_view kind) {
  static const std::set<std::string_view> kWritable = {"ALLOW-AXFR-FROM",
                                                       "ALLOW-DNSUPDATE-FROM",
                                                       "ALSO-NOTIFY",
                                                       "AXFR-SOURCE",
                                                       "FORWARD-DNSUPDATE",
                                                       "GSS-ACCEPTOR-PRINCIPAL",
                                                       "GSS-ALLOW-AXFR-PRINCIPAL",
                                                       "IXFR",
                                                       "NOTIFY-DNSUPDATE",
                                                       "PUBLISH-CDNSKEY",
                                                       "PUBLISH-CDS",
                                                       "SLAVE-RENOTIFY",
                                                       "SOA-EDIT",
                                                       "SOA-EDIT-DNSUPDATE",
                                                       "TSIG-ALLOW-DNSUPDATE"};
  return kWritable.count(kind) != 0 || (kind.size() > 2 && kind.substr(0, 2) == "X-");
}

namespace {

ApiResult<Metadata> metadataOf(const json::object* o, std::string_view kind) {
  if (!metadataKindAccepted(kind)) {
    return unprocessable("Unsupported metadata kind '" + std::string(kind) + "'");
  }
  const json::value* list = o != nullptr ? o->if_contains("metadata") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return unprocessable("metadata is not specified or not an array");
  }
  Metadata m{std::string(kind), {}};
  for (const json::value& v : list->get_array()) {
    const json::string* s = v.if_string();
    if (s == nullptr) return unprocessable("metadata must be strings");
    m.values.emplace_back(view(*s));
  }
  return m;
}

}  // namespace

ApiResult<Metadata> parseMetadataPut(std::string_view body, std::string_view kind) {
  auto doc = parseBody(body);
  if (!doc) return doc.error();
  return metadataOf(doc->if_object(), kind);
}

ApiResult<Metadata> parseMetadataPost(std::string_view body) {
  auto doc = parseBody(body);
  if (!doc) return doc.error();
  const json::object* o = doc->if_object();
  const json::string* kind = o != nullptr ? stringAt(*o, "kind") : nullptr;
  if (kind == nullptr) return unprocessable("kind is not specified or not a string");
  return metadataOf(o, view(*kind));
}

json::object metadataJson(const Metadata& metadata) {
  json::array values;
  for (const std::string& v : metadata.values) values.push_back(json::string(v));
  return json::object{
      {"kind", metadata.kind}, {"metadata", std::move(values)}, {"type", "Metadata"}};
}

uint32_t creationSerial(std::string_view soa_edit_api, int64_t now) {
  const auto policy = serialPolicy(soa_edit_api);
  if (!policy) return 0;
  switch (*policy) {
    case zones::SerialPolicy::kIncrement:
      return 1;
    case zones::SerialPolicy::kUnixtime:
      return static_cast<uint32_t>(now);
    case zones::SerialPolicy::kDate:
      break;
  }
  const std::time_t t = static_cast<std::time_t>(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return static_cast<uint32_t>((tm.tm_year + 1900) * 1000000 + (tm.tm_mon + 1) * 10000 +
                               tm.tm_mday * 100 + 1);
}

std::optional<zones::SerialPolicy> serialPolicy(std::string_view soa_edit_api) {
  if (equalsNoCase(soa_edit_api, "DEFAULT")) return zones::SerialPolicy::kDate;
  if (equalsNoCase(soa_edit_api, "INCREASE") || equalsNoCase(soa_edit_api, "SOA-EDIT-INCREASE")) {
    return zones::SerialPolicy::kIncrement;
  }
  if (equalsNoCase(soa_edit_api, "EPOCH")) return zones::SerialPolicy::kUnixtime;
  return std::nullopt;
}

const char* soaEditApi(zones::SerialPolicy policy) {
  switch (policy) {
    case zones::SerialPolicy::kDate:
      return "DEFAULT";
    case zones::SerialPolicy::kUnixtime:
      return "EPOCH";
    case zones::SerialPolicy::kIncrement:
      break;
  }
  return "INCREASE";
}

}  // namespace meridian::api::pdns
