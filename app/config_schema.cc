// The key table (config_schema.h) and the readers that walk a TOML tree against it. To add a key:
// one Field in the array of its section; the parser, --help, docs/configuration.md (regenerate it
// with `meridian config-reference`) and, for a Reload::kRestart key (give it `show`), the
// reload report follow.
#include "app/config_schema.h"

#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

#include "core/log.h"
#include "dns/name.h"
#include "georoute/compile.h"
#include "server/server.h"

namespace meridian::app {

// The steering structs are georoute's (georoute/steering_config.h), filled here from TOML.
using georoute::CheckConfig;
using georoute::EndpointConfig;
using georoute::GeoMapConfig;
using georoute::NamedListConfig;
using georoute::parseCidr;
using georoute::PoolConfig;
using georoute::ServiceConfig;
using georoute::SteeringConfig;

namespace {

using R = Result<void>;

// Where messages point: the file (nodes parsed from it carry their line) or, for a node that
// --set (or an API request) put in the tree, `fallback`.
struct Ctx {
  std::string file;
  std::filesystem::path base;
  std::string fallback = "--set";
};

std::string where(const Ctx& ctx, const toml::node& n, const std::string& key) {
  const auto& src = n.source();
  // A node parsed from the file carries its path; one that --set put there does not, and naming
  // the file for it would send the operator to a line that holds something else.
  const bool from_file = !ctx.file.empty() && src.path != nullptr;
  std::string loc = from_file ? ctx.file : ctx.fallback;
  // append() rather than ":" + std::to_string(...): GCC 12 at -O3 misreports that form as an
  // overlapping memcpy (-Wrestrict false positive).
  if (src.begin.line > 0 && from_file) loc.append(":").append(std::to_string(src.begin.line));
  return loc + ": " + key;
}

std::string resolve(const Ctx& ctx, const std::string& path) {
  std::filesystem::path p(path);
  return p.is_relative() ? (ctx.base / p).lexically_normal().string() : path;
}

Result<int64_t> integer(const Ctx& ctx, const toml::node& n, const std::string& key, int64_t lo,
                        int64_t hi) {
  const auto v = n.value<int64_t>();
  if (!v || *v < lo || *v > hi) {
    return Error{where(ctx, n, key) + " must be an integer from " + std::to_string(lo) + " to " +
                 std::to_string(hi)};
  }
  return *v;
}

Result<std::vector<std::string>> stringList(const Ctx& ctx, const toml::node& n,
                                            const std::string& key) {
  std::vector<std::string> out;
  const toml::array* arr = n.as_array();
  if (arr == nullptr) return Error{where(ctx, n, key) + " must be an array of strings"};
  for (const auto& item : *arr) {
    auto v = item.value<std::string>();
    if (!v) return Error{where(ctx, item, key) + " must be an array of strings"};
    out.push_back(*v);
  }
  return out;
}

// How a key's value is checked before it is stored; the error messages are the kind's.
enum class Kind {
  kBool,     // true or false (strictly: toml++ would read 1 as true)
  kInt,      // integer lo..hi
  kNumber,   // number, lo..hi when lo < hi
  kString,   // string
  kEnum,     // one of `choices` ("a|b|c")
  kStrings,  // array of strings
  kCustom,   // the store reads the node itself
};

struct Value {
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  std::vector<std::string> list;
};

// One key being read: its node, its path as written ("service.pool.endpoints.weight",
// "lists.europe-first"), its last part, and its value checked by the kind.
struct Read {
  const Ctx& ctx;
  const toml::node& node;
  const std::string& key;
  const std::string& name;
  Value v;
  [[nodiscard]] std::string at() const { return where(ctx, node, key); }
  [[nodiscard]] Error fail(const std::string& what) const { return Error{at() + what}; }
};

// A key: its documentation and how it is read into a T (the Config, a section's struct, or the
// entry of an array of tables).
template <typename T>
struct Field {
  const char* path;  // "lists.NAME": any key of that table
  Kind kind;
  const char* def;  // the default as shown to users
  Reload reload;
  const char* doc;
  R (*store)(const Read&, T&);
  int64_t lo = 0, hi = 0;         // kInt; kNumber when lo < hi
  const char* choices = nullptr;  // kEnum
  const char* type = nullptr;     // the documented type, when the kind does not say it all
  std::string (*show)(const T&) = nullptr;  // Reload::kRestart: the value read, to compare
};

// The class and type of a data member pointer.
template <typename>
struct MemberOf;
template <typename C, typename M>
struct MemberOf<M C::*> {
  using Class = C;
  using Type = M;
};

// A store that puts the checked value in the member P (a string, boolean, number, list or integer).
template <auto P>
R member(const Read& r, typename MemberOf<decltype(P)>::Class& t) {
  using M = typename MemberOf<decltype(P)>::Type;
  if constexpr (std::is_same_v<M, std::string>) {
    t.*P = r.v.s;
  } else if constexpr (std::is_same_v<M, bool>) {
    t.*P = r.v.b;
  } else if constexpr (std::is_same_v<M, double>) {
    t.*P = r.v.d;
  } else if constexpr (std::is_same_v<M, std::vector<std::string>>) {
    t.*P = r.v.list;
  } else {
    t.*P = static_cast<M>(r.v.i);
  }
  return {};
}

// "a|b|c" -> "a, b or c".
std::string choiceText(std::string_view choices) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t bar = choices.find('|', start);
    parts.push_back(choices.substr(start, bar - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? " or " : ", ";
    out += parts[i];
  }
  return out;
}

bool isChoice(std::string_view choices, std::string_view s) {
  for (size_t start = 0;;) {
    const size_t bar = choices.find('|', start);
    if (choices.substr(start, bar - start) == s) return true;
    if (bar == std::string_view::npos) return false;
    start = bar + 1;
  }
}

template <typename T>
std::string typeText(const Field<T>& f) {
  if (f.type != nullptr) return f.type;
  switch (f.kind) {
    case Kind::kBool:
      return "boolean";
    case Kind::kInt:
      return "integer " + std::to_string(f.lo) + ".." + std::to_string(f.hi);
    case Kind::kNumber:
      return f.lo < f.hi ? "number " + std::to_string(f.lo) + ".." + std::to_string(f.hi)
                         : std::string("number");
    case Kind::kString:
      return "string";
    case Kind::kEnum:
      return choiceText(f.choices);
    case Kind::kStrings:
      return "array of strings";
    case Kind::kCustom:
      break;
  }
  return "see below";
}

template <typename T>
R checkValue(const Field<T>& f, Read& r) {
  const toml::node& n = r.node;
  switch (f.kind) {
    case Kind::kBool:
      if (!n.is_boolean()) return r.fail(" must be true or false");
      r.v.b = n.as_boolean()->get();
      return {};
    case Kind::kInt: {
      auto x = integer(r.ctx, n, r.key, f.lo, f.hi);
      if (!x) return x.error();
      r.v.i = *x;
      return {};
    }
    case Kind::kNumber: {
      const auto d = n.value<double>();
      const bool ranged = f.lo < f.hi;
      // Written so that nan is out of every range.
      if (!d || (ranged && !(*d >= static_cast<double>(f.lo) && *d <= static_cast<double>(f.hi)))) {
        return r.fail(ranged ? " must be a number from " + std::to_string(f.lo) + " to " +
                                   std::to_string(f.hi)
                             : std::string(" must be a number"));
      }
      r.v.d = *d;
      return {};
    }
    case Kind::kString:
    case Kind::kEnum: {
      const auto s = n.value<std::string>();
      if (!s) return r.fail(" must be a string");
      if (f.kind == Kind::kEnum && !isChoice(f.choices, *s))
        return r.fail(" must be " + choiceText(f.choices));
      r.v.s = *s;
      return {};
    }
    case Kind::kStrings: {
      auto l = stringList(r.ctx, n, r.key);
      if (!l) return l.error();
      r.v.list = std::move(*l);
      return {};
    }
    case Kind::kCustom:
      return {};
  }
  return {};
}

template <typename T>
const Field<T>* findField(std::span<const Field<T>> fields, const std::string& key) {
  for (const Field<T>& f : fields) {
    const std::string_view p = f.path;
    if (p == key) return &f;
    if (p.ends_with(".NAME") && key.size() > p.size() - 4 &&
        std::string_view(key).starts_with(p.substr(0, p.size() - 4)))
      return &f;
  }
  return nullptr;
}

// The last parts of the fields' paths: "default, continent, country".
template <typename T>
std::string fieldNames(std::span<const Field<T>> fields) {
  std::string out;
  for (const Field<T>& f : fields) {
    const std::string_view p = f.path;
    out += (out.empty() ? "" : ", ") + std::string(p.substr(p.rfind('.') + 1));
  }
  return out;
}

// Reads every key of `t` (the table at `prefix`) by its field; a key without one is unknown
// (`list_known`: the message lists the known keys).
template <typename T>
R readTable(const Ctx& ctx, const toml::table& t, const std::string& prefix,
            std::span<const Field<T>> fields, T& out, bool list_known = false) {
  for (auto&& [k, n] : t) {
    const std::string name(k.str());
    const std::string key = prefix + "." + name;
    const Field<T>* f = findField(fields, key);
    if (f == nullptr) {
      return Error{where(ctx, n, key) + ": unknown key" +
                   (list_known ? " (" + fieldNames(fields) + ")" : std::string())};
    }
    Read r{ctx, n, key, name, {}};
    if (auto c = checkValue(*f, r); !c) return c.error();
    if (auto s = f->store(r, out); !s) return s.error();
  }
  return {};
}

// An array of tables ([[name]]): each entry read into a fresh Entry, then `finish(table, at,
// entry)` checks it as a whole and keeps it; `at` is "file:line: name" of the entry.
template <typename Entry, typename Finish>
R readEntries(const Ctx& ctx, const toml::node& v, const std::string& name,
              std::span<const Field<Entry>> fields, Finish&& finish) {
  const toml::array* arr = v.as_array();
  bool tables = arr != nullptr;
  for (size_t i = 0; tables && i < arr->size(); ++i) tables = (*arr)[i].is_table();
  if (!tables) return Error{where(ctx, v, name) + " must be an array of tables ([[" + name + "]])"};
  for (const auto& item : *arr) {
    Entry e;
    if (auto r = readTable(ctx, *item.as_table(), name, fields, e); !r) return r.error();
    if (auto r = finish(*item.as_table(), where(ctx, item, name), e); !r) return r.error();
  }
  return {};
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

R checkCidrs(const Read& r) {
  for (const auto& c : r.v.list) {
    if (auto e = parseCidr(c); !e) return r.fail(": " + e.error().message);
  }
  return {};
}

std::string quoted(const std::string& s) {
  return s.empty() ? std::string("none") : '"' + s + '"';
}

// ---- [server], [control], [log] ----------------------------------------------------------------

// Read value of a restart-only unsigned ServerSettings member.
template <unsigned server::ServerSettings::*M>
std::string showServer(const Config& c) {
  return std::to_string(c.server.*M);
}

const Field<Config> kServerFields[] = {
    {.path = "server.listen",
     .kind = Kind::kCustom,
     .def = "[\"127.0.0.1:53\"]",
     .reload = Reload::kRestart,
     .doc = "addresses to serve on, UDP and TCP: \"addr:port\" or \"[v6]:port\"; the port is "
            "required, 0 = any free port (--listen replaces the list)",
     .store = [](const Read& r, Config& c) -> R {
       const toml::array* arr = r.node.as_array();
       std::vector<std::string> items;
       if (arr != nullptr) {
         for (const auto& item : *arr) {
           const auto s = item.value<std::string>();
           if (!s) return Error{where(r.ctx, item, r.key) + " must be a string"};
           items.push_back(*s);
         }
       } else if (const auto s = r.node.value<std::string>()) {
         items.push_back(*s);
       } else {
         return r.fail(" must be an array of addresses");
       }
       for (const auto& item : items) {
         auto la = server::parseListenAddress(item);
         if (!la) return r.fail(": " + la.error().message);
         c.server.listen.push_back(*la);
       }
       return {};
     },
     .type = "array of \"addr:port\"",
     .show =
         [](const Config& c) {
           // In order: a moved port or a reordered list is as much a change (the workers bind
           // them in order).
           std::string out = "[";
           for (const auto& l : c.server.listen) out += (out.size() > 1 ? ", " : "") + l.text();
           return out + "]";
         }},
    {.path = "server.threads",
     .kind = Kind::kInt,
     .def = "0",
     .reload = Reload::kRestart,
     .doc = "worker threads; 0 = the CPUs in the process's affinity mask (--threads wins)",
     .store = [](const Read& r, Config& c) -> R {
       c.server.threads = static_cast<unsigned>(r.v.i);
       return {};
     },
     .lo = 0,
     .hi = 1024,
     .show = showServer<&server::ServerSettings::threads>},
    {.path = "server.udp_max_payload",
     .kind = Kind::kInt,
     .def = "1232",
     .reload = Reload::kLive,
     .doc = "largest UDP reply to a query with EDNS (RFC 6891), in octets",
     .store = [](const Read& r, Config& c) -> R {
       c.protocol.max_udp_payload = static_cast<uint16_t>(r.v.i);
       return {};
     },
     .lo = 512,
     .hi = 4096},
    {.path = "server.nsid",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "RFC 5001 name server identifier sent to clients that ask, up to 128 octets",
     .store = [](const Read& r, Config& c) -> R {
       if (r.v.s.size() > 128) return r.fail(" is longer than 128 octets");
       c.protocol.nsid = r.v.s;
       return {};
     }},
    {.path = "server.cookie_secret",
     .kind = Kind::kString,
     .def = "random per process",
     .reload = Reload::kLive,
     .doc =
         "RFC 9018 server cookie secret, 32 hex digits (128 bits); share it across an anycast set",
     .store = [](const Read& r, Config& c) -> R {
       auto hex = [](char ch) -> int {
         if (ch >= '0' && ch <= '9') return ch - '0';
         if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
         if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
         return -1;
       };
       const std::string& s = r.v.s;
       bool ok = s.size() == 32;
       for (size_t i = 0; ok && i < 16; ++i) {
         const int hi = hex(s[2 * i]), lo = hex(s[2 * i + 1]);
         ok = hi >= 0 && lo >= 0;
         if (ok) c.protocol.cookie_secret[i] = static_cast<uint8_t>(hi * 16 + lo);
       }
       if (!ok) return r.fail(" must be 32 hexadecimal digits (128 bits)");
       c.cookie_secret_set = true;
       return {};
     },
     .type = "string of 32 hex digits"},
    {.path = "server.require_cookie",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kLive,
     .doc = "a UDP query with a client cookie but no valid server cookie gets BADCOOKIE and a "
            "fresh cookie instead of the answer",
     .store = [](const Read& r, Config& c) -> R {
       c.protocol.require_cookie = r.v.b;
       return {};
     }},
    {.path = "server.tcp_idle_timeout_ms",
     .kind = Kind::kInt,
     .def = "10000",
     .reload = Reload::kRestart,
     .doc = "an idle TCP connection is closed after this many milliseconds",
     .store = [](const Read& r, Config& c) -> R {
       c.server.tcp_idle_timeout_ms = static_cast<unsigned>(r.v.i);
       return {};
     },
     .lo = 100,
     .hi = 3600000,
     .show = showServer<&server::ServerSettings::tcp_idle_timeout_ms>},
    {.path = "server.tcp_io_timeout_ms",
     .kind = Kind::kInt,
     .def = "5000",
     .reload = Reload::kRestart,
     .doc = "a TCP message must arrive, and a reply be taken by the client, within this many "
            "milliseconds, else the connection is reset; 0 = never",
     .store = [](const Read& r, Config& c) -> R {
       c.server.tcp_io_timeout_ms = static_cast<unsigned>(r.v.i);
       return {};
     },
     .lo = 0,
     .hi = 3600000,
     .show = showServer<&server::ServerSettings::tcp_io_timeout_ms>},
    {.path = "server.tcp_max_connections",
     .kind = Kind::kInt,
     .def = "0",
     .reload = Reload::kRestart,
     .doc = "open TCP connections across all workers; at the limit the oldest idle one is closed "
            "for a new one; 0 = half the open-file limit",
     .store = [](const Read& r, Config& c) -> R {
       c.server.tcp_max_connections = static_cast<unsigned>(r.v.i);
       return {};
     },
     .lo = 0,
     .hi = 1000000,
     .show = showServer<&server::ServerSettings::tcp_max_connections>},
    {.path = "server.user",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "started as root, the server binds its sockets, then becomes this user (its "
            "supplementary groups too) with no capabilities left, and gives it control.state_dir; "
            "an unknown user, or a server not started as root nor as this user, stops start-up. "
            "Under systemd the unit's User= does this instead",
     .store = member<&Config::run_user>,
     .type = "user name",
     .show = [](const Config& c) { return quoted(c.run_user); }},
    {.path = "server.group",
     .kind = Kind::kString,
     .def = "the user's primary group",
     .reload = Reload::kRestart,
     .doc = "the group taken with server.user (ignored without it); an unknown group stops "
            "start-up",
     .store = member<&Config::run_group>,
     .type = "group name",
     .show = [](const Config& c) { return quoted(c.run_group); }},
};

const Field<Config> kControlFields[] = {
    {.path = "control.socket",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "local control socket for meridianctl, relative to the configuration file",
     .store = [](const Read& r, Config& c) -> R {
       c.control_socket = resolve(r.ctx, r.v.s);
       return {};
     },
     .type = "path",
     .show = [](const Config& c) { return quoted(c.control_socket); }},
    {.path = "control.state_dir",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "directory of the editing state, relative to the configuration file: the zones' "
            "journals (STATE/journal/ZONE.journal) and the audit log (STATE/audit.log); empty: "
            "each journal beside its zone file (FILE.journal) and no audit log",
     .store = [](const Read& r, Config& c) -> R {
       c.state_dir = r.v.s.empty() ? std::string() : resolve(r.ctx, r.v.s);
       return {};
     },
     .type = "path",
     .show = [](const Config& c) { return quoted(c.state_dir); }},
};

const Field<Config> kLogFields[] = {
    {.path = "log.level",
     .kind = Kind::kEnum,
     .def = "info",
     .reload = Reload::kLive,
     .doc = "the least severe messages logged (--log-level wins, also on reload)",
     .store = member<&Config::log_level>,
     .choices = "debug|info|warning|error"},
    {.path = "log.target",
     .kind = Kind::kEnum,
     .def = "auto",
     .reload = Reload::kLive,
     .doc = "where log lines go: stderr (with a timestamp), syslog (syslog(3), ident meridian, "
            "with the PID and log.facility), or auto: stderr, and when stderr is the systemd "
            "journal (JOURNAL_STREAM) each line starts with its syslog priority (<3> error .. <7> "
            "debug) instead of a timestamp, so journald records the level",
     .store = member<&Config::log_target>,
     .choices = "auto|stderr|syslog"},
    {.path = "log.format",
     .kind = Kind::kEnum,
     .def = "text",
     .reload = Reload::kLive,
     .doc = "text lines, or json: one object per line, {\"ts\": RFC 3339 UTC with milliseconds, "
            "\"level\", \"msg\"}",
     .store = member<&Config::log_format>,
     .choices = "text|json"},
    {.path = "log.facility",
     .kind = Kind::kEnum,
     .def = "daemon",
     .reload = Reload::kLive,
     .doc = "the syslog facility of log.target = \"syslog\"",
     .store = member<&Config::log_facility>,
     .choices = log::facilityChoices()},
};

// ---- [api], [[api.key]] (api/; docs/api.md) ----------------------------------------------------

// Read value of a restart-only api::Limits member.
template <auto M>
std::string showLimit(const Config& c) {
  return std::to_string(c.api.http.limits.*M);
}

template <auto M>
R storeLimit(const Read& r, Config& c) {
  using V = std::remove_reference_t<decltype(c.api.http.limits.*M)>;
  c.api.http.limits.*M = static_cast<V>(r.v.i);
  return {};
}

// A TLS file, relative to the configuration file.
template <std::string api::HttpSettings::*M>
R storeTlsFile(const Read& r, Config& c) {
  c.api.http.*M = resolve(r.ctx, r.v.s);
  return {};
}

template <std::string api::HttpSettings::*M>
std::string showTlsFile(const Config& c) {
  return quoted(c.api.http.*M);
}

const Field<api::KeyConfig> kApiKeyFields[] = {
    {.path = "api.key.name",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the key's name (logs, audit, 403 messages); unique",
     .store = member<&api::KeyConfig::name>},
    {.path = "api.key.hash",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the stored form of the secret clients send as X-API-Key, as `meridian api hash-key` "
            "prints it (sha256$SALT$DIGEST); the secret itself is never configured",
     .store = member<&api::KeyConfig::hash>},
    {.path = "api.key.scope",
     .kind = Kind::kEnum,
     .def = "read-only",
     .reload = Reload::kLive,
     .doc = "read-only: GET requests only; read-write: every request",
     .store = [](const Read& r, api::KeyConfig& k) -> R {
       k.scope = api::parseScope(r.v.s).value();
       return {};
     },
     .choices = "read-only|read-write"},
    {.path = "api.key.zones",
     .kind = Kind::kStrings,
     .def = "[] (every zone)",
     .reload = Reload::kLive,
     .doc = "the zones the key may touch (a request for another zone is 403)",
     .store = member<&api::KeyConfig::zones>},
};

const Field<Config> kApiFields[] = {
    {.path = "api.listen",
     .kind = Kind::kStrings,
     .def = "[\"127.0.0.1:8053\"]",
     .reload = Reload::kRestart,
     .doc = "addresses of the HTTP API: \"addr:port\" or \"[v6]:port\" (0 = any free port)",
     .store = [](const Read& r, Config& c) -> R {
       c.api.http.listen.clear();
       for (const auto& item : r.v.list) {
         auto la = server::parseListenAddress(item);
         if (!la) return r.fail(": " + la.error().message);
         c.api.http.listen.push_back(*la);
       }
       return {};
     },
     .type = "array of addresses",
     .show =
         [](const Config& c) {
           std::string out = "[";
           for (const auto& la : c.api.http.listen) out += (out.size() > 1 ? ", " : "") + la.text();
           return out + "]";
         }},
    {.path = "api.tls_certificate",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "PEM certificate chain: with tls_key, the API speaks HTTPS only",
     .store = storeTlsFile<&api::HttpSettings::tls_certificate>,
     .type = "path",
     .show = showTlsFile<&api::HttpSettings::tls_certificate>},
    {.path = "api.tls_key",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "the certificate's PEM private key",
     .store = storeTlsFile<&api::HttpSettings::tls_key>,
     .type = "path",
     .show = showTlsFile<&api::HttpSettings::tls_key>},
    {.path = "api.header_limit_bytes",
     .kind = Kind::kInt,
     .def = "16384",
     .reload = Reload::kRestart,
     .doc = "request line and headers larger than this: 431",
     .store = storeLimit<&api::Limits::header_bytes>,
     .lo = 1024,
     .hi = 1 << 20,
     .show = showLimit<&api::Limits::header_bytes>},
    {.path = "api.body_limit_bytes",
     .kind = Kind::kInt,
     .def = "8388608",
     .reload = Reload::kRestart,
     .doc = "a request body larger than this: 413",
     .store = storeLimit<&api::Limits::body_bytes>,
     .lo = 1024,
     .hi = 1 << 30,
     .show = showLimit<&api::Limits::body_bytes>},
    {.path = "api.read_timeout_ms",
     .kind = Kind::kInt,
     .def = "10000",
     .reload = Reload::kRestart,
     .doc = "a request (a new connection's first one from the accept) must arrive whole within "
            "this, or the connection is closed",
     .store = storeLimit<&api::Limits::read_timeout_ms>,
     .lo = 1,
     .hi = 3600000,
     .show = showLimit<&api::Limits::read_timeout_ms>},
    {.path = "api.idle_timeout_ms",
     .kind = Kind::kInt,
     .def = "60000",
     .reload = Reload::kRestart,
     .doc = "a kept-alive connection silent this long is closed",
     .store = storeLimit<&api::Limits::idle_timeout_ms>,
     .lo = 1,
     .hi = 3600000,
     .show = showLimit<&api::Limits::idle_timeout_ms>},
    {.path = "api.write_timeout_ms",
     .kind = Kind::kInt,
     .def = "10000",
     .reload = Reload::kRestart,
     .doc = "an answer (or stream data) the client does not read within this closes the "
            "connection",
     .store = storeLimit<&api::Limits::write_timeout_ms>,
     .lo = 1,
     .hi = 3600000,
     .show = showLimit<&api::Limits::write_timeout_ms>},
    {.path = "api.max_connections",
     .kind = Kind::kInt,
     .def = "64",
     .reload = Reload::kRestart,
     .doc = "open connections (event streams included); past it a new one gets 503 and is closed",
     .store = storeLimit<&api::Limits::max_connections>,
     .lo = 1,
     .hi = 65535,
     .show = showLimit<&api::Limits::max_connections>},
    {.path = "api.stream_buffer_bytes",
     .kind = Kind::kInt,
     .def = "1048576",
     .reload = Reload::kRestart,
     .doc = "an event-stream client this far behind is dropped",
     .store = storeLimit<&api::Limits::stream_buffer_bytes>,
     .lo = 4096,
     .hi = 1 << 30,
     .show = showLimit<&api::Limits::stream_buffer_bytes>},
    {.path = "api.stream_keepalive_ms",
     .kind = Kind::kInt,
     .def = "15000",
     .reload = Reload::kRestart,
     .doc = "an idle event stream gets a comment line this often",
     .store = storeLimit<&api::Limits::stream_keepalive_ms>,
     .lo = 100,
     .hi = 3600000,
     .show = showLimit<&api::Limits::stream_keepalive_ms>},
    {.path = "api.events",
     .kind = Kind::kInt,
     .def = "1024",
     .reload = Reload::kRestart,
     .doc = "events kept for clients resuming with Last-Event-ID",
     .store = [](const Read& r, Config& c) -> R {
       c.api.events = static_cast<size_t>(r.v.i);
       return {};
     },
     .lo = 1,
     .hi = 1000000,
     .show = [](const Config& c) { return std::to_string(c.api.events); }},
    {.path = "api.metrics_without_key",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kRestart,
     .doc = "GET /metrics answers without an X-API-Key (for Prometheus scrapers that send none); "
            "the API itself still starts only with a key",
     .store = [](const Read& r, Config& c) -> R {
       c.api.metrics_without_key = r.v.b;
       return {};
     },
     .show = [](const Config& c) -> std::string {
       return c.api.metrics_without_key ? "true" : "false";
     }},
    {.path = "api.key",
     .kind = Kind::kCustom,
     .def = "none (the API is off)",
     .reload = Reload::kPartly,
     .doc = "the API keys ([[api.key]] below); a reload applies a changed set, but turning the "
            "API on or off takes a restart",
     .store = [](const Read& r, Config& c) -> R {
       c.api.keys.clear();
       return readEntries(r.ctx, r.node, r.key,
                          std::span<const Field<api::KeyConfig>>(kApiKeyFields),
                          [&](const toml::table&, const std::string& at, api::KeyConfig& k) -> R {
                            if (k.name.empty() || k.hash.empty())
                              return Error{at + " needs both name and hash"};
                            for (const auto& other : c.api.keys) {
                              if (other.name == k.name)
                                return Error{at + ": key '" + k.name + "' configured twice"};
                            }
                            if (auto made = api::ApiKey::make(k); !made)
                              return Error{at + ": " + made.error().message};
                            c.api.keys.push_back(std::move(k));
                            return {};
                          });
     },
     .type = "array of tables"},
};

// ---- [dnstap] (dnstap/README.md; docs/dnstap.md) ---------------------------------------------
// The output and its I/O thread are set up once, with the workers: every key applies at restart.

// The checked value into a dnstap::Settings member (a string, boolean or unsigned), and back.
template <auto M>
R storeDnstap(const Read& r, Config& c) {
  auto& m = c.server.dnstap.*M;
  using V = std::remove_reference_t<decltype(m)>;
  if constexpr (std::is_same_v<V, std::string>) {
    m = r.v.s;
  } else if constexpr (std::is_same_v<V, bool>) {
    m = r.v.b;
  } else {
    m = static_cast<V>(r.v.i);
  }
  return {};
}

template <auto M>
std::string showDnstap(const Config& c) {
  const auto& m = c.server.dnstap.*M;
  using V = std::remove_cvref_t<decltype(m)>;
  if constexpr (std::is_same_v<V, std::string>) {
    return quoted(m);
  } else if constexpr (std::is_same_v<V, bool>) {
    return m ? "true" : "false";
  } else {
    return std::to_string(m);
  }
}

// dnstap.socket and dnstap.file: a path relative to the configuration file; one of the two.
template <std::string dnstap::Settings::*M, std::string dnstap::Settings::*Other>
R storeDnstapPath(const Read& r, Config& c) {
  c.server.dnstap.*M = r.v.s.empty() ? std::string() : resolve(r.ctx, r.v.s);
  if (!(c.server.dnstap.*Other).empty())
    return r.fail(": set dnstap.socket or dnstap.file, not both");
  return {};
}

using dnstap::Settings;

const Field<Config> kDnstapFields[] = {
    {.path = "dnstap.socket",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "unix socket of a dnstap collector (fstrm_capture -u, dnstap-collector), relative to "
            "the configuration file; reconnected every 2 s while the collector is away",
     .store = storeDnstapPath<&Settings::socket_path, &Settings::file_path>,
     .type = "path",
     .show = showDnstap<&Settings::socket_path>},
    {.path = "dnstap.file",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kRestart,
     .doc = "or a Frame Streams file (read it with dnstap-read), relative to the configuration "
            "file; truncated at start-up",
     .store = storeDnstapPath<&Settings::file_path, &Settings::socket_path>,
     .type = "path",
     .show = showDnstap<&Settings::file_path>},
    {.path = "dnstap.identity",
     .kind = Kind::kString,
     .def = "the host name",
     .reload = Reload::kRestart,
     .doc = "the identity field of every message",
     .store = storeDnstap<&Settings::identity>,
     .show = showDnstap<&Settings::identity>},
    {.path = "dnstap.version",
     .kind = Kind::kString,
     .def = "meridian VERSION",
     .reload = Reload::kRestart,
     .doc = "the version field of every message",
     .store = storeDnstap<&Settings::version>,
     .show = showDnstap<&Settings::version>},
    {.path = "dnstap.log_queries",
     .kind = Kind::kBool,
     .def = "true",
     .reload = Reload::kRestart,
     .doc = "log each query as it arrived (AUTH_QUERY)",
     .store = storeDnstap<&Settings::log_queries>,
     .show = showDnstap<&Settings::log_queries>},
    {.path = "dnstap.log_responses",
     .kind = Kind::kBool,
     .def = "true",
     .reload = Reload::kRestart,
     .doc = "log each response sent (AUTH_RESPONSE)",
     .store = storeDnstap<&Settings::log_responses>,
     .show = showDnstap<&Settings::log_responses>},
    {.path = "dnstap.sample_rate",
     .kind = Kind::kInt,
     .def = "1",
     .reload = Reload::kRestart,
     .doc = "log one query (and its response) in this many, counted per worker thread",
     .store = storeDnstap<&Settings::sample_rate>,
     .lo = 1,
     .hi = 1000000,
     .show = showDnstap<&Settings::sample_rate>},
    {.path = "dnstap.queue_size",
     .kind = Kind::kInt,
     .def = "512",
     .reload = Reload::kRestart,
     .doc = "messages each worker thread may have waiting for the writer, a power of two; more "
            "are dropped and counted (meridian_dnstap_dropped_total), never waited for",
     .store = [](const Read& r, Config& c) -> R {
       const auto n = static_cast<unsigned>(r.v.i);
       if ((n & (n - 1)) != 0) return r.fail(" must be a power of two");
       c.server.dnstap.queue_size = n;
       return {};
     },
     .lo = 2,
     .hi = 16384,
     .show = showDnstap<&Settings::queue_size>},
};

// ---- [rrl] (server/rrl.h; docs/operations.md) ------------------------------------------------
// Upper bounds keep responses_per_second x window x 1000 within 32 bits (server/rrl.cc).

const Field<server::RrlSettings> kRrlFields[] = {
    {.path = "rrl.enabled",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kPartly,
     .doc = "response rate limiting of UDP answers; turning it on by a reload takes a restart when "
            "it was off at start-up",
     .store = member<&server::RrlSettings::enabled>},
    {.path = "rrl.responses_per_second",
     .kind = Kind::kInt,
     .def = "20",
     .reload = Reload::kLive,
     .doc = "answers per second to one client network for one name and type before limiting",
     .store = member<&server::RrlSettings::responses_per_second>,
     .lo = 1,
     .hi = 10000},
    {.path = "rrl.slip",
     .kind = Kind::kInt,
     .def = "2",
     .reload = Reload::kLive,
     .doc = "every slip-th limited answer is sent truncated (TC=1) instead of dropped; 0 = drop "
            "all (BIND's range)",
     .store = member<&server::RrlSettings::slip>,
     .lo = 0,
     .hi = 10},
    {.path = "rrl.window",
     .kind = Kind::kInt,
     .def = "4",
     .reload = Reload::kLive,
     .doc = "seconds of credit a client network can build up or owe",
     .store = member<&server::RrlSettings::window>,
     .lo = 1,
     .hi = 60},
    {.path = "rrl.ipv4_prefix_length",
     .kind = Kind::kInt,
     .def = "24",
     .reload = Reload::kLive,
     .doc = "IPv4 clients are limited together per network of this length",
     .store = member<&server::RrlSettings::ipv4_prefix_length>,
     .lo = 8,
     .hi = 32},
    {.path = "rrl.ipv6_prefix_length",
     .kind = Kind::kInt,
     .def = "56",
     .reload = Reload::kLive,
     .doc = "IPv6 clients are limited together per network of this length",
     .store = member<&server::RrlSettings::ipv6_prefix_length>,
     .lo = 16,
     .hi = 128},
    {.path = "rrl.exempt_clients",
     .kind = Kind::kStrings,
     .def = "[]",
     .reload = Reload::kLive,
     .doc = "client networks (CIDR, or an address) never limited",
     .store = [](const Read& r, server::RrlSettings& s) -> R {
       s.exempt.clear();
       for (const auto& c : r.v.list) {
         auto e = parseCidr(c);
         if (!e) return r.fail(": " + e.error().message);
         server::RrlNetwork net;
         net.ipv6 = e->ipv6;
         net.prefix = e->prefix;
         std::memcpy(net.address, e->address, 16);
         s.exempt.push_back(net);
       }
       return {};
     },
     .type = "array of CIDRs"},
    {.path = "rrl.table_size",
     .kind = Kind::kInt,
     .def = "65536",
     .reload = Reload::kPartly,
     .doc =
         "tracked (network, name, type) buckets per worker; a change applies at the next restart",
     .store = member<&server::RrlSettings::table_size>,
     .lo = 4,
     .hi = 1 << 24},
};

// ---- [recursion], [[recursion.forward]] (server/recursion.h; docs/recursion.md) ---------------

// One [[recursion.forward]] as written.
struct ForwardEntry {
  std::string zone;
  std::vector<std::string> servers;
};

const Field<ForwardEntry> kForwardFields[] = {
    {.path = "recursion.forward.zone",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the domain forwarded (\".\" for every name not served here); the longest zone that "
            "contains a question's name picks its servers",
     .store = member<&ForwardEntry::zone>},
    {.path = "recursion.forward.servers",
     .kind = Kind::kStrings,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the upstream resolvers, address and port (\"127.0.0.1:53\", \"[::1]:5353\"), tried in "
            "order by c-ares",
     .store = member<&ForwardEntry::servers>,
     .type = "array of addresses"},
};

R storeForward(const Read& r, server::RecursionSettings& s) {
  s.forward.clear();
  return readEntries(r.ctx, r.node, r.key, std::span<const Field<ForwardEntry>>(kForwardFields),
                     [&](const toml::table&, const std::string& at, ForwardEntry& e) -> R {
                       if (e.zone.empty() || e.servers.empty())
                         return Error{at + " needs a zone and servers"};
                       dns::NameBuf name;
                       if (!dns::fromText(e.zone == "." ? "." : e.zone, name))
                         return Error{at + ": bad zone name '" + e.zone + "'"};
                       dns::lowercase(name);
                       resolver::ForwardZone z;
                       z.zone.assign(reinterpret_cast<const char*>(name.data), name.length);
                       for (const auto& other : s.forward) {
                         if (other.zone == z.zone)
                           return Error{at + ": zone '" + e.zone + "' forwarded twice"};
                       }
                       for (const auto& text : e.servers) {
                         auto la = server::parseListenAddress(text);
                         if (!la) return Error{at + ": " + la.error().message};
                         z.servers.push_back(la->text());
                       }
                       s.forward.push_back(std::move(z));
                       return {};
                     });
}

const Field<server::RecursionSettings> kRecursionFields[] = {
    {.path = "recursion.enabled",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kLive,
     .doc = "resolve names not served here for the clients in allow (docs/recursion.md); off: "
            "they are REFUSED",
     .store = member<&server::RecursionSettings::enabled>},
    {.path = "recursion.allow",
     .kind = Kind::kStrings,
     .def = "[\"127.0.0.0/8\", \"::1\"]",
     .reload = Reload::kLive,
     .doc = "client networks (CIDR, or an address) that may recurse; others get REFUSED with EDE "
            "18 (Prohibited) for names not served here, and answers from the zones as before",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.allow.clear();
       for (const auto& c : r.v.list) {
         auto e = parseCidr(c);
         if (!e) return r.fail(": " + e.error().message);
         s.allow.push_back(*e);
       }
       return {};
     },
     .type = "array of CIDRs"},
    {.path = "recursion.rd0",
     .kind = Kind::kEnum,
     .def = "cache",
     .reload = Reload::kLive,
     .doc = "RD=0 questions for names not served here: cache = from the cache only (RFC 1034 "
            "§4.3.1), refuse = REFUSED; both refuse (EDE 20) until the cache is wired in",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.rd0 = r.v.s == "refuse" ? server::Rd0Policy::kRefuse : server::Rd0Policy::kCache;
       return {};
     },
     .choices = "cache|refuse"},
    {.path = "recursion.max_outstanding",
     .kind = Kind::kInt,
     .def = "2048",
     .reload = Reload::kLive,
     .doc = "recursive questions being resolved at once (PowerDNS Recursor's max-mthreads); "
            "more are dropped, as Unbound and the Recursor do",
     .store = member<&server::RecursionSettings::max_outstanding>,
     .lo = 1,
     .hi = 1 << 20},
    {.path = "recursion.max_outstanding_per_client",
     .kind = Kind::kInt,
     .def = "100",
     .reload = Reload::kLive,
     .doc = "of those, from one client address; more are dropped",
     .store = member<&server::RecursionSettings::max_outstanding_per_client>,
     .lo = 1,
     .hi = 1 << 20},
    {.path = "recursion.root_hints",
     .kind = Kind::kString,
     .def = "\"/usr/share/dns/root.hints\"",
     .reload = Reload::kLive,
     .doc = "root name servers for the iterator (zone-file syntax, Debian's dns-root-data); a "
            "bad file is logged with file:line and names no forward zone covers get SERVFAIL "
            "(EDE 22) until a reload fixes it",
     .store = member<&server::RecursionSettings::root_hints>},
    {.path = "recursion.qname_minimisation",
     .kind = Kind::kBool,
     .def = "true",
     .reload = Reload::kLive,
     .doc = "RFC 9156 QNAME minimisation, relaxed (Unbound's qname-minimisation without -strict)",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.qname_minimisation = r.v.b;
       return {};
     }},
    {.path = "recursion.max_cname_chain",
     .kind = Kind::kInt,
     .def = "11",
     .reload = Reload::kLive,
     .doc = "CNAME/DNAME links followed for one question (Unbound: 11); longer is SERVFAIL",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.max_cname_chain = static_cast<int>(r.v.i);
       return {};
     },
     .lo = 1,
     .hi = 64},
    {.path = "recursion.max_referrals",
     .kind = Kind::kInt,
     .def = "40",
     .reload = Reload::kLive,
     .doc = "referrals followed for one question (PowerDNS Recursor's max-recursion-depth: 40)",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.max_referrals = static_cast<int>(r.v.i);
       return {};
     },
     .lo = 1,
     .hi = 256},
    {.path = "recursion.max_ns_names_resolved",
     .kind = Kind::kInt,
     .def = "5",
     .reload = Reload::kLive,
     .doc = "name servers without glue looked up for one delegation (NXNSAttack guard)",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.max_ns_names_resolved = static_cast<int>(r.v.i);
       return {};
     },
     .lo = 1,
     .hi = 64},
    {.path = "recursion.max_upstream_queries",
     .kind = Kind::kInt,
     .def = "60",
     .reload = Reload::kLive,
     .doc = "upstream queries for one client question, nested lookups included (PowerDNS "
            "Recursor's max-qperq: 60); more is SERVFAIL",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.max_upstream_queries = static_cast<int>(r.v.i);
       return {};
     },
     .lo = 1,
     .hi = 1000},
    {.path = "recursion.query_timeout_ms",
     .kind = Kind::kInt,
     .def = "1500",
     .reload = Reload::kLive,
     .doc = "one upstream query's timeout in milliseconds; a server that times out is backed off",
     .store = [](const Read& r, server::RecursionSettings& s) -> R {
       s.limits.timeout_ms = static_cast<uint32_t>(r.v.i);
       return {};
     },
     .lo = 50,
     .hi = 30000},
    {.path = "recursion.forward",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "forward zones ([[recursion.forward]] below)",
     .store = storeForward,
     .type = "array of tables"},
};

