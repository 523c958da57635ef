#include "app/config.h"

#include <sched.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/log.h"
#include "georoute/compile.h"

namespace meridian::app {

// The steering structs are georoute's (georoute/steering_config.h); this file fills them from TOML.
using georoute::CheckConfig;
using georoute::EndpointConfig;
using georoute::GeoMapConfig;
using georoute::NamedListConfig;
using georoute::parseCidr;
using georoute::PoolConfig;
using georoute::ServiceConfig;
using georoute::SteeringConfig;

namespace {

std::string where(const std::string& file, const toml::node& n, const std::string& key) {
  const auto& src = n.source();
  // A node parsed from the file carries its path; one that --set put there does not, and naming
  // the file for it would send the operator to a line that holds something else.
  const bool from_file = !file.empty() && src.path != nullptr;
  std::string loc = from_file ? file : std::string("--set");
  // append() rather than ":" + std::to_string(...): GCC 12 at -O3 misreports that form as an
  // overlapping memcpy (-Wrestrict false positive).
  if (src.begin.line > 0 && from_file) loc.append(":").append(std::to_string(src.begin.line));
  return loc + ": " + key;
}

// One step of a --set key: a table key, optionally followed by "[NAME]" selecting the entry of an
// array of tables ([[service]], [[region]], [[check]], [[zone]], [[service.pool]]) by its name.
struct KeyPart {
  std::string key;
  std::string select;  // "" = no selector
  bool has_select = false;
};

// "service[www.example.com].geo.default" -> service[www.example.com], geo, default. Dots inside
// the brackets belong to the name, and so do those of a part written in double quotes, as in
// TOML: service[www.example.com].geo.cidr."10.0.0.0/8".
Result<std::vector<KeyPart>> splitKey(const std::string& key) {
  std::vector<KeyPart> parts(1);
  for (size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c == '"' && parts.back().key.empty() && !parts.back().has_select) {
      const size_t close = key.find('"', i + 1);
      if (close == std::string::npos || close == i + 1)
        return Error{"--set " + key + ": expected \"KEY\" with a closing '\"'"};
      parts.back().key = key.substr(i + 1, close - i - 1);
      i = close;
      if (i + 1 < key.size() && key[i + 1] != '.' && key[i + 1] != '[')
        return Error{"--set " + key + ": expected '.' after a quoted key"};
    } else if (c == '.') {
      if (parts.back().key.empty()) return Error{"--set " + key + ": empty key part"};
      parts.emplace_back();
    } else if (c == '[') {
      const size_t close = key.find(']', i);
      if (close == std::string::npos || parts.back().key.empty() || parts.back().has_select)
        return Error{"--set " + key + ": expected KEY[NAME] with a closing ']'"};
      parts.back().select = key.substr(i + 1, close - i - 1);
      parts.back().has_select = true;
      if (parts.back().select.empty()) return Error{"--set " + key + ": empty [NAME]"};
      i = close;
      if (i + 1 < key.size() && key[i + 1] != '.')
        return Error{"--set " + key + ": expected '.' after ']'"};
    } else {
      if (parts.back().has_select) return Error{"--set " + key + ": expected '.' after ']'"};
      parts.back().key += c;
    }
  }
  if (parts.back().key.empty()) return Error{"--set " + key + ": empty key part"};
  return parts;
}

// Names compare as DNS names do for services and zones: case-insensitively, trailing dot optional.
bool sameName(std::string a, std::string b) {
  for (std::string* s : {&a, &b}) {
    if (s->size() > 1 && s->back() == '.') s->pop_back();
    for (char& c : *s) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  }
  return a == b;
}

// Applies "a.b.c=value" to the table: value parsed as TOML, else taken as a string. Arrays of
// tables are reached by name: "service[www.example.com].ttl=5", "region[eu].bias_km=-500",
// "service[www.example.com].pool[eu].check=web" (pools are named by their region).
Result<void> applySet(toml::table& root, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Error{"--set '" + assignment + "': expected key=value"};
  }
  const std::string key = assignment.substr(0, eq);
  const std::string value = assignment.substr(eq + 1);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{};
    parsed.insert("v", value);  // not TOML: take it as a string (e.g. --set server.nsid=ns1)
  }
  auto parts = splitKey(key);
  if (!parts) return parts.error();
  if (parts->back().has_select)
    return Error{"--set " + key + ": a [NAME] entry cannot be replaced whole; set its keys"};
  toml::table* table = &root;
  std::string path;  // what has been walked, for messages
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    const KeyPart& part = (*parts)[i];
    path += (path.empty() ? "" : ".") + part.key;
    toml::node* next = table->get(part.key);
    if (next != nullptr && next->is_array_of_tables()) {
      if (!part.has_select) {
        return Error{"--set " + key + ": [[" + path + "]] is an array of tables; name the entry, " +
                     "e.g. --set '" + part.key + "[NAME]." + (*parts)[i + 1].key +
                     "=...' (NAME is " + "its name, or its region for a pool)"};
      }
      toml::table* found = nullptr;
      std::string names;
      for (auto& item : *next->as_array()) {
        toml::table* t = item.as_table();
        for (const char* id : {"name", "region"}) {
          const auto v = t->get(id) ? t->get(id)->value<std::string>() : std::nullopt;
          if (!v) continue;
          names += (names.empty() ? "" : ", ") + *v;
          if (sameName(*v, part.select) && found == nullptr) found = t;
          break;
        }
      }
      if (found == nullptr) {
        return Error{"--set " + key + ": no [[" + path + "]] named '" + part.select + "'" +
                     (names.empty() ? std::string(" (there are none)") : " (have: " + names + ")")};
      }
      table = found;
      path += "[" + part.select + "]";
      continue;
    }
    if (part.has_select) {
      return Error{"--set " + key + ": '" + path + "' is not an array of tables ([[" + path +
                   "]]), so [" + part.select + "] selects nothing"};
    }
    if (next == nullptr) {
      table->insert(part.key, toml::table{});
      next = table->get(part.key);
    }
    if (!next->is_table()) return Error{"--set " + key + ": '" + path + "' is not a table"};
    table = next->as_table();
  }
  const std::string& last = parts->back().key;
  if (toml::node* old = table->get(last); old != nullptr && old->is_array_of_tables()) {
    return Error{"--set " + key + ": [[" + (path.empty() ? "" : path + ".") + last +
                 "]] is an array of tables; set one entry's keys with " + last +
                 "[NAME].KEY=VALUE"};
  }
  parsed.get("v")->visit([&](auto&& n) {
    using N = std::remove_cvref_t<decltype(n)>;
    table->insert_or_assign(last, N(n));
  });
  return {};
}

