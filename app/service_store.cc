// API-made services and their TOML store (service_store.h). Control side only.
#include "app/service_store.h"

#include <toml++/toml.h>
#include <algorithm>
#include <boost/json/array.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "api/auth.h"
#include "app/config_schema.h"
#include "zones/writer.h"

namespace meridian::app {

namespace {

namespace json = boost::json;

// What request messages are named after (validateService's origin).
constexpr const char* kRequest = "request";

const char* const kPolicyKeys[] = {
    "policy", "first_n", "when_all_down", "weighted_prefix_v4", "weighted_prefix_v6", "geo"};

// Service names compare as zone names do.
std::string canonical(const std::string& n) {
  return api::canonicalZone(n);
}

// A JSON value as a TOML node; `key` ("service.pool") names it in the error.
Result<void> insertJson(toml::table& into, const std::string& k, const json::value& v,
                        const std::string& key);

Result<void> appendJson(toml::array& into, const json::value& v, const std::string& key) {
  toml::table holder;
  if (auto r = insertJson(holder, "v", v, key); !r) return r;
  into.push_back(std::move(*holder.get("v")));
  return {};
}

Result<void> insertJson(toml::table& into, const std::string& k, const json::value& v,
                        const std::string& key) {
  switch (v.kind()) {
    case json::kind::object: {
      toml::table t;
      for (const auto& [member, value] : v.as_object()) {
        if (auto r = insertJson(t, std::string(member), value, key + "." + std::string(member)); !r)
          return r;
      }
      into.insert_or_assign(k, std::move(t));
      return {};
    }
    case json::kind::array: {
      toml::array a;
      for (const auto& item : v.as_array()) {
        if (auto r = appendJson(a, item, key); !r) return r;
      }
      into.insert_or_assign(k, std::move(a));
      return {};
    }
    case json::kind::string:
      into.insert_or_assign(k, std::string(v.as_string()));
      return {};
    case json::kind::int64:
      into.insert_or_assign(k, v.as_int64());
      return {};
    case json::kind::uint64:
      if (v.as_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Error{std::string(kRequest) + ": " + key + " is out of range"};
      into.insert_or_assign(k, static_cast<int64_t>(v.as_uint64()));
      return {};
    case json::kind::double_:
      into.insert_or_assign(k, v.as_double());
      return {};
    case json::kind::bool_:
      into.insert_or_assign(k, v.as_bool());
      return {};
    case json::kind::null:
      break;
  }
  return Error{std::string(kRequest) + ": " + key + " is null (leave the key out for its default)"};
}

json::value tomlJson(const toml::node& n) {
  if (const auto* t = n.as_table()) {
    json::object o;
    for (const auto& [k, v] : *t) o[std::string(k.str())] = tomlJson(v);
    return o;
  }
  if (const auto* a = n.as_array()) {
    json::array out;
    for (const auto& v : *a) out.push_back(tomlJson(v));
    return out;
  }
  if (const auto* s = n.as_string()) return json::value(s->get());
  if (const auto* i = n.as_integer()) return json::value(i->get());
  if (const auto* d = n.as_floating_point()) return json::value(d->get());
  if (const auto* b = n.as_boolean()) return json::value(b->get());
  return nullptr;  // dates do not occur in a [[service]] entry
}

std::string tomlText(const toml::table& t) {
  std::ostringstream out;
  out << t;
  return out.str();
}

// Checks `table` as one [[service]] entry (validateService) and makes the stored form.
// (By reference: a copy of a parsed node loses its source position, which messages name.)
Result<StoredService> stored(const toml::table& table, const std::string& origin) {
  auto cfg = validateService(table, origin);
  if (!cfg) return cfg.error();
  StoredService s;
  s.name = canonical(cfg->name);
  s.toml = tomlText(table);
  s.config = std::move(*cfg);
  return s;
}

Result<toml::table> parseEntry(const StoredService& svc) {
  try {
    return toml::parse(svc.toml);
  } catch (const toml::parse_error& e) {
    return Error{svc.name + ": the stored entry does not parse: " + std::string(e.description())};
  }
}

}  // namespace

Result<StoredService> serviceFromJson(const json::object& body, const std::string& name) {
  toml::table table;
  for (const auto& [k, v] : body) {
    if (auto r = insertJson(table, std::string(k), v, "service." + std::string(k)); !r)
      return r.error();
  }
  const std::string want = canonical(name);
  if (const toml::node* n = table.get("name"); n == nullptr) {
    table.insert("name", name);
  } else if (n->is_string() && canonical(n->as_string()->get()) != want) {
    return Error{std::string(kRequest) + ": service.name '" + n->as_string()->get() +
                 "' differs from the name in the path (" + want + ")"};
  }
  return stored(table, kRequest);
}

Result<StoredService> withPolicy(const StoredService& svc, const json::object& body) {
  auto table = parseEntry(svc);
  if (!table) return table.error();
  if (body.empty())
    return Error{std::string(kRequest) +
                 ": give at least one of policy, first_n, when_all_down, "
                 "weighted_prefix_v4, weighted_prefix_v6, geo"};
  for (const auto& [k, v] : body) {
    const std::string key(k);
    if (std::none_of(std::begin(kPolicyKeys), std::end(kPolicyKeys),
                     [&](const char* p) { return key == p; }))
      return Error{std::string(kRequest) + ": service." + key +
                   " is not a policy key (policy, first_n, when_all_down, weighted_prefix_v4, "
                   "weighted_prefix_v6, geo); PUT the whole service to change it"};
    if (auto r = insertJson(*table, key, v, "service." + key); !r) return r.error();
  }
  return stored(*table, kRequest);
}

json::object definitionJson(const StoredService& svc) {
  auto table = parseEntry(svc);
  if (!table) return {};
  return tomlJson(*table).as_object();
}

Result<std::vector<StoredService>> readServiceStore(const std::string& path) {
  std::vector<StoredService> out;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return out;
    return Error{path + ": cannot open: " + std::strerror(errno)};
  }
  toml::table root;
  try {
    root = toml::parse(in, path);
  } catch (const toml::parse_error& e) {
    return Error{path + ":" + std::to_string(e.source().begin.line) + ": " +
                 std::string(e.description())};
  }
  std::set<std::string> seen;
  for (const auto& [k, v] : root) {
    if (k.str() != "service")
      return Error{path + ":" + std::to_string(v.source().begin.line) + ": " +
                   std::string(k.str()) + ": unknown section (the store holds [[service]] only)"};
    const toml::array* entries = v.as_array();
    if (entries == nullptr || !entries->is_array_of_tables())
      return Error{path + ": service must be an array of tables ([[service]])"};
    for (const auto& entry : *entries) {
      auto s = stored(*entry.as_table(), path);
      if (!s) return s.error();
      if (!seen.insert(s->name).second)
        return Error{path + ":" + std::to_string(entry.source().begin.line) + ": service " +
                     s->name + " is stored twice"};
      out.push_back(std::move(*s));
    }
  }
  return out;
}

Result<void> writeServiceStore(const std::string& path,
                               const std::vector<StoredService>& services) {
  std::vector<const StoredService*> sorted;
  for (const auto& s : services) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](const StoredService* a, const StoredService* b) { return a->name < b->name; });
  std::string text =
      "# Services made through the management API (PUT /api/v1/services/NAME); written by\n"
      "# meridian, read at start and at every reload. Each entry is a [[service]] of the\n"
      "# configuration (docs/configuration.md).\n";
  for (const StoredService* s : sorted) {
    auto table = parseEntry(*s);
    if (!table) return table.error();
    toml::table root;
    toml::array entries;
    entries.push_back(std::move(*table));
    root.insert("service", std::move(entries));
    text.append(1, '\n').append(tomlText(root)).append(1, '\n');
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  return zones::writeFileAtomic(path, text);
}

}  // namespace meridian::app