// ---- [[zone]] --------------------------------------------------------------------------------

const Field<ZoneConfig> kZoneFields[] = {
    {.path = "zone.name",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the zone's origin (trailing dot optional; names match in any case)",
     .store = member<&ZoneConfig::name>},
    {.path = "zone.file",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "its RFC 1035 zone file, relative to the configuration file",
     .store = member<&ZoneConfig::file>,
     .type = "path"},
    {.path = "zone.serial_policy",
     .kind = Kind::kEnum,
     .def = "increment",
     .reload = Reload::kLive,
     .doc = "how a change through the API moves the SOA serial: increment (+1), date (YYYYMMDDnn, "
            "RFC 1912 section 2.2; +1 when that is not newer) or unixtime (the time, or +1 when "
            "that is not newer), always newer by RFC 1982; a soa_edit_api set through the API "
            "that names a policy wins (docs/api.md). A hand edit keeps the serial it was given",
     .store = [](const Read& r, ZoneConfig& z) -> R {
       z.serial_policy = *zones::parseSerialPolicy(r.v.s);
       return {};
     },
     .choices = "increment|date|unixtime"},
};

// ---- [geoip], [lists] ------------------------------------------------------------------------

const Field<SteeringConfig> kGeoipFields[] = {
    {.path = "geoip.database",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "City or Country .mmdb (or one built by `meridian mmdb build`); reloaded when the file "
            "changes",
     .store = [](const Read& r, SteeringConfig& st) -> R {
       st.geoip = resolve(r.ctx, r.v.s);
       return {};
     },
     .type = "path"},
    {.path = "geoip.asn_database",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "optional ASN .mmdb, for geo.asn maps",
     .store = [](const Read& r, SteeringConfig& st) -> R {
       st.asn_database = resolve(r.ctx, r.v.s);
       return {};
     },
     .type = "path"},
    {.path = "geoip.ecs_trusted",
     .kind = Kind::kStrings,
     .def = "[] (everyone)",
     .reload = Reload::kLive,
     .doc = "resolvers (CIDRs) whose EDNS Client Subnet (RFC 7871) is used; empty = everyone's",
     .store = [](const Read& r, SteeringConfig& st) -> R {
       if (auto c = checkCidrs(r); !c) return c;
       st.ecs_trusted = r.v.list;
       return {};
     },
     .type = "array of CIDRs"},
    {.path = "geoip.use_registered_country",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kLive,
     .doc = "a network without `country` is mapped by its registered_country",
     .store = member<&SteeringConfig::use_registered_country>},
};