template <typename T>
Result<T> integer(const std::string& file, const toml::node& n, const std::string& key, int64_t lo,
                  int64_t hi) {
  const auto v = n.value<int64_t>();
  if (!v || *v < lo || *v > hi) {
    return Error{where(file, n, key) + " must be an integer from " + std::to_string(lo) + " to " +
                 std::to_string(hi)};
  }
  return static_cast<T>(*v);
}

Result<std::string> string(const std::string& file, const toml::node& n, const std::string& key) {
  const auto v = n.value<std::string>();
  if (!v) return Error{where(file, n, key) + " must be a string"};
  return Result<std::string>(boost::system::in_place_value, *v);
}

double number(const toml::node& n, bool* ok) {
  if (auto d = n.value<double>()) {
    *ok = true;
    return *d;
  }
  *ok = false;
  return 0;
}

Result<std::vector<std::string>> stringList(const std::string& file, const toml::node& n,
                                            const std::string& key) {
  std::vector<std::string> out;
  const toml::array* arr = n.as_array();
  if (arr == nullptr) return Error{where(file, n, key) + " must be an array of strings"};
  for (const auto& item : *arr) {
    auto v = item.value<std::string>();
    if (!v) return Error{where(file, item, key) + " must be an array of strings"};
    out.push_back(*v);
  }
  return out;
}

// One geo map entry: an array of regions, or a string naming a [lists] entry (resolved when
// the steering is compiled, so [lists] may come anywhere in the file).
Result<void> geoEntry(const std::string& file, const toml::node& n, const std::string& key,
                      const std::string& full, std::vector<std::string>& regions,
                      GeoMapConfig& geo) {
  geo.where[key] = where(file, n, full);
  if (auto name = n.value<std::string>()) {
    regions.clear();
    geo.named[key] = *name;
    return {};
  }
  auto l = stringList(file, n, full);
  if (!l) {
    return Error{where(file, n, full) +
                 " must be an array of regions or the name of a [lists] entry"};
  }
  regions = *l;
  return {};
}

