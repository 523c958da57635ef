#include "app/config.h"

#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <toml++/toml.h>

namespace meridian::app {
namespace {

std::string where(const std::string& file, const toml::node& n, const std::string& key) {
  const auto& src = n.source();
  std::string loc = file.empty() ? std::string("--set") : file;
  if (src.begin.line > 0 && !file.empty()) loc += ":" + std::to_string(src.begin.line);
  return loc + ": " + key;
}

// Applies "a.b.c=value" to the table: value parsed as TOML, else taken as a string.
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
  toml::table* table = &root;
  std::stringstream path(key);
  std::string part;
  std::vector<std::string> parts;
  while (std::getline(path, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    toml::node* next = table->get(parts[i]);
    if (next == nullptr) {
      table->insert(parts[i], toml::table{});
      next = table->get(parts[i]);
    }
    if (!next->is_table()) return Error{"--set " + key + ": '" + parts[i] + "' is not a table"};
    table = next->as_table();
  }
  parsed.get("v")->visit([&](auto&& n) {
    using N = std::remove_cvref_t<decltype(n)>;
    table->insert_or_assign(parts.back(), N(n));
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

const char* configKeysHelp() {
  return R"(Configuration keys (TOML; any key can be overridden with --set key=value):
  server.listen               array of "addr:port" ("[v6]:port"), default ["127.0.0.1:53"]
  server.threads              worker threads, 0 = CPUs in the affinity mask (default 0)
  server.udp_max_payload      largest UDP reply with EDNS, 512..4096 (default 1232)
  server.nsid                 RFC 5001 name server identifier (default: none)
  server.tcp_idle_timeout_ms  idle TCP connections are closed after this (default 10000)
  server.tcp_max_connections  open TCP connections across all workers (default 1000)
  control.socket              local control socket for meridianctl, relative to the config file (default: none)
  log.level                   debug, info, warning or error (default info)
  [[zone]] name, file         an authoritative zone and its RFC 1035 zone file
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
        } else if (key == "tcp_idle_timeout_ms") {
          auto t = integer<unsigned>(file, sv, full, 100, 3600000);
          if (!t) return t.error();
          cfg.server.tcp_idle_timeout_ms = *t;
        } else if (key == "tcp_max_connections") {
          auto t = integer<unsigned>(file, sv, full, 1, 1000000);
          if (!t) return t.error();
          cfg.server.tcp_max_connections = *t;
        } else {
          return Error{where(file, sv, full) + ": unknown key"};
        }
      }
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
      if (arr == nullptr) return Error{where(file, v, "zone") + " must be an array of tables ([[zone]])"};
      for (const auto& item : *arr) {
        const toml::table* t = item.as_table();
        if (t == nullptr) return Error{where(file, item, "zone") + " entries must be tables"};
        ZoneConfig z;
        for (auto&& [zk, zv] : *t) {
          const std::string key(zk.str());
          auto s = string(file, zv, "zone." + key);
          if (key != "name" && key != "file") return Error{where(file, zv, "zone." + key) + ": unknown key"};
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
  if (cmd.threads >= 0) cfg.server.threads = static_cast<unsigned>(cmd.threads);
  if (cfg.server.threads == 0) cfg.server.threads = allowedCpus();
  for (const auto& z : cmd.zones) {
    const size_t eq = z.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == z.size()) {
      return Error{"--zone '" + z + "': expected name=path"};
    }
    cfg.zones.push_back(ZoneConfig{z.substr(0, eq), std::filesystem::absolute(z.substr(eq + 1)).string()});
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
      if (cfg.zones[i].name == cfg.zones[j].name) return Error{"zone " + cfg.zones[i].name + " is configured twice"};
    }
  }
  return cfg;
}

}  // namespace meridian::app