const Field<SteeringConfig> kListsFields[] = {
    {.path = "lists.NAME",
     .kind = Kind::kStrings,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "a named region list; a geo map entry written as the string \"NAME\" uses it",
     .store = [](const Read& r, SteeringConfig& st) -> R {
       st.lists[r.name] = NamedListConfig{r.v.list, r.at()};
       return {};
     },
     .type = "array of regions"},
};

// ---- [[region]] ------------------------------------------------------------------------------

struct RegionEntry {
  georoute::Region region;
  bool latitude = false, longitude = false;
};

const Field<RegionEntry> kRegionFields[] = {
    {.path = "region.name",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the region's name, as pools and geo maps refer to it",
     .store = [](const Read& r, RegionEntry& e) -> R {
       e.region.name = r.v.s;
       return {};
     }},
    {.path = "region.latitude",
     .kind = Kind::kNumber,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "with longitude: where the region is, for the `nearest` filter (which requires both)",
     .store = [](const Read& r, RegionEntry& e) -> R {
       e.region.latitude = r.v.d;
       e.latitude = true;
       return {};
     },
     .lo = -90,
     .hi = 90},
    {.path = "region.longitude",
     .kind = Kind::kNumber,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "with latitude: where the region is",
     .store = [](const Read& r, RegionEntry& e) -> R {
       e.region.longitude = r.v.d;
       e.longitude = true;
       return {};
     },
     .lo = -180,
     .hi = 180},
    {.path = "region.bias_km",
     .kind = Kind::kNumber,
     .def = "0",
     .reload = Reload::kLive,
     .doc = "added to the distances `nearest` computes to this region (negative pulls clients in)",
     .store = [](const Read& r, RegionEntry& e) -> R {
       e.region.bias_km = r.v.d;
       return {};
     }},
};