// [service.geo]: default, and the tables continent, country, subdivision, cidr, asn.
Result<void> parseGeoMap(const std::string& file, const toml::node& n, GeoMapConfig& geo) {
  const toml::table* g = n.as_table();
  if (g == nullptr) return Error{where(file, n, "service.geo") + " must be a table"};
  for (auto&& [gk, gv] : *g) {
    const std::string gkey(gk.str());
    const std::string gfull = "service.geo." + gkey;
    if (gkey == "default") {
      auto r = geoEntry(file, gv, "default", gfull, geo.default_list, geo);
      if (!r) return r.error();
      continue;
    }
    using Level = std::map<std::string, std::vector<std::string>>;
    const std::pair<const char*, Level*> kLevels[] = {{"continent", &geo.continent},
                                                      {"country", &geo.country},
                                                      {"subdivision", &geo.subdivision},
                                                      {"cidr", &geo.cidr},
                                                      {"asn", &geo.asn}};
    Level* level = nullptr;
    for (const auto& [name, l] : kLevels) {
      if (gkey == name) level = l;
    }
    if (level == nullptr) {
      return Error{where(file, gv, gfull) +
                   ": unknown key (default, continent, country, subdivision, cidr, asn)"};
    }
    const toml::table* t = gv.as_table();
    if (t == nullptr) return Error{where(file, gv, gfull) + " must be a table of region lists"};
    for (auto&& [k, v] : *t) {
      const std::string code(k.str());
      auto r = geoEntry(file, v, gkey + "." + code, gfull + "." + code, (*level)[code], geo);
      if (!r) return r.error();
    }
  }
  return {};
}

const toml::array* tableArray(const toml::node& n) {
  const toml::array* a = n.as_array();
  if (a == nullptr || !a->is_array_of_tables()) return nullptr;
  return a;
}

uint16_t typeCode(const std::string& t) {
  static const std::pair<const char*, uint16_t> kTypes[] = {{"A", 1},     {"NS", 2},  {"CNAME", 5},
                                                            {"SOA", 6},   {"MX", 15}, {"TXT", 16},
                                                            {"AAAA", 28}, {"SRV", 33}};
  for (const auto& [name, code] : kTypes) {
    if (t == name) return code;
  }
  return 0;
}

