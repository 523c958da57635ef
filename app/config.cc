#include "app/config.h"

#include <sched.h>
#include <syslog.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <filesystem>
#include <fstream>

#include "app/config_schema.h"
#include "core/log.h"

namespace meridian::app {
namespace {

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
  std::string path;   // what has been walked, for messages
  std::string plain;  // the same without the [NAME] selectors: the schema's path
  for (size_t i = 0; i + 1 < parts->size(); ++i) {
    const KeyPart& part = (*parts)[i];
    path += (path.empty() ? "" : ".") + part.key;
    plain += (plain.empty() ? "" : ".") + part.key;
    toml::node* next = table->get(part.key);
    if (next != nullptr && next->is_array_of_tables()) {
      if (!part.has_select) {
        return Error{"--set " + key + ": [[" + path + "]] is an array of tables; name the entry, " +
                     "e.g. --set '" + part.key + "[NAME]." + (*parts)[i + 1].key +
                     "=...' (NAME is " + "its name, or its region for a pool)"};
      }
      // The entry's naming key, from the schema ("name"; "region" for a pool). An array the
      // schema does not know is an unknown section anyway: "name" finds the entry, the reader
      // reports it.
      std::string id = entryIdKey(plain);
      if (id.empty()) id = "name";
      toml::table* found = nullptr;
      std::string names;
      for (auto& item : *next->as_array()) {
        toml::table* t = item.as_table();
        const auto v = t->get(id) ? t->get(id)->value<std::string>() : std::nullopt;
        if (!v) continue;
        names += (names.empty() ? "" : ", ") + *v;
        if (sameName(*v, part.select) && found == nullptr) found = t;
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

void applyLogging(const CommandLine& cmd, const Config& config) {
  const std::string& level = cmd.log_level.empty() ? config.log_level : cmd.log_level;
  if (level == "debug") log::setLevel(log::Level::kDebug);
  if (level == "info") log::setLevel(log::Level::kInfo);
  if (level == "warning") log::setLevel(log::Level::kWarning);
  if (level == "error") log::setLevel(log::Level::kError);
  const log::Target target = config.log_target == "syslog"   ? log::Target::kSyslog
                             : config.log_target == "stderr" ? log::Target::kStderr
                                                             : log::Target::kAuto;
  const log::Format format = config.log_format == "json" ? log::Format::kJson : log::Format::kText;
  log::configure(target, format, log::facilityCode(config.log_facility).value_or(LOG_DAEMON));
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
  if (auto r = readConfigTree(root, file, base, cfg, listen_set); !r) return r.error();

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
  const auto was = restartOnlyValues(running), now = restartOnlyValues(next);
  std::vector<std::string> out;
  for (size_t i = 0; i < was.size(); ++i) {
    if (was[i].second == now[i].second) continue;
    out.push_back(was[i].first + " changed from " + was[i].second + " to " + now[i].second +
                  ": applies at restart");
  }
  return out;
}

}  // namespace meridian::app