// ---- [[check]] -------------------------------------------------------------------------------

const Field<CheckConfig> kCheckFields[] = {
    {.path = "check.name",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the check's name, as services, pools and endpoints refer to it",
     .store = member<&CheckConfig::name>},
    {.path = "check.type",
     .kind = Kind::kEnum,
     .def = "tcp",
     .reload = Reload::kLive,
     .doc = "tcp: a connection opens; http/https: a GET is answered as expected; dns: a query is "
            "answered",
     .store = member<&CheckConfig::type>,
     .choices = "tcp|http|https|dns"},
    {.path = "check.port",
     .kind = Kind::kInt,
     .def = "80 (https 443, dns 53)",
     .reload = Reload::kLive,
     .doc = "the port probed on each endpoint address",
     .store = member<&CheckConfig::port>,
     .lo = 1,
     .hi = 65535},
    {.path = "check.path",
     .kind = Kind::kString,
     .def = "/",
     .reload = Reload::kLive,
     .doc = "http/https: the path requested",
     .store = member<&CheckConfig::path>},
    {.path = "check.host",
     .kind = Kind::kString,
     .def = "the endpoint address",
     .reload = Reload::kLive,
     .doc = "http/https: the Host header (and TLS server name)",
     .store = member<&CheckConfig::host>},
    {.path = "check.expect_status",
     .kind = Kind::kCustom,
     .def = "[200]",
     .reload = Reload::kLive,
     .doc = "http/https: the status codes that count as up",
     .store = [](const Read& r, CheckConfig& c) -> R {
       const toml::array* a = r.node.as_array();
       if (a == nullptr) return r.fail(" must be an array of status codes");
       c.expect_status.clear();
       for (const auto& code : *a) {
         auto x = integer(r.ctx, code, r.key, 100, 599);
         if (!x) return x.error();
         c.expect_status.push_back(static_cast<int>(*x));
       }
       return {};
     },
     .type = "array of integers 100..599"},
    {.path = "check.expect_body",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "http/https: a substring the first 64 KiB of the body must contain",
     .store = member<&CheckConfig::expect_body>},
    {.path = "check.verify_tls",
     .kind = Kind::kBool,
     .def = "false",
     .reload = Reload::kLive,
     .doc = "https: verify the certificate chain and name",
     .store = member<&CheckConfig::verify_tls>},
    {.path = "check.qname",
     .kind = Kind::kString,
     .def = ".",
     .reload = Reload::kLive,
     .doc = "dns: the name queried",
     .store = member<&CheckConfig::dns_qname>},
    {.path = "check.qtype",
     .kind = Kind::kCustom,
     .def = "SOA",
     .reload = Reload::kLive,
     .doc = "dns: the type queried",
     .store = [](const Read& r, CheckConfig& c) -> R {
       const auto s = r.node.value<std::string>();
       if (!s || typeCode(*s) == 0) return r.fail(" must be a type name such as SOA or A");
       c.dns_qtype = typeCode(*s);
       return {};
     },
     .type = "A, NS, CNAME, SOA, MX, TXT, AAAA or SRV"},
    {.path = "check.interval_ms",
     .kind = Kind::kInt,
     .def = "5000",
     .reload = Reload::kLive,
     .doc = "milliseconds between probes of one target",
     .store = member<&CheckConfig::interval_ms>,
     .lo = 10,
     .hi = 3600000},
    {.path = "check.timeout_ms",
     .kind = Kind::kInt,
     .def = "2000",
     .reload = Reload::kLive,
     .doc = "a probe not answered within this many milliseconds fails; at most interval_ms",
     .store = member<&CheckConfig::timeout_ms>,
     .lo = 10,
     .hi = 3600000},
    {.path = "check.rise",
     .kind = Kind::kInt,
     .def = "2",
     .reload = Reload::kLive,
     .doc = "successes in a row that bring a target back up",
     .store = member<&CheckConfig::rise>,
     .lo = 1,
     .hi = 100},
    {.path = "check.fall",
     .kind = Kind::kInt,
     .def = "3",
     .reload = Reload::kLive,
     .doc = "failures in a row that take a target down",
     .store = member<&CheckConfig::fall>,
     .lo = 1,
     .hi = 100},
};