Result<void> parseSteering(const std::string& file, const std::filesystem::path& base,
                           const std::string& section, const toml::node& v, SteeringConfig& st) {
  if (section == "geoip") {
    const toml::table* t = v.as_table();
    if (t == nullptr) return Error{where(file, v, "geoip") + " must be a table"};
    for (auto&& [k, n] : *t) {
      const std::string key(k.str());
      if (key == "database") {
        auto s = string(file, n, "geoip.database");
        if (!s) return s.error();
        std::filesystem::path p(*s);
        st.geoip = p.is_relative() ? (base / p).lexically_normal().string() : *s;
      } else if (key == "asn_database") {
        auto s = string(file, n, "geoip.asn_database");
        if (!s) return s.error();
        std::filesystem::path p(*s);
        st.asn_database = p.is_relative() ? (base / p).lexically_normal().string() : *s;
      } else if (key == "use_registered_country") {
        auto b = n.value<bool>();
        if (!b)
          return Error{where(file, n, "geoip.use_registered_country") + " must be true or false"};
        st.use_registered_country = *b;
      } else if (key == "ecs_trusted") {
        auto l = stringList(file, n, "geoip.ecs_trusted");
        if (!l) return l.error();
        for (const auto& c : *l) {
          if (auto e = parseCidr(c); !e)
            return Error{where(file, n, "geoip.ecs_trusted") + ": " + e.error().message};
        }
        st.ecs_trusted = *l;
      } else {
        return Error{where(file, n, "geoip." + key) + ": unknown key"};
      }
    }
    return {};
  }
  if (section == "lists") {
    const toml::table* t = v.as_table();
    if (t == nullptr) return Error{where(file, v, "lists") + " must be a table of region lists"};
    for (auto&& [k, n] : *t) {
      const std::string name(k.str());
      auto l = stringList(file, n, "lists." + name);
      if (!l) return l.error();
      st.lists[name] = NamedListConfig{*l, where(file, n, "lists." + name)};
    }
    return {};
  }
  const toml::array* arr = tableArray(v);
  if (arr == nullptr)
    return Error{where(file, v, section) + " must be an array of tables ([[" + section + "]])"};
  for (const auto& item : *arr) {
    const toml::table& t = *item.as_table();
    const std::string at = where(file, item, section);
    if (section == "region") {
      georoute::Region r;
      bool have_lat = false, have_lon = false;
      for (auto&& [k, n] : t) {
        const std::string key(k.str());
        bool ok = true;
        if (key == "name") {
          auto s = string(file, n, "region.name");
          if (!s) return s.error();
          r.name = *s;
        } else if (key == "latitude") {
          r.latitude = number(n, &ok);
          have_lat = ok && r.latitude >= -90 && r.latitude <= 90;
          if (!have_lat)
            return Error{where(file, n, "region.latitude") + " must be a number from -90 to 90"};
        } else if (key == "longitude") {
          r.longitude = number(n, &ok);
          have_lon = ok && r.longitude >= -180 && r.longitude <= 180;
          if (!have_lon)
            return Error{where(file, n, "region.longitude") + " must be a number from -180 to 180"};
        } else if (key == "bias_km") {
          r.bias_km = number(n, &ok);
          if (!ok) return Error{where(file, n, "region.bias_km") + " must be a number"};
        } else {
          return Error{where(file, n, "region." + key) + ": unknown key"};
        }
      }
      // Coordinates are optional: only a `nearest` filter needs them, which compileSteering checks
      // for the regions of each service that has one. One without the other is a typo, though.
      if (r.name.empty()) return Error{at + " needs a name"};
      if (have_lat != have_lon)
        return Error{at + " '" + r.name + "': give both latitude and longitude, or neither"};
      r.has_coordinates = have_lat;
      r.where = at;
      for (const auto& other : st.regions) {
        if (other.name == r.name) return Error{at + ": region '" + r.name + "' declared twice"};
      }
      st.regions.push_back(r);
    } else if (section == "check") {
      CheckConfig c;
      c.where = at;
      for (auto&& [k, n] : t) {
        const std::string key(k.str());
        const std::string full = "check." + key;
        if (key == "name" || key == "type" || key == "path" || key == "host" ||
            key == "expect_body" || key == "qname") {
          auto s = string(file, n, full);
          if (!s) return s.error();
          (key == "name"          ? c.name
           : key == "type"        ? c.type
           : key == "path"        ? c.path
           : key == "host"        ? c.host
           : key == "expect_body" ? c.expect_body
                                  : c.dns_qname) = *s;
        } else if (key == "qtype") {
          auto s = string(file, n, full);
          if (!s || typeCode(*s) == 0)
            return Error{where(file, n, full) + " must be a type name such as SOA or A"};
          c.dns_qtype = typeCode(*s);
        } else if (key == "verify_tls") {
          const auto b = n.value<bool>();
          if (!b) return Error{where(file, n, full) + " must be true or false"};
          c.verify_tls = *b;
        } else if (key == "port") {
          auto x = integer<uint16_t>(file, n, full, 1, 65535);
          if (!x) return x.error();
          c.port = *x;
        } else if (key == "interval_ms" || key == "timeout_ms") {
          auto x = integer<uint32_t>(file, n, full, 10, 3600000);
          if (!x) return x.error();
          (key == "interval_ms" ? c.interval_ms : c.timeout_ms) = *x;
        } else if (key == "rise" || key == "fall") {
          auto x = integer<uint32_t>(file, n, full, 1, 100);
          if (!x) return x.error();
          (key == "rise" ? c.rise : c.fall) = *x;
        } else if (key == "expect_status") {
          const toml::array* a = n.as_array();
          if (a == nullptr)
            return Error{where(file, n, full) + " must be an array of status codes"};
          c.expect_status.clear();
          for (const auto& code : *a) {
            auto x = integer<int>(file, code, full, 100, 599);
            if (!x) return x.error();
            c.expect_status.push_back(*x);
          }
        } else {
          return Error{where(file, n, full) + ": unknown key"};
        }
      }
      if (c.name.empty()) return Error{at + " needs a name"};
      if (c.type != "tcp" && c.type != "http" && c.type != "https" && c.type != "dns") {
        return Error{at + ": check type must be tcp, http, https or dns"};
      }
      if (c.timeout_ms > c.interval_ms)
        return Error{at + ": timeout_ms must not exceed interval_ms"};
      if (!t.contains("port")) c.port = c.type == "https" ? 443 : c.type == "dns" ? 53 : 80;
      st.checks.push_back(c);
    } else if (section == "service") {
      ServiceConfig sc;
      sc.where = at;
      for (auto&& [k, n] : t) {
        const std::string key(k.str());
        const std::string full = "service." + key;
        if (key == "name" || key == "when_all_down" || key == "check") {
          auto s = string(file, n, full);
          if (!s) return s.error();
          (key == "name" ? sc.name : key == "check" ? sc.check : sc.when_all_down) = *s;
        } else if (key == "ttl") {
          auto x = integer<uint32_t>(file, n, full, 0, 604800);
          if (!x) return x.error();
          sc.ttl = *x;
        } else if (key == "first_n") {
          auto x = integer<uint32_t>(file, n, full, 1, 64);
          if (!x) return x.error();
          sc.first_n = *x;
        } else if (key == "weighted_prefix_v4" || key == "weighted_prefix_v6") {
          auto x = integer<uint32_t>(file, n, full, 0, key == "weighted_prefix_v4" ? 32 : 128);
          if (!x) return x.error();
          (key == "weighted_prefix_v4" ? sc.weighted_prefix_v4 : sc.weighted_prefix_v6) = *x;
        } else if (key == "policy") {
          auto l = stringList(file, n, full);
          if (!l) return l.error();
          sc.policy = *l;
        } else if (key == "geo") {
          auto r = parseGeoMap(file, n, sc.geo);
          if (!r) return r.error();
        } else if (key == "pool") {
          const toml::array* pools = tableArray(n);
          if (pools == nullptr)
            return Error{where(file, n, full) + " must be an array of tables ([[service.pool]])"};
          for (const auto& pn : *pools) {
            PoolConfig pc;
            pc.where = where(file, pn, "service.pool");
            for (auto&& [pk, pv] : *pn.as_table()) {
              const std::string pkey(pk.str());
              const std::string pfull = "service.pool." + pkey;
              if (pkey == "region" || pkey == "check") {
                auto s = string(file, pv, pfull);
                if (!s) return s.error();
                (pkey == "region" ? pc.region : pc.check) = *s;
              } else if (pkey == "endpoints") {
                const toml::array* eps = pv.as_array();
                if (eps == nullptr) return Error{where(file, pv, pfull) + " must be an array"};
                for (const auto& en : *eps) {
                  EndpointConfig ec;
                  ec.where = where(file, en, pfull);
                  if (auto addr = en.value<std::string>()) {
                    ec.address = *addr;
                  } else if (const toml::table* et = en.as_table()) {
                    for (auto&& [ek, ev] : *et) {
                      const std::string ekey(ek.str());
                      const std::string efull = pfull + "." + ekey;
                      if (ekey == "address" || ekey == "cname" || ekey == "check") {
                        auto s = string(file, ev, efull);
                        if (!s) return s.error();
                        (ekey == "address" ? ec.address
                         : ekey == "cname" ? ec.cname
                                           : ec.check) = *s;
                      } else if (ekey == "weight") {
                        auto x = integer<uint32_t>(file, ev, efull, 1, 1000000);
                        if (!x) return x.error();
                        ec.weight = *x;
                      } else {
                        return Error{where(file, ev, efull) + ": unknown key"};
                      }
                    }
                  } else {
                    return Error{ec.where + ": an endpoint is an address string or a table"};
                  }
                  if (ec.address.empty() == ec.cname.empty())
                    return Error{ec.where + ": give exactly one of address or cname"};
                  pc.endpoints.push_back(ec);
                }
              } else {
                return Error{where(file, pv, pfull) + ": unknown key"};
              }
            }
            if (pc.region.empty()) return Error{pc.where + " needs a region"};
            sc.pools.push_back(pc);
          }
        } else {
          return Error{where(file, n, full) + ": unknown key"};
        }
      }
      if (sc.name.empty()) return Error{at + " needs a name"};
      st.services.push_back(sc);
    }
  }
  return {};
}