// ---- [[service]], [[service.pool]], endpoints, [service.geo] ----------------------------------

const Field<EndpointConfig> kEndpointFields[] = {
    {.path = "service.pool.endpoints.address",
     .kind = Kind::kString,
     .def = "one of address or cname",
     .reload = Reload::kLive,
     .doc = "an IPv4 or IPv6 address answered for this endpoint",
     .store = member<&EndpointConfig::address>},
    {.path = "service.pool.endpoints.cname",
     .kind = Kind::kString,
     .def = "one of address or cname",
     .reload = Reload::kLive,
     .doc = "or a CNAME target answered instead (not health-checked: give it check = \"none\" "
            "when its pool has a check)",
     .store = member<&EndpointConfig::cname>},
    {.path = "service.pool.endpoints.weight",
     .kind = Kind::kInt,
     .def = "1",
     .reload = Reload::kLive,
     .doc = "the endpoint's share under the `weighted` filter",
     .store = member<&EndpointConfig::weight>,
     .lo = 1,
     .hi = 1000000},
    {.path = "service.pool.endpoints.check",
     .kind = Kind::kString,
     .def = "the pool's",
     .reload = Reload::kLive,
     .doc = "overrides the pool's and the service's check; \"none\" leaves it unchecked",
     .store = member<&EndpointConfig::check>},
};