// [rrl]: response rate limiting (server/rrl.h; docs/operations.md).
Result<void> parseRrl(const std::string& file, const toml::node& v, server::RrlSettings& rrl) {
  if (!v.is_table()) return Error{where(file, v, "rrl") + " must be a table"};
  for (auto&& [k, n] : *v.as_table()) {
    const std::string key(k.str());
    const std::string full = "rrl." + key;
    // Upper bounds keep responses_per_second x window x 1000 within 32 bits (server/rrl.cc).
    // `node`, not the binding `n`: clang 14 (the fuzz build) cannot capture structured bindings.
    const toml::node& node = n;
    auto set = [&](auto& field, int64_t lo, int64_t hi) -> Result<void> {
      auto x = integer<std::remove_reference_t<decltype(field)>>(file, node, full, lo, hi);
      if (!x) return x.error();
      field = *x;
      return {};
    };
    Result<void> r;
    if (key == "enabled") {
      // Strictly a boolean: toml++ would also read 1 as true.
      if (!n.is_boolean()) return Error{where(file, n, full) + " must be true or false"};
      rrl.enabled = n.as_boolean()->get();
    } else if (key == "responses_per_second") {
      r = set(rrl.responses_per_second, 1, 10000);
    } else if (key == "slip") {
      r = set(rrl.slip, 0, 10);  // BIND's range
    } else if (key == "window") {
      r = set(rrl.window, 1, 60);
    } else if (key == "ipv4_prefix_length") {
      r = set(rrl.ipv4_prefix_length, 8, 32);
    } else if (key == "ipv6_prefix_length") {
      r = set(rrl.ipv6_prefix_length, 16, 128);
    } else if (key == "table_size") {
      r = set(rrl.table_size, 4, 1 << 24);
    } else if (key == "exempt_clients") {
      auto l = stringList(file, n, full);
      if (!l) return l.error();
      rrl.exempt.clear();
      for (const auto& c : *l) {
        auto e = parseCidr(c);
        if (!e) return Error{where(file, n, full) + ": " + e.error().message};
        server::RrlNetwork net;
        net.ipv6 = e->ipv6;
        net.prefix = e->prefix;
        std::memcpy(net.address, e->address, 16);
        rrl.exempt.push_back(net);
      }
    } else {
      return Error{where(file, n, full) + ": unknown key"};
    }
    if (!r) return r.error();
  }
  return {};
}

}  // namespace