const Field<PoolConfig> kPoolFields[] = {
    {.path = "service.pool.region",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the [[region]] this pool's endpoints are in (and the pool's name for --set)",
     .store = member<&PoolConfig::region>},
    {.path = "service.pool.check",
     .kind = Kind::kString,
     .def = "the service's",
     .reload = Reload::kLive,
     .doc = "the [[check]] of the pool's endpoints, overriding the service's",
     .store = member<&PoolConfig::check>},
    {.path = "service.pool.endpoints",
     .kind = Kind::kCustom,
     .def = "[]",
     .reload = Reload::kLive,
     .doc = "the pool's endpoints: each \"ADDRESS\", or a table of the keys below",
     .store = [](const Read& r, PoolConfig& p) -> R {
       const toml::array* eps = r.node.as_array();
       if (eps == nullptr) return r.fail(" must be an array");
       for (const auto& en : *eps) {
         EndpointConfig ec;
         ec.where = where(r.ctx, en, r.key);
         if (auto addr = en.value<std::string>()) {
           ec.address = *addr;
         } else if (const toml::table* et = en.as_table()) {
           auto t = readTable(r.ctx, *et, r.key,
                              std::span<const Field<EndpointConfig>>(kEndpointFields), ec);
           if (!t) return t.error();
         } else {
           return Error{ec.where + ": an endpoint is an address string or a table"};
         }
         if (ec.address.empty() == ec.cname.empty())
           return Error{ec.where + ": give exactly one of address or cname"};
         p.endpoints.push_back(ec);
       }
       return {};
     },
     .type = "array of \"ADDRESS\" or tables"},
};

// One geo map entry: an array of regions, or a string naming a [lists] entry (resolved when
// the steering is compiled, so [lists] may come anywhere in the file).
R geoEntry(const Ctx& ctx, const toml::node& n, const std::string& key, const std::string& full,
           std::vector<std::string>& regions, GeoMapConfig& geo) {
  geo.where[key] = where(ctx, n, full);
  if (auto name = n.value<std::string>()) {
    regions.clear();
    geo.named[key] = *name;
    return {};
  }
  auto l = stringList(ctx, n, full);
  if (!l) {
    return Error{where(ctx, n, full) +
                 " must be an array of regions or the name of a [lists] entry"};
  }
  regions = *l;
  return {};
}

// A geo map level (continent, country, ...): a table CODE = regions.
template <std::map<std::string, std::vector<std::string>> GeoMapConfig::*Level>
R geoLevel(const Read& r, GeoMapConfig& geo) {
  const toml::table* t = r.node.as_table();
  if (t == nullptr) return r.fail(" must be a table of region lists");
  for (auto&& [k, v] : *t) {
    const std::string code(k.str());
    auto e = geoEntry(r.ctx, v, r.name + "." + code, r.key + "." + code, (geo.*Level)[code], geo);
    if (!e) return e.error();
  }
  return {};
}

constexpr const char* kGeoEntryType = "table of CODE = [regions] or \"LIST\"";

const Field<GeoMapConfig> kGeoFields[] = {
    {.path = "service.geo.default",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "the region list of clients that no other entry matches",
     .store = [](const Read& r, GeoMapConfig& geo) -> R {
       return geoEntry(r.ctx, r.node, "default", r.key, geo.default_list, geo);
     },
     .type = "[regions] or \"LIST\""},
    {.path = "service.geo.continent",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "by continent code (EU, NA, AS, ...)",
     .store = geoLevel<&GeoMapConfig::continent>,
     .type = kGeoEntryType},
    {.path = "service.geo.country",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "by ISO 3166-1 country code (DE, US, ...)",
     .store = geoLevel<&GeoMapConfig::country>,
     .type = kGeoEntryType},
    {.path = "service.geo.subdivision",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "by ISO 3166-2 subdivision (\"US-CA\"; the deepest listed wins)",
     .store = geoLevel<&GeoMapConfig::subdivision>,
     .type = kGeoEntryType},
    {.path = "service.geo.cidr",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "by client network (\"10.0.0.0/8\"; the longest prefix wins, before any other level)",
     .store = geoLevel<&GeoMapConfig::cidr>,
     .type = kGeoEntryType},
    {.path = "service.geo.asn",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "by autonomous system number (\"15169\"), from the database or [geoip] asn_database",
     .store = geoLevel<&GeoMapConfig::asn>,
     .type = kGeoEntryType},
};

const Field<ServiceConfig> kServiceFields[] = {
    {.path = "service.name",
     .kind = Kind::kString,
     .def = "required",
     .reload = Reload::kLive,
     .doc = "the owner name steered: inside a served zone, not below a delegation, with a "
            "fallback RRset in the zone file",
     .store = member<&ServiceConfig::name>},
    {.path = "service.ttl",
     .kind = Kind::kInt,
     .def = "30",
     .reload = Reload::kLive,
     .doc = "TTL of the steered answers, in seconds",
     .store = member<&ServiceConfig::ttl>,
     .lo = 0,
     .hi = 604800},
    {.path = "service.policy",
     .kind = Kind::kStrings,
     .def = "[\"up\", \"geo\", \"nearest\"]",
     .reload = Reload::kLive,
     .doc = "the filter chain (docs/steering.md \"The policy chain\")",
     .store = member<&ServiceConfig::policy>,
     .type = "array of up, geo, nearest, latency, weighted, first_n"},
    {.path = "service.first_n",
     .kind = Kind::kInt,
     .def = "1",
     .reload = Reload::kLive,
     .doc = "the addresses kept by the `first_n` filter (only when the policy lists it)",
     .store = member<&ServiceConfig::first_n>,
     .lo = 1,
     .hi = 64},
    {.path = "service.when_all_down",
     .kind = Kind::kString,
     .def = "fail-open",
     .reload = Reload::kLive,
     .doc = "what is answered when no endpoint is up: all of them, NODATA, SERVFAIL, or the zone "
            "file's RRset",
     .store = member<&ServiceConfig::when_all_down>,
     .type = "fail-open, nodata, servfail or fallback"},
    {.path = "service.check",
     .kind = Kind::kString,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "the [[check]] of the service's endpoints (\"none\": unchecked)",
     .store = member<&ServiceConfig::check>},
    {.path = "service.weighted_prefix_v4",
     .kind = Kind::kInt,
     .def = "24",
     .reload = Reload::kLive,
     .doc = "the IPv4 client subnet that `weighted` hashes",
     .store = member<&ServiceConfig::weighted_prefix_v4>,
     .lo = 0,
     .hi = 32},
    {.path = "service.weighted_prefix_v6",
     .kind = Kind::kInt,
     .def = "56",
     .reload = Reload::kLive,
     .doc = "the IPv6 client subnet that `weighted` hashes",
     .store = member<&ServiceConfig::weighted_prefix_v6>,
     .lo = 0,
     .hi = 128},
    {.path = "service.geo",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "the geo map: client location to region list ([service.geo] below)",
     .store = [](const Read& r, ServiceConfig& s) -> R {
       const toml::table* g = r.node.as_table();
       if (g == nullptr) return r.fail(" must be a table");
       return readTable(r.ctx, *g, r.key, std::span<const Field<GeoMapConfig>>(kGeoFields), s.geo,
                        true);
     },
     .type = "table"},
    {.path = "service.pool",
     .kind = Kind::kCustom,
     .def = "none",
     .reload = Reload::kLive,
     .doc = "the service's endpoints per region ([[service.pool]] below)",
     .store = [](const Read& r, ServiceConfig& s) -> R {
       return readEntries(r.ctx, r.node, r.key, std::span<const Field<PoolConfig>>(kPoolFields),
                          [&](const toml::table&, const std::string& at, PoolConfig& p) -> R {
                            p.where = at;
                            if (p.region.empty()) return Error{at + " needs a region"};
                            s.pools.push_back(std::move(p));
                            return {};
                          });
     },
     .type = "array of tables"},
};

R finishService(const toml::table&, const std::string& at, ServiceConfig& s) {
  s.where = at;
  if (s.name.empty()) return Error{at + " needs a name"};
  return {};
}

// ---- the sections ----------------------------------------------------------------------------

template <typename T, size_t N>
std::vector<KeyDoc> keyDocs(const Field<T> (&fields)[N]) {
  std::vector<KeyDoc> out;
  for (const Field<T>& f : fields) out.push_back({f.path, typeText(f), f.def, f.reload, f.doc});
  return out;
}

template <typename T, size_t N>
R readSection(const Ctx& ctx, const toml::node& v, const char* name, const Field<T> (&fields)[N],
              T& out, const char* not_table = " must be a table") {
  if (!v.is_table()) return Error{where(ctx, v, name) + not_table};
  return readTable(ctx, *v.as_table(), name, std::span<const Field<T>>(fields), out);
}

struct Section {
  const char* name;
  const char* header;
  const char* doc;
  std::vector<KeyDoc> (*keys)();
  // A top-level section's reader; nullptr for one read by a key of another (service.pool).
  R (*read)(const Ctx&, const toml::node&, Config&);
  // An array of tables: the key that names an entry for --set (service[NAME], pool[REGION]).
  const char* id = nullptr;
};