unsigned allowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

void applyLogLevel(const CommandLine& cmd, const Config& config) {
  const std::string& level = cmd.log_level.empty() ? config.log_level : cmd.log_level;
  if (level == "debug") log::setLevel(log::Level::kDebug);
  if (level == "info") log::setLevel(log::Level::kInfo);
  if (level == "warning") log::setLevel(log::Level::kWarning);
  if (level == "error") log::setLevel(log::Level::kError);
}

const char* configKeysHelp() {
  return R"(Configuration keys (TOML). Any key can be overridden with --set key=value; an entry of
[[zone]], [[region]], [[check]], [[service]] or [[service.pool]] is named in brackets (a pool by its
region): --set 'service[www.example.com].ttl=5', --set 'region[eu].bias_km=-300',
--set 'service[www.example.com].pool[eu].check=web'; a key with dots is quoted as in TOML:
--set 'service[www.example.com].geo.cidr."10.0.0.0/8"=["eu"]'.
  server.listen               array of "addr:port" ("[v6]:port"; the port is required, 0 = any
                              free port), default ["127.0.0.1:53"]
  server.threads              worker threads, 0 = CPUs in the affinity mask (default 0)
  server.udp_max_payload      largest UDP reply with EDNS, 512..4096 (default 1232)
  server.nsid                 RFC 5001 name server identifier (default: none)
  server.cookie_secret        RFC 9018 server cookie secret, 32 hex digits; share it across an anycast
                              set (default: random per process)
  server.require_cookie       a UDP query with a client cookie but no valid server cookie gets
                              BADCOOKIE and a fresh cookie instead of the answer (default false)
  server.tcp_idle_timeout_ms  idle TCP connections are closed after this (default 10000)
  server.tcp_io_timeout_ms    a TCP message must arrive, and a reply be taken by the client, within
                              this, else the connection is reset; 0 = never (default 5000)
  server.tcp_max_connections  open TCP connections across all workers; at the limit the oldest idle
                              one is closed for a new one; 0 = half the open-file limit (default 0)
  [rrl] enabled, responses_per_second, slip, window, ipv4_prefix_length, ipv6_prefix_length,
        exempt_clients, table_size   response rate limiting of UDP answers, off by default
                              (defaults 20/s, slip 2, window 4 s, /24, /56; see docs/operations.md)
  control.socket              local control socket for meridianctl, relative to the config file (default: none)
  log.level                   debug, info, warning or error (default info)
  [[zone]] name, file         an authoritative zone and its RFC 1035 zone file
  [geoip] database, asn_database, ecs_trusted, use_registered_country   City/Country (or
                              Meridian-built) .mmdb, optional ASN .mmdb, resolvers whose ECS is used,
                              map by registered_country when country is absent (default false)
  [lists] NAME = [regions]    named region lists; a geo entry "NAME" (a string) uses one
  [[region]] name, latitude, longitude, bias_km
  [[check]] name, type (tcp|http|https|dns), port, path, host, expect_status, expect_body,
            verify_tls, qname, qtype, interval_ms, timeout_ms, rise, fall
  [[service]] name, ttl, policy, first_n, when_all_down, check, weighted_prefix_v4/v6,
            geo.{default,continent,country,subdivision,cidr,asn}, [[service.pool]] region, check, endpoints
  endpoints entries           "ADDRESS", or { address | cname, weight, check }
  (see docs/steering.md)
)";
}

Result<Config> loadConfig(const CommandLine& cmd) {
  Config cfg;
  toml::table root;
  std::filesystem::path base = std::filesystem::current_path();
  if (!cmd.config_file.empty()) {
    cfg.source = cmd.config_file;
    std::ifstream in(cmd.config_file);
    if (!in) return Error{cmd.config_file + ": cannot open"};
    try {
      root = toml::parse(in, cmd.config_file);
    } catch (const toml::parse_error& e) {
      return Error{cmd.config_file + ":" + std::to_string(e.source().begin.line) + ": " +
                   std::string(e.description())};
    }
    base = std::filesystem::absolute(cmd.config_file).parent_path();
  }
  for (const auto& s : cmd.sets) {
    auto r = applySet(root, s);
    if (!r) return r.error();
  }
  const std::string& file = cfg.source;

  bool listen_set = false;
  for (auto&& [k, v] : root) {
    const std::string section(k.str());
    if (section == "server") {
      if (!v.is_table()) return Error{where(file, v, "server") + " must be a table"};
      for (auto&& [sk, sv] : *v.as_table()) {
        const std::string key(sk.str());
        const std::string full = "server." + key;
        if (key == "listen") {
          const toml::array* arr = sv.as_array();
          std::vector<std::string> items;
          if (arr != nullptr) {
            for (const auto& item : *arr) {
              auto s = string(file, item, full);
              if (!s) return s.error();
              items.push_back(*s);
            }
          } else {
            auto s = string(file, sv, full);
            if (!s) return Error{where(file, sv, full) + " must be an array of addresses"};
            items.push_back(*s);
          }
          for (const auto& item : items) {
            auto la = server::parseListenAddress(item);
            if (!la) return Error{where(file, sv, full) + ": " + la.error().message};
            cfg.server.listen.push_back(*la);
          }
          listen_set = true;
        } else if (key == "threads") {
          auto t = integer<unsigned>(file, sv, full, 0, 1024);
          if (!t) return t.error();
          cfg.server.threads = *t;
        } else if (key == "udp_max_payload") {
          auto t = integer<uint16_t>(file, sv, full, 512, 4096);
          if (!t) return t.error();
          cfg.protocol.max_udp_payload = *t;
        } else if (key == "nsid") {
          auto s = string(file, sv, full);
          if (!s) return s.error();
          if (s->size() > 128) return Error{where(file, sv, full) + " is longer than 128 octets"};
          cfg.protocol.nsid = *s;
        } else if (key == "cookie_secret") {
          auto s = string(file, sv, full);
          if (!s) return s.error();
          auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
          };
          bool ok = s->size() == 32;
          for (size_t i = 0; ok && i < 16; ++i) {
            const int hi = hex((*s)[2 * i]), lo = hex((*s)[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            if (ok) cfg.protocol.cookie_secret[i] = static_cast<uint8_t>(hi * 16 + lo);
          }
          if (!ok)
            return Error{where(file, sv, full) + " must be 32 hexadecimal digits (128 bits)"};
          cfg.cookie_secret_set = true;
        } else if (key == "require_cookie") {
          auto b = sv.value<bool>();
          if (!b) return Error{where(file, sv, full) + " must be true or false"};
          cfg.protocol.require_cookie = *b;
        } else if (key == "tcp_idle_timeout_ms") {
          auto t = integer<unsigned>(file, sv, full, 100, 3600000);
          if (!t) return t.error();
          cfg.server.tcp_idle_timeout_ms = *t;
        } else if (key == "tcp_io_timeout_ms") {
          auto t = integer<unsigned>(file, sv, full, 0, 3600000);
          if (!t) return t.error();
          cfg.server.tcp_io_timeout_ms = *t;
        } else if (key == "tcp_max_connections") {
          auto t = integer<unsigned>(file, sv, full, 0, 1000000);
          if (!t) return t.error();
          cfg.server.tcp_max_connections = *t;
        } else {
          return Error{where(file, sv, full) + ": unknown key"};
        }
      }
    } else if (section == "rrl") {
      auto r = parseRrl(file, v, cfg.protocol.rrl);
      if (!r) return r.error();
    } else if (section == "control") {
      if (!v.is_table()) return Error{where(file, v, "control") + " must be a table"};
      for (auto&& [sk, sv] : *v.as_table()) {
        const std::string key(sk.str());
        if (key != "socket") return Error{where(file, sv, "control." + key) + ": unknown key"};
        auto s = string(file, sv, "control.socket");
        if (!s) return s.error();
        std::filesystem::path sp(*s);
        cfg.control_socket = sp.is_relative() ? (base / sp).lexically_normal().string() : *s;
      }
    } else if (section == "log") {
      if (!v.is_table()) return Error{where(file, v, "log") + " must be a table"};
      for (auto&& [sk, sv] : *v.as_table()) {
        const std::string key(sk.str());
        if (key != "level") return Error{where(file, sv, "log." + key) + ": unknown key"};
        auto s = string(file, sv, "log.level");
        if (!s) return s.error();
        if (*s != "debug" && *s != "info" && *s != "warning" && *s != "error") {
          return Error{where(file, sv, "log.level") + " must be debug, info, warning or error"};
        }
        cfg.log_level = *s;
      }
    } else if (section == "zone") {
      const toml::array* arr = v.as_array();
      if (arr == nullptr)
        return Error{where(file, v, "zone") + " must be an array of tables ([[zone]])"};
      for (const auto& item : *arr) {
        const toml::table* t = item.as_table();
        if (t == nullptr) return Error{where(file, item, "zone") + " entries must be tables"};
        ZoneConfig z;
        for (auto&& [zk, zv] : *t) {
          const std::string key(zk.str());
          auto s = string(file, zv, "zone." + key);
          if (key != "name" && key != "file")
            return Error{where(file, zv, "zone." + key) + ": unknown key"};
          if (!s) return s.error();
          (key == "name" ? z.name : z.file) = *s;
        }
        if (z.name.empty() || z.file.empty()) {
          return Error{where(file, item, "zone") + " needs both name and file"};
        }
        std::filesystem::path p(z.file);
        if (p.is_relative()) z.file = (base / p).lexically_normal().string();
        cfg.zones.push_back(z);
      }
    } else if (section == "geoip" || section == "region" || section == "check" ||
               section == "service" || section == "lists") {
      auto r = parseSteering(file, base, section, v, cfg.steering);
      if (!r) return r.error();
    } else {
      return Error{where(file, v, section) + ": unknown section"};
    }
  }

  // Command-line flags win over the file.
  if (!cmd.listen.empty()) {
    cfg.server.listen.clear();
    for (const auto& l : cmd.listen) {
      auto la = server::parseListenAddress(l);
      if (!la) return Error{"--listen: " + la.error().message};
      cfg.server.listen.push_back(*la);
    }
    listen_set = true;
  }
  if (!listen_set) cfg.server.listen.push_back(*server::parseListenAddress("127.0.0.1:53"));
  // The same address twice would be bound twice into our own SO_REUSEPORT group, without the
  // "address in use" that any other holder gets. Port 0 means a fresh port each time.
  for (size_t i = 0; i < cfg.server.listen.size(); ++i) {
    for (size_t j = i + 1; j < cfg.server.listen.size(); ++j) {
      const auto& a = cfg.server.listen[i];
      if (a.port != 0 && a.port == cfg.server.listen[j].port &&
          a.address == cfg.server.listen[j].address)
        return Error{(cmd.listen.empty() ? std::string("server.listen") : std::string("--listen")) +
                     ": " + a.text() + " is listed twice"};
    }
  }
  if (cmd.threads >= 0) cfg.server.threads = static_cast<unsigned>(cmd.threads);
  if (cfg.server.threads == 0) cfg.server.threads = allowedCpus();
  for (const auto& z : cmd.zones) {
    const size_t eq = z.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == z.size()) {
      return Error{"--zone '" + z + "': expected name=path"};
    }
    cfg.zones.push_back(
        ZoneConfig{z.substr(0, eq), std::filesystem::absolute(z.substr(eq + 1)).string()});
  }
  for (auto& z : cfg.zones) {
    if (z.name.back() != '.') z.name += '.';
    dns::NameBuf check;
    if (!dns::fromText(z.name, check)) return Error{"zone '" + z.name + "': invalid zone name"};
    z.name = dns::toText(check.data);
    for (char& c : z.name) c = static_cast<char>(dns::asciiLower(static_cast<uint8_t>(c)));
  }
  for (size_t i = 0; i < cfg.zones.size(); ++i) {
    for (size_t j = i + 1; j < cfg.zones.size(); ++j) {
      if (cfg.zones[i].name == cfg.zones[j].name)
        return Error{"zone " + cfg.zones[i].name + " is configured twice"};
    }
  }
  return cfg;
}