const Section kSections[] = {
    {"server", "[server]", "Sockets, workers and protocol options.",
     [] { return keyDocs(kServerFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "server", kServerFields, c);
     }},
    {"rrl", "[rrl]",
     "Response rate limiting of UDP answers (docs/operations.md), off by default. A reload "
     "applies every key except turning it on when it was off at start-up, and table_size.",
     [] { return keyDocs(kRrlFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "rrl", kRrlFields, c.protocol.rrl);
     }},
    {"recursion", "[recursion]",
     "Recursion for the allowed clients (docs/recursion.md): forward zones over c-ares, the "
     "iterator from the root hints for every other name; the cache is not built yet. Every key "
     "applies on reload.",
     [] { return keyDocs(kRecursionFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "recursion", kRecursionFields, c.recursion);
     }},
    {"recursion.forward", "[[recursion.forward]]",
     "A forward zone: questions for names at or below it go to its servers.",
     [] { return keyDocs(kForwardFields); }, nullptr, "zone"},
    {"control", "[control]", "The local control socket (meridianctl).",
     [] { return keyDocs(kControlFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "control", kControlFields, c);
     }},
    {"api", "[api]",
     "The management HTTP API (docs/api.md). It starts only when at least one [[api.key]] is "
     "configured.",
     [] { return keyDocs(kApiFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "api", kApiFields, c);
     }},
    {"api.key", "[[api.key]]",
     "An API key: a name, the stored hash of its secret, a scope and optionally its zones.",
     [] { return keyDocs(kApiKeyFields); }, nullptr, "name"},
    {"log", "[log]",
     "Logging: the level, where lines go (stderr, the journal, syslog), their format.",
     [] { return keyDocs(kLogFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "log", kLogFields, c);
     }},
    {"dnstap", "[dnstap]",
     "dnstap query logging (docs/dnstap.md), off unless socket or file is set. Every key applies "
     "at restart.",
     [] { return keyDocs(kDnstapFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "dnstap", kDnstapFields, c);
     }},
    {"zone", "[[zone]]",
     "An authoritative zone (also --zone NAME=FILE). name and file are required; a zone "
     "configured twice is an error.",
     [] { return keyDocs(kZoneFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readEntries(ctx, v, "zone", std::span<const Field<ZoneConfig>>(kZoneFields),
                          [&](const toml::table&, const std::string& at, ZoneConfig& z) -> R {
                            if (z.name.empty() || z.file.empty())
                              return Error{at + " needs both name and file"};
                            z.file = resolve(ctx, z.file);
                            c.zones.push_back(std::move(z));
                            return {};
                          });
     },
     "name"},
    {"geoip", "[geoip]", "GeoIP databases and EDNS Client Subnet (docs/steering.md).",
     [] { return keyDocs(kGeoipFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "geoip", kGeoipFields, c.steering);
     }},
    {"lists", "[lists]", "Named region lists, written once and used by any geo map entry.",
     [] { return keyDocs(kListsFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readSection(ctx, v, "lists", kListsFields, c.steering,
                          " must be a table of region lists");
     }},
    {"region", "[[region]]",
     "A region endpoints are in. Coordinates are optional: only a `nearest` filter needs them, "
     "and one without the other is an error.",
     [] { return keyDocs(kRegionFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       SteeringConfig& st = c.steering;
       return readEntries(
           ctx, v, "region", std::span<const Field<RegionEntry>>(kRegionFields),
           [&](const toml::table&, const std::string& at, RegionEntry& e) -> R {
             georoute::Region& r = e.region;
             if (r.name.empty()) return Error{at + " needs a name"};
             if (e.latitude != e.longitude)
               return Error{at + " '" + r.name + "': give both latitude and longitude, or neither"};
             r.has_coordinates = e.latitude;
             r.where = at;
             for (const auto& other : st.regions) {
               if (other.name == r.name)
                 return Error{at + ": region '" + r.name + "' declared twice"};
             }
             st.regions.push_back(r);
             return {};
           });
     },
     "name"},
    {"check", "[[check]]", "A health check, named by services, pools and endpoints.",
     [] { return keyDocs(kCheckFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readEntries(ctx, v, "check", std::span<const Field<CheckConfig>>(kCheckFields),
                          [&](const toml::table& t, const std::string& at, CheckConfig& ch) -> R {
                            ch.where = at;
                            if (ch.name.empty()) return Error{at + " needs a name"};
                            if (ch.timeout_ms > ch.interval_ms)
                              return Error{at + ": timeout_ms must not exceed interval_ms"};
                            if (!t.contains("port"))
                              ch.port = ch.type == "https" ? 443 : ch.type == "dns" ? 53 : 80;
                            c.steering.checks.push_back(std::move(ch));
                            return {};
                          });
     },
     "name"},
    {"service", "[[service]]", "A steered name (docs/steering.md).",
     [] { return keyDocs(kServiceFields); },
     [](const Ctx& ctx, const toml::node& v, Config& c) {
       return readEntries(ctx, v, "service", std::span<const Field<ServiceConfig>>(kServiceFields),
                          [&](const toml::table& t, const std::string& at, ServiceConfig& s) -> R {
                            if (auto f = finishService(t, at, s); !f) return f;
                            c.steering.services.push_back(std::move(s));
                            return {};
                          });
     },
     "name"},
    {"service.pool", "[[service.pool]]",
     "A service's endpoints in one region; --set names a pool by its region.",
     [] { return keyDocs(kPoolFields); }, nullptr, "region"},
    {"service.pool.endpoints", "endpoints = [...]",
     "An endpoint written as a table (a string is its address). Exactly one of address or cname.",
     [] { return keyDocs(kEndpointFields); }, nullptr},
    {"service.geo", "[service.geo]",
     "The geo map: the first match of cidr, the database's own meridian_region, asn, subdivision, "
     "country, continent, default gives the client's region list. An entry is a region list or "
     "the name of a [lists] entry.",
     [] { return keyDocs(kGeoFields); }, nullptr},
};

}  // namespace

std::vector<SectionDoc> configSchema() {
  std::vector<SectionDoc> out;
  for (const Section& s : kSections) out.push_back({s.name, s.header, s.doc, s.keys()});
  return out;
}

Result<void> readConfigTree(const toml::table& root, const std::string& file,
                            const std::filesystem::path& base, Config& cfg, bool& listen_set) {
  const Ctx ctx{file, base};
  for (auto&& [k, v] : root) {
    const std::string section(k.str());
    const Section* found = nullptr;
    for (const Section& s : kSections) {
      if (s.read != nullptr && section == s.name) found = &s;
    }
    if (found == nullptr) return Error{where(ctx, v, section) + ": unknown section"};
    if (auto r = found->read(ctx, v, cfg); !r) return r.error();
  }
  listen_set = root.at_path("server.listen").node() != nullptr;
  return {};
}

std::string entryIdKey(const std::string& array) {
  for (const Section& s : kSections) {
    if (s.id != nullptr && array == s.name) return s.id;
  }
  return "";
}

std::vector<std::pair<std::string, std::string>> restartOnlyValues(const Config& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::span<const Field<Config>> fields :
       {std::span<const Field<Config>>(kServerFields),
        std::span<const Field<Config>>(kControlFields), std::span<const Field<Config>>(kApiFields),
        std::span<const Field<Config>>(kLogFields),
        std::span<const Field<Config>>(kDnstapFields)}) {
    for (const Field<Config>& f : fields) {
      // One without `show` is left out, which the schema test reports.
      if (f.reload == Reload::kRestart && f.show != nullptr) out.emplace_back(f.path, f.show(c));
    }
  }
  return out;
}

Result<ServiceConfig> validateService(const toml::table& service, const std::string& origin) {
  const Ctx ctx{origin, {}, origin};
  ServiceConfig s;
  auto r =
      readTable(ctx, service, "service", std::span<const Field<ServiceConfig>>(kServiceFields), s);
  if (!r) return r.error();
  if (auto f = finishService(service, where(ctx, service, "service"), s); !f) return f.error();
  return s;
}

namespace {

// Words of `text` in lines of at most `width` columns, each line after `indent` spaces.
std::string wrap(const std::string& text, size_t indent, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

const char* reloadText(Reload r) {
  switch (r) {
    case Reload::kLive:
      return "yes";
    case Reload::kRestart:
      return "at restart";
    case Reload::kPartly:
      return "partly (see the description)";
  }
  return "";
}

constexpr const char* kSetHelp =
    "Any key can be overridden with --set key=value; an entry of [[zone]], [[region]], [[check]], "
    "[[service]] or [[service.pool]] is named in brackets (a pool by its region): --set "
    "'service[www.example.com].ttl=5', --set 'region[eu].bias_km=-300', --set "
    "'service[www.example.com].pool[eu].check=web'; a key with dots is quoted as in TOML: --set "
    "'service[www.example.com].geo.cidr.\"10.0.0.0/8\"=[\"eu\"]'.";

std::string cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

const char* configKeysHelp() {
  static const std::string text = [] {
    std::string out =
        "Configuration keys (TOML; docs/configuration.md, `meridian config-reference`).\n" +
        wrap(kSetHelp, 0, 100);
    for (const SectionDoc& s : configSchema()) {
      std::string names;
      for (const KeyDoc& k : s.keys)
        names += (names.empty() ? "" : ", ") + k.path.substr(s.name.size() + 1);
      out += "\n" + wrap(s.header + " " + names, 0, 100);
      for (const KeyDoc& k : s.keys) {
        std::string head = k.path + "  " + k.type + "; default " + k.default_value;
        if (k.reload == Reload::kRestart) head += "; applies at restart";
        out += wrap(head, 2, 100) + wrap(k.doc, 6, 100);
      }
    }
    return out;
  }();
  return text.c_str();
}

std::string configReference() {
  std::string out =
      "# Configuration reference\n\n"
      "<!-- Generated by `meridian config-reference` from app/config_schema.cc; edit that table, "
      "not this file. The unit test \"config reference\" fails when they differ. -->\n\n"
      "Meridian reads one TOML file (`--config FILE`). Flags win over it: `--listen` replaces "
      "`server.listen`, `--threads` sets `server.threads`, `--zone NAME=FILE` adds a `[[zone]]`, "
      "`--log-level` wins over `log.level`. " +
      std::string(kSetHelp) +
      "\n\nA key is given once; an unknown key or section, a value of the wrong type or out of "
      "range stops start-up (and fails a reload, which keeps the running configuration) with "
      "`FILE:LINE: KEY` and what is expected. Relative paths are relative to the configuration "
      "file. The *reload* column says whether SIGHUP or `meridianctl reload` applies a changed "
      "value; one that applies at restart is reported by the reload (\"KEY changed from A to B: "
      "applies at restart\").\n";
  for (const SectionDoc& s : configSchema()) {
    out += "\n## `" + s.header + "`\n\n" + s.doc + "\n\n";
    out += "| key | type | default | reload | description |\n|---|---|---|---|---|\n";
    for (const KeyDoc& k : s.keys) {
      out += "| `" + k.path + "` | " + cell(k.type) + " | " + cell(k.default_value) + " | " +
             reloadText(k.reload) + " | " + cell(k.doc) + " |\n";
    }
  }
  return out;
}

namespace {

// Text for a roff line: backslashes escaped, and a line that would start with a control
// character ('.' or the apostrophe) protected by \&.
std::string roff(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";  // a minus (options, negative numbers) rather than a hyphen
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

}  // namespace

std::string configManPage(const std::string& version) {
  std::string out =
      ".\\\" Generated by `meridian config-reference --format man` from app/config_schema.cc.\n"
      ".TH MERIDIAN.TOML 5 \"\" \"meridian " +
      version +
      "\" \"File Formats\"\n"
      ".SH NAME\nmeridian.toml \\- configuration file of the meridian DNS server\n"
      ".SH SYNOPSIS\n/etc/meridian/meridian.toml\n"
      ".SH DESCRIPTION\n" +
      roff(
          "meridian(8) reads one TOML file (--config FILE). Flags win over it: --listen replaces "
          "server.listen, --threads sets server.threads, --zone NAME=FILE adds a [[zone]], "
          "--log-level wins over log.level.") +
      "\n.PP\n" + roff(kSetHelp) + "\n.PP\n" +
      roff(
          "A key is given once; an unknown key or section, a value of the wrong type or out of "
          "range stops start-up (and fails a reload, which keeps the running configuration) "
          "with FILE:LINE: KEY and what is expected. Relative paths are relative to the "
          "configuration file. Each key says whether SIGHUP or meridianctl reload applies a "
          "changed value.") +
      "\n";
  for (const SectionDoc& s : configSchema()) {
    out += ".SH " + roff(s.header) + "\n" + roff(s.doc) + "\n";
    for (const KeyDoc& k : s.keys) {
      out += ".TP\n.B " + roff(k.path) + "\n" + roff(k.type) + "; default " +
             roff(k.default_value) + "; reload: " + roff(reloadText(k.reload)) + ".\n.br\n" +
             roff(k.doc) + "\n";
    }
  }
  out +=
      ".SH FILES\n.TP\n/etc/meridian/meridian.toml\nthe configuration the packaged service "
      "reads\n.TP\n/usr/share/doc/meridian/examples/\nexample configurations and zones\n"
      ".SH SEE ALSO\n.BR meridian (8),\n.BR meridianctl (8)\n";
  return out;
}

}  // namespace meridian::app