std::vector<std::string> restartOnlyChanges(const Config& running, const Config& next) {
  auto listen = [](const server::ServerSettings& s) {
    std::string out = "[";
    for (const auto& l : s.listen) out += (out.size() > 1 ? ", " : "") + l.text();
    return out + "]";
  };
  auto quoted = [](const std::string& s) {
    return s.empty() ? std::string("none") : '"' + s + '"';
  };
  const server::ServerSettings &was = running.server, &now = next.server;
  // Listen addresses in order: a moved port or a reordered list is as much a change (the workers
  // bind them in order).
  const std::pair<const char*, std::pair<std::string, std::string>> keys[] = {
      {"server.listen", {listen(was), listen(now)}},
      {"server.threads", {std::to_string(was.threads), std::to_string(now.threads)}},
      {"server.tcp_idle_timeout_ms",
       {std::to_string(was.tcp_idle_timeout_ms), std::to_string(now.tcp_idle_timeout_ms)}},
      {"server.tcp_io_timeout_ms",
       {std::to_string(was.tcp_io_timeout_ms), std::to_string(now.tcp_io_timeout_ms)}},
      {"server.tcp_max_connections",
       {std::to_string(was.tcp_max_connections), std::to_string(now.tcp_max_connections)}},
      {"control.socket", {quoted(running.control_socket), quoted(next.control_socket)}},
  };
  std::vector<std::string> out;
  for (const auto& [key, values] : keys) {
    if (values.first == values.second) continue;
    out.push_back(std::string(key) + " changed from " + values.first + " to " + values.second +
                  ": applies at restart");
  }
  return out;
}

}  // namespace meridian::app
